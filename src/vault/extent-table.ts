// The extent table's byte encoding, format v2 (specified in docs/FORMAT.md, "The extent table"): where every
// page of one snapshot is. Records as varints (page and offset deltas, so a full snapshot's fixed chunks cost
// a few bytes each), then the stored extents' digests, in the envelope (envelope.ts). The manifest binds the
// table by its length and SHA-256 and gives what the records are checked against (page count, chunk size,
// packs). Decoding trusts nothing: every failure is an IntegrityError, never a crash.
import { createHash } from 'node:crypto';
import { DIGEST_BYTES } from '../chunk/codec.ts';
import { BugError, IntegrityError } from '../errors.ts';
import { ByteReader, ByteWriter, Malformed, unzigzag, zigzag } from './bytes.ts';
import { decoding, objectKinds, seal, unseal } from './envelope.ts';
import type { Extent, ExtentCodec, ExtentTableRef, Manifest } from './model.ts';

// The kind byte of an extent record.
const KIND_ZERO = 0;
const KIND_RAW = 1;
const KIND_ZSTD = 2;
const codecKinds: Record<ExtentCodec, number> = { raw: KIND_RAW, zstd: KIND_ZSTD };

// Largest magnitude a zigzag-encoded delta may have, so that its encoding stays a safe integer.
const MAX_DELTA = 2 ** 52;

/** What the records of a table are checked against: the manifest's fields, or those of one being written. */
export type TableContext = Pick<Manifest, 'id' | 'pageCount' | 'chunkPages'> & {
  /** The size of each pack the records may refer to, by index. */
  packSizes: readonly number[];
};

/** What is wrong with extent `i`, or undefined. */
function extentProblem(e: Extent, i: number, c: TableContext): string | undefined {
  const { firstPage, pageCount } = e;
  if (!Number.isSafeInteger(firstPage) || !Number.isSafeInteger(pageCount) || firstPage < 1 || pageCount < 1 || firstPage + pageCount - 1 > c.pageCount) {
    return `extent ${i} covers pages ${firstPage}+${pageCount}, outside the database's pages 1-${c.pageCount}`;
  }
  if (pageCount > c.chunkPages) return `extent ${i} covers ${pageCount} pages, more than one chunk (${c.chunkPages})`;
  if (e.kind === 'zero') return undefined;
  if (e.kind !== 'stored') return `extent ${i} has unknown kind ${JSON.stringify((e as { kind: unknown }).kind)}`;
  if (!Number.isSafeInteger(e.pack) || e.pack < 0 || e.pack >= c.packSizes.length) {
    return `extent ${i} refers to pack ${e.pack}, but the manifest lists ${c.packSizes.length} packs`;
  }
  if (!Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.length) || e.offset < 0 || e.length < 1 || e.offset + e.length > MAX_DELTA) {
    return `extent ${i} has an invalid byte range: offset ${e.offset}, length ${e.length}`;
  }
  if (e.offset + e.length > c.packSizes[e.pack]!) {
    return `extent ${i} ends at byte ${e.offset + e.length} of pack ${e.pack}, which is ${c.packSizes[e.pack]} bytes`;
  }
  if (!(e.codec in codecKinds)) return `extent ${i} has unknown codec ${JSON.stringify(e.codec)}`;
  if (!(e.digest instanceof Uint8Array) || e.digest.length !== DIGEST_BYTES) return `extent ${i} needs a ${DIGEST_BYTES}-byte digest`;
  return undefined;
}

/** An encoded extent table and the reference the manifest keeps to it. */
export interface EncodedExtentTable {
  bytes: Buffer;
  ref: ExtentTableRef;
}

/**
 * The extent table's bytes. `extents` may be any iterable that starts over each time it is walked (an array, or
 * an object whose [Symbol.iterator] is a generator function): it is walked twice, the records then the digests,
 * so that a table of 131,072 extents never needs an object for each at once. Throws BugError when an extent
 * does not satisfy the model.
 */
export function encodeExtentTable(context: TableContext, extents: Iterable<Extent>): EncodedExtentTable {
  const fail = (message: string): never => {
    throw new BugError(`encode the extent table of ${context.id}: ${message}`);
  };
  if (typeof (extents as Partial<Iterable<Extent>> | undefined)?.[Symbol.iterator] !== 'function') fail('extents must be an array or another iterable');
  const records = new ByteWriter(4096);
  let count = 0;
  let stored = 0;
  let prevEnd = 1;
  const packEnds = new Array<number>(context.packSizes.length).fill(0);
  for (const e of extents) {
    const i = count++;
    const problem = extentProblem(e, i, context);
    if (problem) fail(problem);
    records.byte(e.kind === 'zero' ? KIND_ZERO : codecKinds[e.codec]);
    records.varint(zigzag(e.firstPage - prevEnd));
    records.varint(e.pageCount);
    prevEnd = e.firstPage + e.pageCount;
    if (e.kind === 'stored') {
      stored++;
      records.varint(e.pack);
      records.varint(zigzag(e.offset - packEnds[e.pack]!));
      records.varint(e.length);
      packEnds[e.pack] = e.offset + e.length;
    }
  }
  const start = new ByteWriter(16);
  start.varint(count);
  const lead = start.result();
  const rows = records.result();
  const body = Buffer.allocUnsafe(lead.length + rows.length + stored * DIGEST_BYTES);
  let at = lead.copy(body, 0);
  at += rows.copy(body, at);
  let digests = 0;
  for (const e of extents) {
    if (e.kind !== 'stored') continue;
    if (digests === stored || !(e.digest instanceof Uint8Array) || e.digest.length !== DIGEST_BYTES) break;
    body.set(e.digest, at + digests++ * DIGEST_BYTES);
  }
  if (digests !== stored) fail('the extents changed between two walks (give an array, or an iterable that starts over)');
  const bytes = seal(objectKinds.extentTable, body);
  return { bytes, ref: { count, stored, length: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') } };
}

/** A snapshot's extents, made on demand from the table's bytes, one at a time. */
export interface ExtentTable {
  count: number;
  /** The extents in page-map order; stored extents' digests are views of the body the table holds. */
  extents(): Generator<Extent, void, undefined>;
}

/**
 * The extent table of `manifest` in `bytes`, checked whole: that it is the very object the manifest names
 * (length and SHA-256), then its envelope, then every record against the manifest. Throws IntegrityError
 * EXTENTS_DAMAGED (MANIFEST_VERSION for another format).
 */
export function openExtentTable(bytes: Uint8Array, manifest: Manifest): ExtentTable {
  const label = `the extent table of snapshot ${manifest.id}`;
  const damaged = (detail: string, cause: unknown) => new IntegrityError('EXTENTS_DAMAGED', `${label} is damaged: ${detail}`, { cause });
  return decoding(damaged, () => {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const ref = manifest.extents;
    if (buf.length !== ref.length || createHash('sha256').update(buf).digest('hex') !== ref.sha256) {
      throw new Malformed(`it is not the table its manifest names (${buf.length} bytes, the manifest says ${ref.length} with another SHA-256): replaced or altered`);
    }
    const body = unseal(objectKinds.extentTable, buf, label);
    const context: TableContext = { id: manifest.id, pageCount: manifest.pageCount, chunkPages: manifest.chunkPages, packSizes: manifest.packs.map((p) => p.size) };
    const r = new ByteReader(body);
    const count = r.varint('the extent count');
    if (count !== ref.count) throw new Malformed(`it holds ${count} extents, its manifest says ${ref.count}`);
    // Every extent record takes at least 3 bytes: no allocation larger than the body allows.
    if (count > r.remaining / 3) throw new Malformed(`it claims ${count} extents in ${r.remaining} bytes`);
    // The records are read twice: once here, checking each and counting the stored ones (their digests follow
    // the last record), then each time extents() is walked.
    const recordsAt = r.pos;
    let storedCount = 0;
    for (const e of readRecords(r, count, context)) if (e.kind === 'stored') storedCount++;
    if (storedCount !== ref.stored) throw new Malformed(`it holds ${storedCount} stored extents, its manifest says ${ref.stored}`);
    if (r.remaining !== storedCount * DIGEST_BYTES) throw new Malformed(`it has ${r.remaining} bytes of digests for ${storedCount} stored extents`);
    const digestsAt = r.pos;
    return {
      count,
      *extents() {
        const records = new ByteReader(body);
        records.pos = recordsAt;
        let at = digestsAt;
        for (const e of readRecords(records, count, context)) {
          if (e.kind === 'stored') {
            e.digest = body.subarray(at, at + DIGEST_BYTES);
            at += DIGEST_BYTES;
          }
          yield e;
        }
      },
    };
  });
}

/** The `count` extent records at `r`, each checked; stored extents carry a placeholder digest. */
function* readRecords(r: ByteReader, count: number, context: TableContext): Generator<Extent, void, undefined> {
  const packEnds = new Array<number>(context.packSizes.length).fill(0);
  let prevEnd = 1;
  const what = 'the extent table';
  for (let i = 0; i < count; i++) {
    const kind = r.byte(what);
    const firstPage = prevEnd + unzigzag(r.varint(what));
    const pageCount = r.varint(what);
    let e: Extent;
    if (kind === KIND_ZERO) {
      e = { kind: 'zero', firstPage, pageCount };
    } else if (kind === KIND_RAW || kind === KIND_ZSTD) {
      const pack = r.varint(what);
      const offset = (packEnds[pack] ?? 0) + unzigzag(r.varint(what));
      const length = r.varint(what);
      const codec: ExtentCodec = kind === KIND_RAW ? 'raw' : 'zstd';
      e = { kind: 'stored', firstPage, pageCount, pack, offset, length, codec, digest: EMPTY_DIGEST };
    } else {
      throw new Malformed(`extent ${i} has unknown kind byte ${kind}`);
    }
    const problem = extentProblem(e, i, context);
    if (problem) throw new Malformed(problem);
    if (e.kind === 'stored') packEnds[e.pack] = e.offset + e.length;
    prevEnd = firstPage + pageCount;
    yield e;
  }
}

// A placeholder until the digest block is read; never returned.
const EMPTY_DIGEST = new Uint8Array(DIGEST_BYTES);
