// Sizes and durations as people type and read them: "8MiB", "64M", "1G", "512k" in; "12.3 MiB", "1.4 s" out.
// Suffixes are binary whatever their spelling (M = MiB), as most backup tools read them.
import { UsageError } from '../errors.ts';

const multipliers: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Bytes from "8MiB", "64M", "1G", "512k", "4096" (binary multiples). UsageError for anything else. */
export function parseSize(text: string | number, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(String(text));
  const bytes = m ? Math.round(Number(m[1]) * multipliers[m[2]!.toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new UsageError('BAD_OPTION', `--${flag} must be a size like 4096, 512KiB, 8MiB, 64M or 1G, got ${JSON.stringify(String(text))}`);
  }
  return bytes;
}

export { formatBytes, formatDuration } from '../util/format.ts';

const durationUnits: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
  w: 7 * 24 * 60 * 60 * 1000,
  y: 365 * 24 * 60 * 60 * 1000,
};

/**
 * Milliseconds from "500ms", "30s", "2m", "90m", "36h", "7d", "2w", "1y" (a year is 365 days) or a bare number
 * of seconds ("30", "1.5"); one unit, lowercase (m is minutes, never months). UsageError for anything else,
 * negative values included.
 */
export function parseDuration(text: string | number, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$/.exec(String(text));
  const ms = m ? Math.round(Number(m[1]) * durationUnits[m[2] ?? 's']!) : NaN;
  if (!Number.isSafeInteger(ms)) {
    throw new UsageError(
      'BAD_OPTION',
      `--${flag} must be a duration like 500ms, 30s, 2m, 36h, 7d, 2w or 1y (a bare number is seconds), got ${JSON.stringify(String(text))}`,
    );
  }
  return ms;
}


/**
 * A Date from an ISO 8601 time that names its zone: "2026-11-24T01:00:00Z", "2026-11-24T02:00:00+01:00",
 * "2026-11-24T01:00Z", fractions of a second allowed. A time without a zone, or a bare date, is refused
 * (UsageError): read as local time on one host and as UTC on another, it would pick different snapshots.
 */
export function parseTime(text: string, flag: string): Date {
  const t = text.trim();
  const zoned = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i.test(t);
  const date = zoned ? new Date(t.replace(' ', 'T')) : new Date(NaN);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(
      'BAD_OPTION',
      `--${flag} must be an ISO 8601 time with a zone, like 2026-11-24T01:00:00Z or 2026-11-24T02:00:00+01:00, got ${JSON.stringify(text)}` +
        (/(?:Z|[+-]\d{2}:?\d{2})$/i.test(t) ? '' : ' (a time without Z or an offset, or a bare date, would depend on the local time zone)'),
    );
  }
  return date;
}
