// Storage options pointing the S3 backend at a test server: small list pages and delete batches so that the
// conformance suite crosses page boundaries, short timeouts and a small retry budget so failures show fast.
import { randomBytes } from 'node:crypto';
import { openStorage, S3Store, type StorageOptions } from '../../src/storage/index.ts';
import type { S3Server } from '../helpers/servers.ts';
import type { Harness } from './conformance.ts';

export function s3Options(
  server: Pick<S3Server, 'endpoint' | 'accessKeyId' | 'secretAccessKey'>,
  overrides: StorageOptions = {},
): StorageOptions {
  const { accessKeyId, secretAccessKey } = server;
  return {
    concurrency: 8,
    retry: { attempts: 4, baseDelayMs: 20, maxDelayMs: 200, budgetMs: 10_000 },
    ...overrides,
    s3: {
      endpoint: server.endpoint,
      credentials: async () => ({ accessKeyId, secretAccessKey }),
      listPageSize: 5,
      deleteBatchSize: 7,
      connectTimeoutMs: 2000,
      idleTimeoutMs: 5000,
      ...overrides.s3,
    },
  };
}

/** A conformance harness on one S3 server: one bucket, and a fresh random prefix for each client. */
export function s3Harness(
  startServer: () => Promise<S3Server>,
  traits: Pick<Harness, 'sweeps' | 'sortedListing' | 'rangeOfEmptyHangs'>,
  bucket = 'conformance',
): () => Promise<Harness> {
  return async () => {
    const server = await startServer();
    await server.createBucket(bucket);
    return {
      ...traits,
      client: async () => openStorage(`s3://${bucket}/${randomBytes(6).toString('hex')}`, s3Options(server)),
      backend: async () => {
        const { s3 } = s3Options(server);
        return new S3Store({ ...s3, bucket, prefix: randomBytes(6).toString('hex') });
      },
      stop: () => server.stop(),
    };
  };
}
