// The bare-SDK peers of the benchmarks: an S3Client with the settings docs/DESIGN.md gives for S3-compatible
// servers and a keep-alive agent, a lib-storage Upload, and incompressible bytes to upload that cost no
// allocation per part (parts are cut from one random block) and can be checked after the upload.
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { StorageClient } from '../../src/storage/index.ts';

const MiB = 1024 * 1024;

export interface Endpoint {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function bareClient(e: Endpoint): S3Client {
  return new S3Client({
    endpoint: e.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: async () => ({ accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey }),
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
  });
}

/** A lib-storage Upload of `body`, `queueSize` parts of `partSize` at once. */
export async function bareUpload(s3: S3Client, bucket: string, key: string, body: Readable, options: { queueSize: number; partSize: number }): Promise<void> {
  await new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: body }, queueSize: options.queueSize, partSize: options.partSize }).done();
}

/** `total` incompressible bytes in parts of `partSize`, cut from a 64 MiB random block. */
export class PatternedBytes {
  private readonly block = randomBytes(64 * MiB);

  constructor(
    readonly total: number,
    readonly partSize: number,
  ) {}

  get parts(): number {
    return Math.ceil(this.total / this.partSize);
  }

  partAt(i: number): Buffer {
    const size = Math.min(this.partSize, this.total - i * this.partSize);
    const start = (i * this.partSize) % this.block.length;
    return this.block.subarray(start, start + size);
  }

  /** The parts as a stream, for an Upload. */
  stream(): Readable {
    const self = this;
    return Readable.from(
      (function* () {
        for (let i = 0; i < self.parts; i++) yield self.partAt(i);
      })(),
    );
  }

  /** Reads 16 ranges of the object back and compares them with what was uploaded; checks its size. */
  async verify(client: StorageClient, key: string): Promise<void> {
    const info = await client.head(key);
    if (info.size !== this.total) throw new Error(`${key}: size ${info.size}, expected ${this.total}`);
    const length = Math.min(MiB, this.total);
    for (let k = 0; k < 16; k++) {
      const offset = Math.floor((k * (this.total - length)) / 15);
      const got = await client.readRange(key, offset, length);
      const first = Math.floor(offset / this.partSize);
      const pieces: Buffer[] = [];
      let have = 0;
      for (let i = first; have < offset - first * this.partSize + length; i++) {
        pieces.push(this.partAt(i));
        have += pieces.at(-1)!.length;
      }
      const skip = offset - first * this.partSize;
      if (!got.equals(Buffer.concat(pieces).subarray(skip, skip + length))) throw new Error(`${key}: bytes differ at ${offset}`);
    }
  }
}
