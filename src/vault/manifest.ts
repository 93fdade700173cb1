// The manifest's byte encoding, format v1 (specified in docs/FORMAT.md): a fixed header, a zstd-compressed
// body (the scalar fields as JSON, then the extent table as varints, then the stored extents' digests), and a
// SHA-256 over all of it. Decoding trusts nothing: every failure is an IntegrityError, never a crash.
import { createHash } from 'node:crypto';
import zstd from 'zstd-napi/binding.js';
import { vaultDefaults } from '../config/defaults.ts';
import { IntegrityError } from '../errors.ts';
import { isSnapshotId, isUtcTimestamp } from './ids.ts';
import { parsePackKey } from './layout.ts';
import { FORMAT_VERSION, type Extent, type ExtentCodec, type Manifest, type SourceCheckRecord } from './model.ts';

/** "PVMANIF" and a NUL: the first 8 bytes of every manifest. */
export const MANIFEST_MAGIC = Buffer.from('PVMANIF\0', 'latin1');
/** Magic (8), format version (u16), flags (u16), stored body length (u32), raw body length (u32); big-endian. */
export const MANIFEST_HEADER_SIZE = 20;
export const DIGEST_SIZE = 32;
/** Header flag: the body is one zstd frame (v1 writers always set it). No other flag exists in v1. */
export const FLAG_ZSTD = 0x0001;
/** SQLite's largest page count. */
export const MAX_PAGE_COUNT = 4_294_967_294;

// The kind byte of an extent record.
const KIND_ZERO = 0;
const KIND_RAW = 1;
const KIND_ZSTD = 2;
const codecKinds: Record<ExtentCodec, number> = { raw: KIND_RAW, zstd: KIND_ZSTD };

// Largest magnitude a zigzag-encoded delta may have, so that its encoding stays a safe integer.
const MAX_DELTA = 2 ** 52;

// ---------------------------------------------------------------------------------------------------------
// Varints: unsigned LEB128, 7 bits a byte, least significant group first, at most 8 bytes, values up to
// Number.MAX_SAFE_INTEGER. Signed deltas are zigzag-mapped first (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...).

function zigzag(n: number): number {
  return n >= 0 ? 2 * n : -2 * n - 1;
}

function unzigzag(v: number): number {
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}

class ByteWriter {
  private buf: Buffer;
  private length = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity));
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  varint(n: number): void {
    this.reserve(8);
    while (n >= 0x80) {
      this.buf[this.length++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.length++] = n;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** A problem found in bytes being decoded; decodeManifest turns it into an IntegrityError. */
class Malformed extends Error {}

class ByteReader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  byte(what: string): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw new Malformed(`the body ends inside ${what}`);
    this.pos++;
    return b;
  }

  varint(what: string): number {
    const first = this.buf[this.pos];
    if (first !== undefined && first < 0x80) {
      this.pos++;
      return first;
    }
    let value = 0;
    for (let i = 0, scale = 1; i < 8; i++, scale *= 0x80) {
      const b = this.byte(what);
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (b === 0 && i > 0) throw new Malformed(`${what} is a varint with a redundant trailing byte`);
        if (value > Number.MAX_SAFE_INTEGER) throw new Malformed(`${what} is larger than 2^53 - 1`);
        return value;
      }
    }
    throw new Malformed(`${what} is a varint longer than 8 bytes`);
  }

  bytes(n: number, what: string): Buffer {
    if (n > this.remaining) throw new Malformed(`the body ends inside ${what}`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The scalar fields (everything but formatVersion, which is in the header, and the extents). One checker
// serves both directions: on encode a problem is a programmer error (TypeError), on decode damage.

type ManifestHead = Omit<Manifest, 'formatVersion' | 'extents'>;

type Fail = (message: string) => never;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactRecord(v: unknown, path: string, keys: readonly string[], fail: Fail): Record<string, unknown> {
  if (!isRecord(v)) fail(`${path} must be an object`);
  const extra = Object.keys(v).filter((k) => !keys.includes(k));
  if (extra.length > 0) fail(`${path} has unknown fields: ${extra.join(', ')}`);
  const missing = keys.filter((k) => !(k in v));
  if (missing.length > 0) fail(`${path} lacks fields: ${missing.join(', ')}`);
  return v;
}

function int(v: unknown, path: string, min: number, max: number, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(`${path} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(v: unknown, path: string, fail: Fail): string {
  if (typeof v !== 'string') fail(`${path} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function timestamp(v: unknown, path: string, fail: Fail): string {
  if (!isUtcTimestamp(v)) fail(`${path} must be a UTC time like 2026-11-24T02:03:04.123Z, got ${JSON.stringify(v)}`);
  return v;
}

const HEAD_KEYS = ['id', 'parent', 'createdAt', 'completedAt', 'tool', 'pageSize', 'pageCount', 'chunkPages', 'databaseDigest', 'source', 'stats', 'packs'] as const;
const SOURCE_KEYS = ['path', 'fileName', 'applicationId', 'encoding', 'journalMode', 'sqliteVersion', 'headerChangeCounter', 'mode', 'hostname', 'check'] as const;
const CHECK_KEYS = ['kind', 'ok', 'errors', 'durationMs', 'sameState'] as const;
const ENCODINGS: readonly string[] = ['UTF-8', 'UTF-16le', 'UTF-16be'];
/** Lines of a source check's errors a manifest may hold, and characters per line. */
export const SOURCE_CHECK_MAX_ERRORS = 20;
export const SOURCE_CHECK_MAX_LINE = 500;
const STATS_KEYS = ['bytesRead', 'bytesUploaded', 'chunksNew', 'chunksReused', 'chunksZero', 'restarts', 'durationMs'] as const;

/** Checks the scalar fields of `v` and returns a copy holding exactly them, in a fixed order. */
function checkHead(v: unknown, fail: Fail): ManifestHead {
  const h = exactRecord(v, 'the manifest', HEAD_KEYS, fail);
  const id = str(h.id, 'id', fail);
  if (!isSnapshotId(id)) fail(`id ${JSON.stringify(id)} is not a snapshot id`);
  let parent: string | null = null;
  if (h.parent !== null) {
    parent = str(h.parent, 'parent', fail);
    if (!isSnapshotId(parent) || parent === id) fail(`parent must be null or the id of another snapshot, got ${JSON.stringify(parent)}`);
  }

  const tool = exactRecord(h.tool, 'tool', ['name', 'version'], fail);
  if (tool.name !== 'pagevault') fail(`tool.name must be "pagevault", got ${JSON.stringify(tool.name)}`);
  const toolVersion = str(tool.version, 'tool.version', fail);

  const pageSize = int(h.pageSize, 'pageSize', 512, 65536, fail);
  if ((pageSize & (pageSize - 1)) !== 0) fail(`pageSize must be a power of two, got ${pageSize}`);
  let databaseDigest: string | null = null;
  if (h.databaseDigest !== null) {
    databaseDigest = str(h.databaseDigest, 'databaseDigest', fail);
    if (!/^[0-9a-f]{64}$/.test(databaseDigest)) fail(`databaseDigest must be null or 64 lowercase hex digits, got ${JSON.stringify(databaseDigest)}`);
  }

  const source = exactRecord(h.source, 'source', SOURCE_KEYS, fail);
  const path = source.path === null ? null : str(source.path, 'source.path', fail);
  if (path !== null && !path.startsWith('/')) fail(`source.path must be null or an absolute path, got ${JSON.stringify(path)}`);
  const fileName = source.fileName === null ? null : str(source.fileName, 'source.fileName', fail);
  const encoding = str(source.encoding, 'source.encoding', fail);
  if (!ENCODINGS.includes(encoding)) fail(`source.encoding must be one of ${ENCODINGS.join(', ')}, got ${JSON.stringify(encoding)}`);
  const stats = exactRecord(h.stats, 'stats', STATS_KEYS, fail);

  if (!Array.isArray(h.packs)) fail('packs must be an array of pack keys');
  const packs = h.packs.map((key: unknown, i) => {
    const s = str(key, `packs[${i}]`, fail);
    try {
      parsePackKey(s);
    } catch (err) {
      fail(`packs[${i}]: ${(err as Error).message}`);
    }
    return s;
  });
  if (new Set(packs).size !== packs.length) fail('packs lists a key twice');

  return {
    id,
    parent,
    createdAt: timestamp(h.createdAt, 'createdAt', fail),
    completedAt: timestamp(h.completedAt, 'completedAt', fail),
    tool: { name: 'pagevault', version: toolVersion },
    pageSize,
    pageCount: int(h.pageCount, 'pageCount', 0, MAX_PAGE_COUNT, fail),
    chunkPages: int(h.chunkPages, 'chunkPages', 1, MAX_PAGE_COUNT, fail),
    databaseDigest,
    source: {
      path,
      fileName,
      applicationId: int(source.applicationId, 'source.applicationId', -(2 ** 31), 2 ** 31 - 1, fail),
      encoding,
      journalMode: str(source.journalMode, 'source.journalMode', fail),
      sqliteVersion: str(source.sqliteVersion, 'source.sqliteVersion', fail),
      headerChangeCounter: int(source.headerChangeCounter, 'source.headerChangeCounter', 0, 0xffff_ffff, fail),
      mode: str(source.mode, 'source.mode', fail),
      hostname: str(source.hostname, 'source.hostname', fail),
      check: source.check === null ? null : checkRecord(source.check, fail),
    },
    stats: Object.fromEntries(STATS_KEYS.map((k) => [k, int(stats[k], `stats.${k}`, 0, Number.MAX_SAFE_INTEGER, fail)])) as Record<(typeof STATS_KEYS)[number], number>,
    packs,
  };
}

function checkRecord(v: unknown, fail: Fail): SourceCheckRecord {
  const c = exactRecord(v, 'source.check', CHECK_KEYS, fail);
  if (c.kind !== 'quick_check' && c.kind !== 'integrity_check') fail(`source.check.kind must be "quick_check" or "integrity_check", got ${JSON.stringify(c.kind)}`);
  if (typeof c.ok !== 'boolean') fail(`source.check.ok must be true or false, got ${JSON.stringify(c.ok)}`);
  if (typeof c.sameState !== 'boolean') fail(`source.check.sameState must be true or false, got ${JSON.stringify(c.sameState)}`);
  if (!Array.isArray(c.errors) || c.errors.length > SOURCE_CHECK_MAX_ERRORS) fail(`source.check.errors must be an array of at most ${SOURCE_CHECK_MAX_ERRORS} lines`);
  const errors = c.errors.map((line: unknown, i) => {
    const s = str(line, `source.check.errors[${i}]`, fail);
    if (s.length > SOURCE_CHECK_MAX_LINE) fail(`source.check.errors[${i}] is longer than ${SOURCE_CHECK_MAX_LINE} characters`);
    return s;
  });
  if (c.ok === (errors.length > 0)) fail(c.ok ? 'source.check is ok but lists errors' : 'source.check failed but lists no error');
  return { kind: c.kind, ok: c.ok, errors, durationMs: int(c.durationMs, 'source.check.durationMs', 0, Number.MAX_SAFE_INTEGER, fail), sameState: c.sameState };
}

/** What is wrong with extent `i` of a manifest with these scalar fields, or undefined. */
function extentProblem(e: Extent, i: number, head: ManifestHead): string | undefined {
  const { firstPage, pageCount } = e;
  if (!Number.isSafeInteger(firstPage) || !Number.isSafeInteger(pageCount) || firstPage < 1 || pageCount < 1 || firstPage + pageCount - 1 > head.pageCount) {
    return `extent ${i} covers pages ${firstPage}+${pageCount}, outside the database's pages 1-${head.pageCount}`;
  }
  if (e.kind === 'zero') return undefined;
  if (e.kind !== 'stored') return `extent ${i} has unknown kind ${JSON.stringify((e as { kind: unknown }).kind)}`;
  if (!Number.isSafeInteger(e.pack) || e.pack < 0 || e.pack >= head.packs.length) {
    return `extent ${i} refers to pack ${e.pack}, but the manifest lists ${head.packs.length} packs`;
  }
  if (!Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.length) || e.offset < 0 || e.length < 1 || e.offset + e.length > MAX_DELTA) {
    return `extent ${i} has an invalid byte range: offset ${e.offset}, length ${e.length}`;
  }
  if (pageCount > head.chunkPages) return `extent ${i} stores ${pageCount} pages, more than one chunk (${head.chunkPages})`;
  if (!(e.codec in codecKinds)) return `extent ${i} has unknown codec ${JSON.stringify(e.codec)}`;
  if (e.codec === 'raw' && e.length !== pageCount * head.pageSize) {
    return `extent ${i} is stored raw in ${e.length} bytes, but its ${pageCount} pages are ${pageCount * head.pageSize}`;
  }
  if (!(e.digest instanceof Uint8Array) || e.digest.length !== DIGEST_SIZE) return `extent ${i} needs a ${DIGEST_SIZE}-byte digest`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------

/**
 * A manifest whose extents may be any iterable that starts over each time it is walked (an array, or an object
 * whose [Symbol.iterator] is a generator function): the encoder walks it twice, records then digests.
 */
export type ManifestToEncode = Omit<Manifest, 'extents'> & { extents: Iterable<Extent> };

/**
 * The manifest's bytes. Throws TypeError or RangeError when `m` does not satisfy the model. The extents are
 * taken one at a time, in two walks (the records, then the digests, which follow all records): a snapshot hands
 * an iterable over its chunk tables, so that a manifest of 131,072 extents never needs an object for each at
 * once. The body is built at its exact size and compressed straight into the buffer returned.
 */
export function encodeManifest(m: ManifestToEncode): Buffer {
  const failType = (message: string): never => {
    throw new TypeError(`encode manifest ${String(m?.id)}: ${message}`);
  };
  if (m?.formatVersion !== FORMAT_VERSION) failType(`formatVersion must be ${FORMAT_VERSION}`);
  if (typeof (m.extents as Partial<Iterable<Extent>> | undefined)?.[Symbol.iterator] !== 'function') failType('extents must be an array or another iterable');
  const { formatVersion: _v, extents: _e, ...rest } = m;
  const head = checkHead(rest, failType);
  const json = Buffer.from(JSON.stringify(head), 'utf8');

  const records = new ByteWriter(4096);
  let count = 0;
  let stored = 0;
  let prevEnd = 1;
  const packEnds = new Array<number>(head.packs.length).fill(0);
  for (const e of m.extents) {
    const i = count++;
    const problem = extentProblem(e, i, head);
    if (problem) throw new RangeError(`encode manifest ${head.id}: ${problem}`);
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
  const start = new ByteWriter(json.length + 16);
  start.varint(json.length);
  start.bytes(json);
  start.varint(count);
  const fields = start.result();
  const rows = records.result();
  const body = Buffer.allocUnsafe(fields.length + rows.length + stored * DIGEST_SIZE);
  if (body.length > 0xffff_ffff) throw new RangeError(`encode manifest ${head.id}: the body is ${body.length} bytes, more than 4 GiB`);
  let at = fields.copy(body, 0);
  at += rows.copy(body, at);
  let digests = 0;
  for (const e of m.extents) {
    if (e.kind !== 'stored') continue;
    if (digests === stored || !(e.digest instanceof Uint8Array) || e.digest.length !== DIGEST_SIZE) break;
    body.set(e.digest, at + digests++ * DIGEST_SIZE);
  }
  if (digests !== stored) failType('the extents changed between two walks (give an array, or an iterable that starts over)');

  const out = Buffer.allocUnsafe(MANIFEST_HEADER_SIZE + zstd.compressBound(body.length) + DIGEST_SIZE);
  manifestCCtx ??= new zstd.CCtx();
  const packed = manifestCCtx.compress(out.subarray(MANIFEST_HEADER_SIZE, out.length - DIGEST_SIZE), body, vaultDefaults.manifestCompressionLevel);
  MANIFEST_MAGIC.copy(out, 0);
  out.writeUInt16BE(FORMAT_VERSION, 8);
  out.writeUInt16BE(FLAG_ZSTD, 10);
  out.writeUInt32BE(packed, 12);
  out.writeUInt32BE(body.length, 16);
  const end = MANIFEST_HEADER_SIZE + packed;
  createHash('sha256').update(out.subarray(0, end)).digest().copy(out, end);
  return out.subarray(0, end + DIGEST_SIZE);
}

let manifestCCtx: zstd.CCtx | undefined;

/**
 * A manifest read and verified (its digest, its fields, every extent record), whose extents are made on
 * demand, one at a time: what a snapshot needs of its parent, without an object per extent at once.
 */
export type ManifestView = Omit<Manifest, 'extents'> & {
  /** The size of the manifest object. */
  byteLength: number;
  extentCount: number;
  /** The extents in page-map order; stored extents' digests are views of the body the view holds. */
  extents(): Generator<Extent, void, undefined>;
};

/**
 * The manifest in `bytes`. With `expectedId` (the id its key names), a manifest holding another id is refused:
 * a renamed manifest is tampering. Throws IntegrityError: MANIFEST_VERSION for a newer format, otherwise
 * MANIFEST_DAMAGED. Stored extents' digests are views of one buffer owned by the result.
 */
export function decodeManifest(bytes: Uint8Array, expectedId?: string): Manifest {
  const { byteLength: _b, extentCount: _n, extents, ...head } = openManifest(bytes, expectedId);
  return { ...head, extents: [...extents()] };
}

/** decodeManifest, with the extents left in the bytes until asked for (see ManifestView). Throws as it does. */
export function openManifest(bytes: Uint8Array, expectedId?: string): ManifestView {
  let label = expectedId === undefined ? 'manifest' : `manifest ${expectedId}`;
  try {
    return open(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), expectedId, (id) => {
      if (expectedId === undefined) label = `manifest ${id}`;
    });
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    const detail = err instanceof Malformed ? err.message : `it cannot be decoded (${(err as Error)?.message ?? String(err)})`;
    throw new IntegrityError('MANIFEST_DAMAGED', `${label} is damaged: ${detail}`, { cause: err });
  }
}

function open(buf: Buffer, expectedId: string | undefined, knownId: (id: string) => void): ManifestView {
  if (buf.length < MANIFEST_MAGIC.length || !MANIFEST_MAGIC.equals(buf.subarray(0, MANIFEST_MAGIC.length))) {
    throw new Malformed('it does not start with the pagevault manifest magic');
  }
  if (buf.length < 10) throw new Malformed(`it is truncated (${buf.length} bytes)`);
  const version = buf.readUInt16BE(8);
  if (version > FORMAT_VERSION) {
    const label = expectedId === undefined ? 'manifest' : `manifest ${expectedId}`;
    throw new IntegrityError('MANIFEST_VERSION', `${label} was written by a newer pagevault (format ${version}); upgrade pagevault to read it`);
  }
  if (version !== FORMAT_VERSION) throw new Malformed(`it claims format ${version}, which never existed`);
  if (buf.length < MANIFEST_HEADER_SIZE + DIGEST_SIZE) throw new Malformed(`it is truncated (${buf.length} bytes)`);
  const end = buf.length - DIGEST_SIZE;
  if (!createHash('sha256').update(buf.subarray(0, end)).digest().equals(buf.subarray(end))) {
    throw new Malformed('its SHA-256 does not match its content (truncated, altered or not written by pagevault)');
  }

  const flags = buf.readUInt16BE(10);
  const storedLength = buf.readUInt32BE(12);
  const rawLength = buf.readUInt32BE(16);
  if ((flags & ~FLAG_ZSTD) !== 0) throw new Malformed(`it has unknown flags 0x${flags.toString(16)}`);
  if (MANIFEST_HEADER_SIZE + storedLength !== end) throw new Malformed(`its header says the body is ${storedLength} bytes, but it is ${end - MANIFEST_HEADER_SIZE}`);
  const stored = buf.subarray(MANIFEST_HEADER_SIZE, end);
  let body: Buffer;
  if (flags & FLAG_ZSTD) {
    // One frame, exactly the stored bytes, declaring the raw length: memory is bounded by the header, whatever the frame says.
    if (zstd.findFrameCompressedSize(stored) !== storedLength || zstd.getFrameContentSize(stored) !== rawLength) {
      throw new Malformed('its body is not one zstd frame of the sizes the header gives');
    }
    body = Buffer.allocUnsafe(rawLength);
    if (zstd.decompress(body, stored) !== rawLength) throw new Malformed('its body decompresses to the wrong size');
  } else {
    if (rawLength !== storedLength) throw new Malformed('its header gives two lengths for an uncompressed body');
    body = Buffer.from(stored); // a copy: the digests must not alias the caller's buffer
  }

  const r = new ByteReader(body);
  const jsonBytes = r.bytes(r.varint('the JSON length'), 'the JSON fields');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(jsonBytes));
  } catch (err) {
    throw new Malformed(`its JSON fields do not parse (${(err as Error).message})`);
  }
  if (isRecord(parsed) && isSnapshotId(parsed.id)) knownId(parsed.id);
  const head = checkHead(parsed, (message) => {
    throw new Malformed(message);
  });
  if (expectedId !== undefined && head.id !== expectedId) {
    throw new Malformed(`its key names snapshot ${expectedId} but it holds snapshot ${head.id} (renamed or tampered with)`);
  }

  const count = r.varint('the extent count');
  // Every extent record takes at least 3 bytes: no allocation larger than the body allows.
  if (count > r.remaining / 3) throw new Malformed(`it claims ${count} extents in ${r.remaining} bytes`);
  // The records are read twice: once here, checking each and counting the stored ones (their digests follow
  // the last record), then each time extents() is walked.
  const recordsAt = r.pos;
  let storedCount = 0;
  for (const e of readRecords(r, count, head)) if (e.kind === 'stored') storedCount++;
  if (r.remaining !== storedCount * DIGEST_SIZE) throw new Malformed(`it has ${r.remaining} bytes of digests for ${storedCount} stored extents`);
  const digestsAt = r.pos;
  return {
    formatVersion: FORMAT_VERSION,
    ...head,
    byteLength: buf.length,
    extentCount: count,
    *extents() {
      const records = new ByteReader(body);
      records.pos = recordsAt;
      let at = digestsAt;
      for (const e of readRecords(records, count, head)) {
        if (e.kind === 'stored') {
          e.digest = body.subarray(at, at + DIGEST_SIZE);
          at += DIGEST_SIZE;
        }
        yield e;
      }
    },
  };
}

/** The `count` extent records at `r`, each checked; stored extents carry a placeholder digest. */
function* readRecords(r: ByteReader, count: number, head: ManifestHead): Generator<Extent, void, undefined> {
  const packEnds = new Array<number>(head.packs.length).fill(0);
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
    const problem = extentProblem(e, i, head);
    if (problem) throw new Malformed(problem);
    if (e.kind === 'stored') packEnds[e.pack] = e.offset + e.length;
    prevEnd = firstPage + pageCount;
    yield e;
  }
}

// A placeholder until the digest block is read; never returned.
const EMPTY_DIGEST = new Uint8Array(DIGEST_SIZE);

// ---------------------------------------------------------------------------------------------------------
// Chunk arithmetic and digests, shared by the snapshot and restore code.

function requireCount(n: number, name: string, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${n}`);
}

/** How many fixed chunks a database of `pageCount` pages has: the last one may be short. */
export function fixedChunkCount(pageCount: number, chunkPages: number): number {
  requireCount(pageCount, 'pageCount', 0);
  requireCount(chunkPages, 'chunkPages', 1);
  return Math.ceil(pageCount / chunkPages);
}

/** The pages of fixed chunk `index` (from 0). */
export function chunkRange(index: number, pageCount: number, chunkPages: number): { firstPage: number; pageCount: number } {
  const count = fixedChunkCount(pageCount, chunkPages);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`chunk index must be an integer from 0 to ${count - 1}, got ${index}`);
  }
  const firstPage = index * chunkPages + 1;
  return { firstPage, pageCount: Math.min(chunkPages, pageCount - firstPage + 1) };
}

/** SHA-256 of `byteLength` zero bytes: the digest of an all-zero chunk (the codec's, so the two always agree). */
export { zeroDigest } from '../chunk/codec.ts';

/** Manifest.databaseDigest: hex SHA-256 of the fixed chunks' digests, concatenated in page order. */
export function databaseDigest(chunkDigests: Iterable<Uint8Array>): string {
  const hash = createHash('sha256');
  for (const d of chunkDigests) {
    if (!(d instanceof Uint8Array) || d.length !== DIGEST_SIZE) throw new RangeError(`chunk digests must be ${DIGEST_SIZE} bytes`);
    hash.update(d);
  }
  return hash.digest('hex');
}
