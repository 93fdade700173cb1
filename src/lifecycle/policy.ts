// The retention policy: which snapshots a prune keeps. Pure (no I/O, no clock), so that every rule can be tested
// against a table of times. The semantics are the ones users know from restic's `forget`:
//
// - the rules are ORed: a snapshot is kept when any rule keeps it;
// - keepLast N keeps the N newest snapshots;
// - a bucket rule (hourly, daily, weekly, monthly, yearly) keeps the newest snapshot in each of the last N
//   buckets that have one, going back from the newest snapshot (a bucket with no snapshot does not count);
//   buckets are calendar hours, days, ISO 8601 weeks (Monday to Sunday; the week's year is its Thursday's),
//   months and years in UTC, or in the IANA zone `timeZone` names;
// - keepWithin keeps every snapshot taken within that long before the newest snapshot (not before now: a cron
//   job that stopped for a month must not have its last snapshots pruned by the first prune after);
// - keepTags keeps every snapshot with any of those tags;
// - the newest snapshot is always kept, and a policy with no rule at all is refused (it would forget everything).
import { UsageError } from '../errors.ts';

export interface RetentionPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** Milliseconds before the newest snapshot's time. */
  keepWithinMs?: number;
  keepTags?: readonly string[];
  /** IANA time zone of the calendar buckets; default UTC. */
  timeZone?: string;
}

export interface PolicySnapshot {
  id: string;
  /** When the snapshot was taken. */
  time: Date;
  tags: readonly string[];
}

/** Why a snapshot is kept: the rules that keep it ("last", "hourly", ..., "within", "tag:<t>", "newest"). */
export interface Decision<S extends PolicySnapshot> {
  snapshot: S;
  keep: boolean;
  reasons: string[];
}

const bucketRules = ['keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const;
type BucketRule = (typeof bucketRules)[number];
const bucketName: Record<BucketRule, string> = { keepHourly: 'hourly', keepDaily: 'daily', keepWeekly: 'weekly', keepMonthly: 'monthly', keepYearly: 'yearly' };

/** A policy checked: counts are integers >= 0, the zone exists, and at least one rule is given (UsageError). */
export function checkPolicy(policy: RetentionPolicy): RetentionPolicy {
  for (const rule of ['keepLast', ...bucketRules] as const) {
    const n = policy[rule];
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) throw new UsageError('BAD_OPTION', `${rule} must be an integer >= 0, got ${n}`);
  }
  if (policy.keepWithinMs !== undefined && (!Number.isSafeInteger(policy.keepWithinMs) || policy.keepWithinMs < 0)) {
    throw new UsageError('BAD_OPTION', `keepWithin must be a duration >= 0, got ${policy.keepWithinMs} ms`);
  }
  if (policy.timeZone !== undefined) calendar(policy.timeZone);
  const given = ['keepLast', ...bucketRules].some((r) => (policy[r as keyof RetentionPolicy] as number | undefined) !== undefined) || policy.keepWithinMs !== undefined || (policy.keepTags?.length ?? 0) > 0;
  if (!given) {
    throw new UsageError(
      'NO_POLICY',
      'a prune needs at least one --keep-* rule (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within or --keep-tag); it never forgets every snapshot',
    );
  }
  return policy;
}

/** Decides every snapshot; the result is newest first. */
export function applyPolicy<S extends PolicySnapshot>(snapshots: readonly S[], policy: RetentionPolicy): Decision<S>[] {
  checkPolicy(policy);
  const parts = calendar(policy.timeZone ?? 'UTC');
  const sorted = [...snapshots].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const newest = sorted[0]?.time.getTime();
  const left: Record<string, number> = { keepLast: policy.keepLast ?? 0 };
  const lastBucket: Record<string, string | undefined> = {};
  for (const rule of bucketRules) left[rule] = policy[rule] ?? 0;
  const tags = new Set(policy.keepTags ?? []);
  return sorted.map((snapshot, i) => {
    const reasons: string[] = [];
    if (i === 0) reasons.push('newest');
    if (left.keepLast! > 0) {
      left.keepLast!--;
      reasons.push('last');
    }
    const p = parts(snapshot.time);
    for (const rule of bucketRules) {
      if (left[rule]! <= 0) continue;
      const key = bucketKey(rule, p);
      if (key === lastBucket[rule]) continue;
      lastBucket[rule] = key;
      left[rule]!--;
      reasons.push(bucketName[rule]);
    }
    if (policy.keepWithinMs !== undefined && newest !== undefined && snapshot.time.getTime() >= newest - policy.keepWithinMs) reasons.push('within');
    for (const t of snapshot.tags) if (tags.has(t)) reasons.push(`tag:${t}`);
    return { snapshot, keep: reasons.length > 0, reasons };
  });
}

interface CalendarParts {
  year: number;
  month: number;
  day: number;
  hour: number;
}

/** A function giving a time's calendar parts in `timeZone` (UsageError BAD_OPTION for an unknown zone). */
function calendar(timeZone: string): (t: Date) => CalendarParts {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', hourCycle: 'h23' });
  } catch {
    throw new UsageError('BAD_OPTION', `--tz must be an IANA time zone like UTC, Europe/Berlin or America/New_York, got ${JSON.stringify(timeZone)}`);
  }
  return (t) => {
    const p: Record<string, number> = {};
    for (const { type, value } of format.formatToParts(t)) if (type !== 'literal') p[type] = Number(value);
    return { year: p.year!, month: p.month!, day: p.day!, hour: p.hour! };
  };
}

function bucketKey(rule: BucketRule, p: CalendarParts): string {
  switch (rule) {
    case 'keepHourly':
      return `${p.year}-${p.month}-${p.day}T${p.hour}`;
    case 'keepDaily':
      return `${p.year}-${p.month}-${p.day}`;
    case 'keepWeekly':
      return isoWeek(p.year, p.month, p.day);
    case 'keepMonthly':
      return `${p.year}-${p.month}`;
    case 'keepYearly':
      return `${p.year}`;
  }
}

/** The ISO 8601 week of a calendar date, as "<week-year>-W<week>": the week holding that week's Thursday. */
function isoWeek(year: number, month: number, day: number): string {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0 .. Sunday 6
  date.setUTCDate(date.getUTCDate() - weekday + 3); // that week's Thursday
  const weekYear = date.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(weekYear, 0, 4));
  firstThursday.setUTCDate(firstThursday.getUTCDate() - ((firstThursday.getUTCDay() + 6) % 7) + 3);
  return `${weekYear}-W${1 + Math.round((date.getTime() - firstThursday.getTime()) / (7 * 86_400_000))}`;
}
