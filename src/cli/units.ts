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

/** "0 B", "900 B", "1.5 KiB", "12.3 MiB", "4.00 GiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** "850 ms", "4.2 s", "3 min 07 s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** A Date from an ISO 8601 time ("2026-11-24T01:00:00Z", "2026-11-24"). UsageError otherwise. */
export function parseTime(text: string, flag: string): Date {
  const date = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError('BAD_OPTION', `--${flag} must be an ISO 8601 time like 2026-11-24T01:00:00Z, got ${JSON.stringify(text)}`);
  }
  return date;
}
