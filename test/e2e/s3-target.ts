// A Target (suite.ts) on an S3-compatible server: vaults are prefixes of one bucket; objects are listed, read
// and tampered with through the AWS SDK directly, not through pagevault.
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { adminClient, startFauxqs, startS3rver } from '../helpers/servers.ts';
import type { Target } from './suite.ts';

export interface S3TargetOptions {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** An SDK client with these credentials, path style, WHEN_REQUIRED checksums. */
  client: S3Client;
  /** Creates the bucket the vaults live in. */
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

function location(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new Error(`not an s3 vault URL with a prefix: ${url}`);
  return { bucket: m[1]!, prefix: m[2]! };
}

export async function s3Target(options: S3TargetOptions): Promise<Target> {
  const bucket = `pagevault-e2e-${randomBytes(4).toString('hex')}`;
  await options.createBucket(bucket);
  const s3 = options.client;
  let n = 0;
  return {
    freshUrl: async () => `s3://${bucket}/vault-${n++}`,
    env: {
      AWS_ENDPOINT_URL_S3: options.endpoint,
      AWS_ACCESS_KEY_ID: options.accessKeyId,
      AWS_SECRET_ACCESS_KEY: options.secretAccessKey,
    },
    storageOptions: {
      s3: {
        endpoint: options.endpoint,
        forcePathStyle: true,
        credentials: async () => ({ accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }),
      },
    },
    async list(url) {
      const { bucket: b, prefix } = location(url);
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await s3.send(new ListObjectsV2Command({ Bucket: b, Prefix: `${prefix}/`, ContinuationToken: token }));
        for (const o of out.Contents ?? []) keys.push(o.Key!.slice(prefix.length + 1));
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async read(url, key) {
      const { bucket: b, prefix } = location(url);
      const out = await s3.send(new GetObjectCommand({ Bucket: b, Key: `${prefix}/${key}` }));
      return Buffer.from(await out.Body!.transformToByteArray());
    },
    async write(url, key, data) {
      const { bucket: b, prefix } = location(url);
      await s3.send(new PutObjectCommand({ Bucket: b, Key: `${prefix}/${key}`, Body: data }));
    },
    missingBucketUrl: `s3://pagevault-e2e-missing-${randomBytes(4).toString('hex')}/app`,
    secret: options.secretAccessKey,
    async stop() {
      s3.destroy();
      await options.stop();
    },
  };
}

/** A Target on fauxqs, in this process. fauxqs checks no signatures: the CLI gets a distinctive secret key that tests look for in its output. */
export async function fauxqsTarget(): Promise<Target> {
  const server = await startFauxqs();
  const credentials = { accessKeyId: 'e2e-access', secretAccessKey: 'e2e-secret-5b1d0c9e7a' };
  return s3Target({
    endpoint: server.endpoint,
    ...credentials,
    client: adminClient({ endpoint: server.endpoint, ...credentials }),
    createBucket: (name) => server.createBucket(name),
    stop: () => server.stop(),
  });
}

/** A Target on the s3rver fork, in a child process; it checks signatures with its one key pair. */
export async function s3rverTarget(): Promise<Target> {
  const server = await startS3rver();
  return s3Target({
    endpoint: server.endpoint,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    client: adminClient(server),
    createBucket: (name) => server.createBucket(name),
    stop: () => server.stop(),
  });
}
