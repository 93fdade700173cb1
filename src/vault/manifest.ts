// The manifest's byte encoding, format v2 (specified in docs/FORMAT.md): the snapshot's summary as one JSON
// object in the envelope (envelope.ts). It is small (no extent table: that is extent-table.ts), so a listing
// reads manifests alone. Decoding trusts nothing: every failure is an IntegrityError, never a crash.
import { createHash } from 'node:crypto';
import { BugError, IntegrityError } from '../errors.ts';
import { DIGEST_BYTES as DIGEST_SIZE } from '../chunk/codec.ts';
import { Malformed } from './bytes.ts';
import { decoding, objectKinds, seal, unseal } from './envelope.ts';
import { isSnapshotId, isUtcTimestamp } from './ids.ts';
import { parsePackKey } from './layout.ts';
import { FORMAT_VERSION, type Manifest, type SourceCheckRecord } from './model.ts';

/** SQLite's largest page count. */
export const MAX_PAGE_COUNT = 4_294_967_294;
/** The largest object (a pack) a manifest may record: S3's 5 TiB. */
export const MAX_OBJECT_SIZE = 5 * 2 ** 40;

// ---------------------------------------------------------------------------------------------------------
// The fields. One checker serves both directions: on encode a problem is our bug (BugError), on decode damage.

type ManifestHead = Omit<Manifest, 'formatVersion'>;

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

const HEAD_KEYS = ['id', 'parent', 'createdAt', 'completedAt', 'tool', 'tags', 'pageSize', 'pageCount', 'chunkPages', 'databaseDigest', 'source', 'stats', 'packs', 'extents'] as const;
const PACK_KEYS = ['key', 'size', 'used'] as const;
const EXTENTS_KEYS = ['count', 'stored', 'length', 'sha256'] as const;
/** Tags: at most this many, each 1 to TAG_MAX_LENGTH printable characters without spaces or commas. */
export const MAX_TAGS = 64;
export const TAG_MAX_LENGTH = 128;

/** Why `tag` cannot be a tag, or undefined. */
export function tagProblem(tag: unknown): string | undefined {
  if (typeof tag === 'string' && tag.length >= 1 && tag.length <= TAG_MAX_LENGTH && /^[^\s,\p{Cc}]+$/u.test(tag)) return undefined;
  return `${JSON.stringify(tag)} is not a tag: 1-${TAG_MAX_LENGTH} characters, no spaces, commas or control characters`;
}
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

  if (!Array.isArray(h.tags) || h.tags.length > MAX_TAGS) fail(`tags must be an array of at most ${MAX_TAGS} tags`);
  const tags = h.tags.map((t: unknown, i) => {
    const problem = tagProblem(t);
    if (problem) fail(`tags[${i}]: ${problem}`);
    return t as string;
  });
  if (new Set(tags).size !== tags.length) fail('tags lists a tag twice');

  if (!Array.isArray(h.packs)) fail('packs must be an array of pack records');
  const packs = h.packs.map((v: unknown, i) => {
    const p = exactRecord(v, `packs[${i}]`, PACK_KEYS, fail);
    const key = str(p.key, `packs[${i}].key`, fail);
    try {
      parsePackKey(key);
    } catch (err) {
      fail(`packs[${i}]: ${(err as Error).message}`);
    }
    const size = int(p.size, `packs[${i}].size`, 1, MAX_OBJECT_SIZE, fail);
    return { key, size, used: int(p.used, `packs[${i}].used`, 1, size, fail) };
  });
  if (new Set(packs.map((p) => p.key)).size !== packs.length) fail('packs lists a key twice');

  const x = exactRecord(h.extents, 'extents', EXTENTS_KEYS, fail);
  const sha256 = str(x.sha256, 'extents.sha256', fail);
  if (!/^[0-9a-f]{64}$/.test(sha256)) fail(`extents.sha256 must be 64 lowercase hex digits, got ${JSON.stringify(sha256)}`);
  const count = int(x.count, 'extents.count', 0, Number.MAX_SAFE_INTEGER, fail);
  const extents = { count, stored: int(x.stored, 'extents.stored', 0, count, fail), length: int(x.length, 'extents.length', 1, 0xffff_ffff, fail), sha256 };

  return {
    id,
    parent,
    createdAt: timestamp(h.createdAt, 'createdAt', fail),
    completedAt: timestamp(h.completedAt, 'completedAt', fail),
    tool: { name: 'pagevault', version: toolVersion },
    tags,
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
    extents,
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

// ---------------------------------------------------------------------------------------------------------

/** The manifest's bytes. Throws BugError when `m` does not satisfy the model. */
export function encodeManifest(m: Manifest): Buffer {
  const fail = (message: string): never => {
    throw new BugError(`encode manifest ${String(m?.id)}: ${message}`);
  };
  if (m?.formatVersion !== FORMAT_VERSION) fail(`formatVersion must be ${FORMAT_VERSION}`);
  const { formatVersion: _v, ...rest } = m;
  return seal(objectKinds.manifest, Buffer.from(JSON.stringify(checkHead(rest, fail)), 'utf8'));
}

/**
 * The manifest in `bytes`. With `expectedId` (the id its key names), a manifest holding another id is refused:
 * a renamed manifest is tampering. Throws IntegrityError: MANIFEST_VERSION for another format, otherwise
 * MANIFEST_DAMAGED.
 */
export function decodeManifest(bytes: Uint8Array, expectedId?: string): Manifest {
  let label = expectedId === undefined ? 'manifest' : `manifest ${expectedId}`;
  const damaged = (detail: string, cause: unknown) => new IntegrityError('MANIFEST_DAMAGED', `${label} is damaged: ${detail}`, { cause });
  return decoding(damaged, () => {
    const body = unseal(objectKinds.manifest, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), label);
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
    } catch (err) {
      throw new Malformed(`its JSON does not parse (${(err as Error).message})`);
    }
    if (expectedId === undefined && isRecord(parsed) && isSnapshotId(parsed.id)) label = `manifest ${parsed.id}`;
    const head = checkHead(parsed, (message) => {
      throw new Malformed(message);
    });
    if (expectedId !== undefined && head.id !== expectedId) {
      throw new Malformed(`its key names snapshot ${expectedId} but it holds snapshot ${head.id} (renamed or tampered with)`);
    }
    return { formatVersion: FORMAT_VERSION, ...head };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Chunk arithmetic and digests, shared by the snapshot and restore code.

function requireCount(n: number, name: string, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new BugError(`${name} must be an integer >= ${min}, got ${n}`);
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
    throw new BugError(`chunk index must be an integer from 0 to ${count - 1}, got ${index}`);
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
    if (!(d instanceof Uint8Array) || d.length !== DIGEST_SIZE) throw new BugError(`chunk digests must be ${DIGEST_SIZE} bytes`);
    hash.update(d);
  }
  return hash.digest('hex');
}
