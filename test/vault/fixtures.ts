// Snapshots for the vault tests: small hand-made ones covering every kind of extent, and synthetic large ones
// shaped like a real snapshot (fixed chunks of random digests in one pack, zstd lengths that vary). A fixture is
// a manifest's fields with its packs as keys and its extents inline; `encodeSnapshot` makes the two objects.
import { createHash, randomBytes } from 'node:crypto';
import { compress, decompress } from 'zstd-napi';
import { encodeExtentTable, type EncodedExtentTable } from '../../src/vault/extent-table.ts';
import { packKey } from '../../src/vault/layout.ts';
import { chunkRange, encodeManifest, fixedChunkCount } from '../../src/vault/manifest.ts';
import { FORMAT_VERSION, type Extent, type Manifest, type PackRecord } from '../../src/vault/model.ts';

/** A snapshot as the tests write it: the manifest's fields, pack keys, and the extents themselves. */
export type Snapshot = Omit<Manifest, 'packs' | 'extents'> & { packs: string[]; extents: Extent[] };

/** The pack records of `s`: each pack as long as its furthest extent, `used` its distinct ranges. */
export function packRecords(s: Snapshot): PackRecord[] {
  const records = s.packs.map((key) => ({ key, size: 1, used: 0, ranges: new Map<number, number>() }));
  for (const e of s.extents) {
    const r = e.kind === 'stored' ? records[e.pack] : undefined;
    if (!r || e.kind !== 'stored') continue;
    r.ranges.set(e.offset, Math.max(r.ranges.get(e.offset) ?? 0, e.length));
    r.size = Math.max(r.size, e.offset + e.length);
  }
  return records.map(({ key, size, ranges }) => ({ key, size, used: Math.max(1, [...ranges.values()].reduce((a, b) => a + b, 0)) }));
}

/** The extent table and the manifest of `s`. */
export function encodeSnapshot(s: Snapshot): { manifest: Manifest; bytes: Buffer; table: EncodedExtentTable } {
  const packs = packRecords(s);
  const table = encodeExtentTable({ id: s.id, pageCount: s.pageCount, chunkPages: s.chunkPages, packSizes: packs.map((p) => p.size) }, s.extents);
  const manifest: Manifest = { ...s, packs, extents: table.ref };
  return { manifest, bytes: encodeManifest(manifest), table };
}

export const ID = '20261124T020304123Z-9f2c41d07a';
export const PARENT = '20261123T020304123Z-0123456789';

export function baseManifest(overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    formatVersion: FORMAT_VERSION,
    id: ID,
    parent: null,
    createdAt: '2026-11-24T02:03:04.123Z',
    completedAt: '2026-11-24T02:03:09.456Z',
    tool: { name: 'pagevault', version: '0.1.0' },
    tags: [],
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
export function smallManifest(): Snapshot {
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
export function syntheticManifest(bytes: number, chunkBytes: number, pageSize = 4096): Snapshot {
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

// Re-sealing: for tests of what the decoders do with a body whose digest is right but whose content is wrong
// (a buggy writer, or tampering that recomputed the SHA-256), the envelope is rebuilt here independently of
// src/vault/envelope.ts, from docs/FORMAT.md.

/** The raw (decompressed) body of an enveloped object. */
export function bodyOf(encoded: Buffer): Buffer {
  return decompress(encoded.subarray(20, encoded.length - 32));
}

export const MANIFEST_MAGIC = 'PVMANIF\0';
export const TABLE_MAGIC = 'PVEXTNT\0';

/** An object around `body`: header (with `version`, `magic`), zstd frame unless `compressed` is false, SHA-256. */
export function seal(body: Uint8Array, options: { version?: number; compressed?: boolean; flags?: number; magic?: string } = {}): Buffer {
  const compressed = options.compressed ?? true;
  const stored = compressed ? compress(body, { compressionLevel: 3 }) : Buffer.from(body);
  const header = Buffer.alloc(20);
  header.write(options.magic ?? MANIFEST_MAGIC, 0, 'latin1');
  header.writeUInt16BE(options.version ?? 2, 8);
  header.writeUInt16BE(options.flags ?? (compressed ? 1 : 0), 10);
  header.writeUInt32BE(stored.length, 12);
  header.writeUInt32BE(body.length, 16);
  const unsealed = Buffer.concat([header, stored]);
  return Buffer.concat([unsealed, createHash('sha256').update(unsealed).digest()]);
}

/** A manifest object holding `json` as its fields. */
export function sealJson(json: unknown, options: { version?: number } = {}): Buffer {
  return seal(Buffer.from(JSON.stringify(json), 'utf8'), options);
}

/** The JSON fields of an encoded manifest. */
export function jsonOf(encoded: Buffer): Record<string, unknown> {
  return JSON.parse(bodyOf(encoded).toString('utf8'));
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

/** An extent table object around `body`, and the manifest (of `s`) that names it. */
export function sealTable(s: Snapshot, body: Uint8Array, sizes?: number[]): { manifest: Manifest; bytes: Buffer } {
  const bytes = seal(body, { magic: TABLE_MAGIC });
  const extents = { count: s.extents.length, stored: s.extents.filter((e) => e.kind === 'stored').length, length: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  const packs = packRecords(s).map((p, i) => (sizes?.[i] ? { ...p, size: sizes[i], used: Math.min(p.used, sizes[i]) } : p));
  return { bytes, manifest: { ...s, packs, extents } };
}
