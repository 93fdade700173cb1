// Object keys of a vault, relative to the vault prefix (the storage client applies the URL's prefix).
// docs/FORMAT.md is the specification; this file is its one implementation.
import { UsageError } from '../errors.ts';
import { isSnapshotId } from './ids.ts';

export const configKey = 'pagevault.json';
export const manifestPrefix = 'manifests/';
export const extentsPrefix = 'extents/';
export const packsPrefix = 'packs/';
/** Garbage collection's own objects: marks (condemned objects) and the records of prune runs. */
export const marksPrefix = 'gc/marks/';
export const runsPrefix = 'gc/runs/';

/** Page numbers in pack keys are zero-padded to this many digits, so keys sort by page. */
export const PAGE_DIGITS = 10;
/** The largest page number a pack key can name (SQLite's own limit is 4294967294). */
export const MAX_KEY_PAGE = 10 ** PAGE_DIGITS - 1;
/** The largest seq suffix of a pack key (nine digits). */
export const MAX_PACK_SEQ = 999_999_999;

export interface PackKeyParts {
  snapshotId: string;
  firstPage: number;
  lastPage: number;
  /** 0 for the first pack over a page range in a snapshot; 1, 2, ... for later ones overlapping it. */
  seq: number;
}

function badKey(message: string): UsageError {
  return new UsageError('BAD_KEY', message);
}

function requireSnapshotId(id: string, what: string): void {
  if (!isSnapshotId(id)) throw badKey(`${what}: ${JSON.stringify(id)} is not a snapshot id`);
}

export function manifestKey(id: string): string {
  requireSnapshotId(id, 'manifest key');
  return manifestPrefix + id;
}

/** The key of a snapshot's extent table. */
export function extentTableKey(id: string): string {
  requireSnapshotId(id, 'extent table key');
  return extentsPrefix + id;
}

/** The snapshot id a manifest key names; UsageError('BAD_KEY') for any other key. */
export function snapshotIdFromManifestKey(key: string): string {
  const id = key.startsWith(manifestPrefix) ? key.slice(manifestPrefix.length) : '';
  if (!isSnapshotId(id)) throw badKey(`${JSON.stringify(key)} is not a manifest key (${manifestPrefix}<snapshot id>)`);
  return id;
}

/** The prefix under which all packs of one snapshot live. */
export function packPrefix(id: string): string {
  requireSnapshotId(id, 'pack prefix');
  return `${packsPrefix}${id}/`;
}

function validPageRange(firstPage: number, lastPage: number): boolean {
  return Number.isSafeInteger(firstPage) && Number.isSafeInteger(lastPage) && firstPage >= 1 && firstPage <= lastPage && lastPage <= MAX_KEY_PAGE;
}

export function packKey(id: string, firstPage: number, lastPage: number, seq = 0): string {
  requireSnapshotId(id, 'pack key');
  if (!validPageRange(firstPage, lastPage)) {
    throw badKey(`pack key: page range ${firstPage}-${lastPage} must satisfy 1 <= first <= last <= ${MAX_KEY_PAGE}`);
  }
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_PACK_SEQ) {
    throw badKey(`pack key: seq must be an integer from 0 to ${MAX_PACK_SEQ}, got ${seq}`);
  }
  const range = `${String(firstPage).padStart(PAGE_DIGITS, '0')}-${String(lastPage).padStart(PAGE_DIGITS, '0')}`;
  return `${packPrefix(id)}${range}${seq > 0 ? `.${seq}` : ''}`;
}

const PACK_KEY_PATTERN = /^packs\/([^/]+)\/(\d{10})-(\d{10})(?:\.([1-9]\d{0,8}))?$/;

/** The parts of a pack key; UsageError('BAD_KEY') for anything packKey() would not have produced. */
export function parsePackKey(key: string): PackKeyParts {
  const m = PACK_KEY_PATTERN.exec(key);
  const snapshotId = m?.[1] ?? '';
  const firstPage = Number(m?.[2]);
  const lastPage = Number(m?.[3]);
  if (!m || !isSnapshotId(snapshotId) || !validPageRange(firstPage, lastPage)) {
    throw badKey(`${JSON.stringify(key)} is not a pack key (packs/<snapshot id>/<first page>-<last page>[.<seq>], pages as 10 digits)`);
  }
  return { snapshotId, firstPage, lastPage, seq: m[4] === undefined ? 0 : Number(m[4]) };
}

/** The prefix of the marks on the objects of (or referenced by) snapshot `id`. */
export function markPrefix(id: string): string {
  requireSnapshotId(id, 'mark prefix');
  return `${marksPrefix}${id}/`;
}

/** The key of the mark prune run `pruneId` wrote about snapshot `id`. */
export function markKey(id: string, pruneId: string): string {
  requireSnapshotId(pruneId, 'mark key');
  return markPrefix(id) + pruneId;
}

/** The snapshot id and prune id a mark key names, or undefined for any other key. */
export function parseMarkKey(key: string): { snapshotId: string; pruneId: string } | undefined {
  const parts = key.startsWith(marksPrefix) ? key.slice(marksPrefix.length).split('/') : [];
  if (parts.length !== 2 || !isSnapshotId(parts[0]) || !isSnapshotId(parts[1])) return undefined;
  return { snapshotId: parts[0], pruneId: parts[1] };
}

/** The key of prune run `pruneId`'s record (the store's clock, read back from it). */
export function runKey(pruneId: string): string {
  requireSnapshotId(pruneId, 'prune run key');
  return runsPrefix + pruneId;
}

/**
 * The snapshot id in the key of a snapshot's object (a manifest, an extent table or a pack), or undefined for a
 * key that is none of those (a foreign object, which pagevault never touches).
 */
export function snapshotIdOfKey(key: string): string | undefined {
  for (const prefix of [manifestPrefix, extentsPrefix]) {
    if (key.startsWith(prefix)) {
      const id = key.slice(prefix.length);
      return isSnapshotId(id) ? id : undefined;
    }
  }
  if (!PACK_KEY_PATTERN.test(key)) return undefined;
  try {
    return parsePackKey(key).snapshotId;
  } catch {
    return undefined;
  }
}
