// Snapshot ids: the UTC creation time to the millisecond, then 40 random bits, e.g.
// 20261124T020304123Z-9f2c41d07a. Fixed width, so ids sort as strings in creation order; the random part keeps
// ids from different hosts (or the same millisecond) apart.
import { randomBytes } from 'node:crypto';
import { BugError, UsageError } from '../errors.ts';

const ID_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-[0-9a-f]{10}$/;
const EXPECTED_FORM = 'YYYYMMDDTHHMMSSmmmZ-<10 lowercase hex digits>, e.g. 20261124T020304123Z-9f2c41d07a';

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function timePart(t: Date): string {
  return (
    pad(t.getUTCFullYear(), 4) +
    pad(t.getUTCMonth() + 1, 2) +
    pad(t.getUTCDate(), 2) +
    'T' +
    pad(t.getUTCHours(), 2) +
    pad(t.getUTCMinutes(), 2) +
    pad(t.getUTCSeconds(), 2) +
    pad(t.getUTCMilliseconds(), 3) +
    'Z'
  );
}

/** A new snapshot id for a snapshot created at `now`. */
export function newSnapshotId(now: Date = new Date()): string {
  const year = now.getUTCFullYear();
  if (!Number.isFinite(now.getTime()) || year < 0 || year > 9999) {
    throw new BugError(`snapshot ids need a date in years 0000-9999, got ${String(now)}`);
  }
  return `${timePart(now)}-${randomBytes(5).toString('hex')}`;
}

/** The creation time inside a snapshot id, or undefined when `id` is not one (including impossible dates). */
function createdAtOf(id: string): Date | undefined {
  const m = ID_PATTERN.exec(id);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second, ms] = m.slice(1, 8).map(Number) as [number, number, number, number, number, number, number];
  const t = new Date(0);
  t.setUTCFullYear(year, month - 1, day);
  t.setUTCHours(hour, minute, second, ms);
  // Date rolls 2026-02-30 over into March: an id whose fields do not survive the round trip is not a real time.
  return timePart(t) === id.slice(0, 19) ? t : undefined;
}

export function isSnapshotId(s: unknown): s is string {
  return typeof s === 'string' && createdAtOf(s) !== undefined;
}

/** Throws UsageError('BAD_SNAPSHOT_ID') when `id` is not a snapshot id. */
export function parseSnapshotId(id: string): { createdAt: Date } {
  const createdAt = typeof id === 'string' ? createdAtOf(id) : undefined;
  if (!createdAt) {
    throw new UsageError('BAD_SNAPSHOT_ID', `${JSON.stringify(id)} is not a snapshot id: expected ${EXPECTED_FORM}`);
  }
  return { createdAt };
}

/** True for a UTC time in the form Date.prototype.toISOString writes (2026-11-24T02:03:04.123Z), and a real one. */
export function isUtcTimestamp(s: unknown): s is string {
  if (typeof s !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(s)) return false;
  const t = new Date(s);
  return !Number.isNaN(t.getTime()) && t.toISOString() === s;
}
