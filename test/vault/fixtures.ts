// Manifests for the vault tests: small hand-made ones covering every kind of extent, and synthetic large ones
// shaped like a real snapshot (fixed chunks of random digests in one pack, zstd lengths that vary).
import { createHash, randomBytes } from 'node:crypto';
import { compress, decompress } from 'zstd-napi';
import { packKey } from '../../src/vault/layout.ts';
import { chunkRange, fixedChunkCount } from '../../src/vault/manifest.ts';
import { FORMAT_VERSION, type Extent, type Manifest } from '../../src/vault/model.ts';

export const ID = '20261124T020304123Z-9f2c41d07a';
export const PARENT = '20261123T020304123Z-0123456789';

export function baseManifest(overrides: Partial<Manifest> = {}): Manifest {
  return {
    formatVersion: FORMAT_VERSION,
    id: ID,
    parent: null,
    createdAt: '2026-11-24T02:03:04.123Z',
    completedAt: '2026-11-24T02:03:09.456Z',
    tool: { name: 'pagevault', version: '0.1.0' },
    pageSize: 4096,
    pageCount: 0,
    chunkPages: 64,
    databaseDigest: null,
    source: {
      path: '/var/lib/app/app.db',
      fileName: 'app.db',
      applicationId: 0,
      encoding: 'UTF-8',
      journalMode: 'wal',
      sqliteVersion: '3.53.0',
      headerChangeCounter: 7,
      mode: 'own-wal',
      hostname: 'db-1',
      check: { kind: 'quick_check', ok: true, errors: [], durationMs: 40, sameState: true },
    },
    stats: { bytesRead: 0, bytesUploaded: 0, chunksNew: 0, chunksReused: 0, chunksZero: 0, restarts: 0, durationMs: 12 },
    packs: [],
    extents: [],
    ...overrides,
  };
}

/**
 * A small manifest with a parent, a reused pack, zero extents, a raw extent, and patch extents that go back
 * over earlier pages (negative page and offset deltas).
 */
export function smallManifest(): Manifest {
  const pageSize = 4096;
  const packs = [packKey(PARENT, 1, 640), packKey(ID, 1, 640), packKey(ID, 1, 640, 1)];
  const extents: Extent[] = [
    { kind: 'stored', firstPage: 1, pageCount: 64, pack: 1, offset: 0, length: 20_000, codec: 'zstd', digest: randomBytes(32) },
    { kind: 'stored', firstPage: 65, pageCount: 64, pack: 0, offset: 91_000, length: 30_001, codec: 'zstd', digest: randomBytes(32) },
    { kind: 'zero', firstPage: 129, pageCount: 64 },
    { kind: 'stored', firstPage: 193, pageCount: 64, pack: 1, offset: 20_000, length: 64 * pageSize, codec: 'raw', digest: randomBytes(32) },
    { kind: 'stored', firstPage: 257, pageCount: 43, pack: 0, offset: 5, length: 9, codec: 'zstd', digest: randomBytes(32) },
    // patches, in the order they were re-sent
    { kind: 'stored', firstPage: 70, pageCount: 3, pack: 2, offset: 0, length: 900, codec: 'zstd', digest: randomBytes(32) },
    { kind: 'zero', firstPage: 2, pageCount: 1 },
    { kind: 'stored', firstPage: 1, pageCount: 1, pack: 2, offset: 900, length: 4096, codec: 'raw', digest: randomBytes(32) },
  ];
  return baseManifest({
    parent: PARENT,
    pageCount: 299,
    databaseDigest: randomBytes(32).toString('hex'),
    packs,
    extents,
    stats: { bytesRead: 299 * pageSize, bytesUploaded: 300_000, chunksNew: 5, chunksReused: 2, chunksZero: 2, restarts: 1, durationMs: 5_000 },
  });
}

/** A full snapshot of `bytes` of database in fixed chunks: random digests, lengths like zstd output, one pack. */
export function syntheticManifest(bytes: number, chunkBytes: number, pageSize = 4096): Manifest {
  const pageCount = bytes / pageSize;
  const chunkPages = chunkBytes / pageSize;
  const count = fixedChunkCount(pageCount, chunkPages);
  const digests = randomBytes(count * 32);
  const extents: Extent[] = new Array(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const range = chunkRange(i, pageCount, chunkPages);
    // About 40% of the raw size, varying like real compressed chunks do.
    const length = Math.floor(range.pageCount * pageSize * (0.3 + 0.2 * Math.random()));
    extents[i] = { kind: 'stored', ...range, pack: 0, offset, length, codec: 'zstd', digest: digests.subarray(i * 32, i * 32 + 32) };
    offset += length;
  }
  return baseManifest({ pageSize, pageCount, chunkPages, packs: [packKey(ID, 1, pageCount)], extents });
}

// Re-sealing: for tests of what the decoder does with a body whose digest is right but whose content is
// wrong (a buggy writer, or tampering that recomputed the SHA-256), the header and digest are rebuilt here
// independently of src/vault/manifest.ts, from docs/FORMAT.md.

/** The raw (decompressed) body of an encoded manifest. */
export function bodyOf(encoded: Buffer): Buffer {
  return decompress(encoded.subarray(20, encoded.length - 32));
}

/** A manifest object around `body`: header (with `version`), zstd frame unless `compressed` is false, SHA-256. */
export function seal(body: Uint8Array, options: { version?: number; compressed?: boolean; flags?: number } = {}): Buffer {
  const compressed = options.compressed ?? true;
  const stored = compressed ? compress(body, { compressionLevel: 3 }) : Buffer.from(body);
  const header = Buffer.alloc(20);
  header.write('PVMANIF\0', 0, 'latin1');
  header.writeUInt16BE(options.version ?? 1, 8);
  header.writeUInt16BE(options.flags ?? (compressed ? 1 : 0), 10);
  header.writeUInt32BE(stored.length, 12);
  header.writeUInt32BE(body.length, 16);
  const unsealed = Buffer.concat([header, stored]);
  return Buffer.concat([unsealed, createHash('sha256').update(unsealed).digest()]);
}

/** The body's JSON fields and what follows them (the extent table and digests). */
export function splitBody(body: Buffer): { json: Record<string, unknown>; rest: Buffer } {
  let length = 0;
  let i = 0;
  for (let shift = 1; ; shift *= 128) {
    const b = body[i++]!;
    length += (b & 0x7f) * shift;
    if (b < 0x80) break;
  }
  return { json: JSON.parse(body.subarray(i, i + length).toString('utf8')), rest: body.subarray(i + length) };
}

export function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

export function joinBody(json: unknown, rest: Uint8Array): Buffer {
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  return Buffer.concat([varint(text.length), text, rest]);
}
