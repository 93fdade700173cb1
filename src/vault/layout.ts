// Object keys of a vault, relative to the vault prefix (the storage client applies the URL's prefix).
// docs/FORMAT.md is the specification; this file is its one implementation.
import { UsageError } from '../errors.ts';
import { isSnapshotId } from './ids.ts';

export const configKey = 'pagevault.json';
export const manifestPrefix = 'manifests/';
export const extentsPrefix = 'extents/';
export const packsPrefix = 'packs/';

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
