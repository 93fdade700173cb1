// The retention policy against tables of snapshot times: each rule, their combinations, week and year
// boundaries, a DST change, and keepWithin's edges.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { applyPolicy, type PolicySnapshot, type RetentionPolicy } from '../../src/lifecycle/policy.ts';

const H = 3_600_000;

function snaps(times: string[], tags: Record<string, string[]> = {}): PolicySnapshot[] {
  return times.map((t) => ({ id: t, time: new Date(t), tags: tags[t] ?? [] }));
}

/** The kept ids, newest first. */
function kept(s: PolicySnapshot[], policy: RetentionPolicy): string[] {
  return applyPolicy(s, policy)
    .filter((d) => d.keep)
    .map((d) => d.snapshot.id);
}

const hourly = snaps(Array.from({ length: 10 }, (_, i) => new Date(Date.UTC(2026, 11, 1, 0, 0) + i * H).toISOString()));

test('keepLast keeps the N newest, and the newest is kept whatever the rules say', () => {
  assert.deepEqual(kept(hourly, { keepLast: 3 }), [hourly[9]!.id, hourly[8]!.id, hourly[7]!.id]);
  assert.deepEqual(kept(hourly, { keepLast: 0 }), [hourly[9]!.id]);
  assert.deepEqual(kept(hourly, { keepTags: ['nothing-has-it'] }), [hourly[9]!.id]);
  assert.deepEqual(kept([], { keepLast: 3 }), []);
  const d = applyPolicy(hourly, { keepLast: 1 });
  assert.deepEqual(d[0]!.reasons, ['newest', 'last']);
  assert.equal(d.length, 10);
  assert.ok(d.slice(1).every((x) => !x.keep && x.reasons.length === 0));
});

test('a bucket rule keeps the newest snapshot of each of the last N buckets that have one (empty ones do not count)', () => {
  const s = snaps([
    '2026-12-01T08:00:00Z',
    '2026-12-01T20:00:00Z', // the newest of Dec 1
    '2026-12-03T09:00:00Z', // Dec 2 has none
    '2026-12-03T23:59:59.999Z', // the newest of Dec 3
    '2026-12-04T00:00:00Z',
    '2026-12-04T06:00:00Z', // the newest of Dec 4
  ]);
  assert.deepEqual(kept(s, { keepDaily: 3 }), ['2026-12-04T06:00:00Z', '2026-12-03T23:59:59.999Z', '2026-12-01T20:00:00Z']);
  assert.deepEqual(kept(s, { keepDaily: 1 }), ['2026-12-04T06:00:00Z']);
  assert.deepEqual(kept(s, { keepHourly: 4 }), ['2026-12-04T06:00:00Z', '2026-12-04T00:00:00Z', '2026-12-03T23:59:59.999Z', '2026-12-03T09:00:00Z']);
  assert.deepEqual(kept(s, { keepMonthly: 5 }), ['2026-12-04T06:00:00Z']);
});

test('weekly buckets are ISO weeks: Monday to Sunday, the year of the week its Thursday is in (2026 has a week 53)', () => {
  const s = snaps([
    '2026-12-27T12:00:00Z', // Sunday, 2026-W52
    '2026-12-28T12:00:00Z', // Monday, 2026-W53
    '2027-01-03T12:00:00Z', // Sunday, still 2026-W53
    '2027-01-04T12:00:00Z', // Monday, 2027-W01
  ]);
  assert.deepEqual(kept(s, { keepWeekly: 3 }), ['2027-01-04T12:00:00Z', '2027-01-03T12:00:00Z', '2026-12-27T12:00:00Z']);
  // Years are calendar years, not week years.
  assert.deepEqual(kept(s, { keepYearly: 2 }), ['2027-01-04T12:00:00Z', '2026-12-28T12:00:00Z']);
});

test('buckets follow --tz: days and hours in that zone, the repeated hour of a DST change being one hour', () => {
  const s = snaps([
    '2026-10-24T21:30:00Z', // Berlin 23:30 CEST on the 24th
    '2026-10-24T22:30:00Z', // Berlin 00:30 CEST on the 25th; in UTC still the 24th
    '2026-10-25T00:30:00Z', // Berlin 02:30 CEST
    '2026-10-25T01:30:00Z', // Berlin 02:30 CET: the clock went back at 03:00 CEST
  ]);
  assert.deepEqual(kept(s, { keepDaily: 2 }), ['2026-10-25T01:30:00Z', '2026-10-24T22:30:00Z'], 'UTC days');
  assert.deepEqual(kept(s, { keepDaily: 2, timeZone: 'Europe/Berlin' }), ['2026-10-25T01:30:00Z', '2026-10-24T21:30:00Z'], 'Berlin days');
  assert.deepEqual(kept(s, { keepHourly: 10, timeZone: 'Europe/Berlin' }), ['2026-10-25T01:30:00Z', '2026-10-24T22:30:00Z', '2026-10-24T21:30:00Z'], 'the two 02:30 are one local hour');
  assert.deepEqual(kept(s, { keepHourly: 10 }), s.map((x) => x.id).reverse(), 'UTC hours are all distinct');
});

test('keepWithin counts back from the newest snapshot, not from now, and includes its edge', () => {
  const newest = Date.UTC(2026, 0, 10, 12);
  const s = snaps([new Date(newest - 36 * H - 1).toISOString(), new Date(newest - 36 * H).toISOString(), new Date(newest - H).toISOString(), new Date(newest).toISOString()]);
  assert.deepEqual(kept(s, { keepWithinMs: 36 * H }), [s[3]!.id, s[2]!.id, s[1]!.id]);
  // A vault whose snapshots stopped a year ago keeps them all.
  assert.equal(kept(s, { keepWithinMs: 36 * H }).length, 3);
});

test('rules are ORed; tags keep their snapshots; every reason is given', () => {
  const s = snaps(['2026-01-01T00:00:00Z', '2026-06-01T00:00:00Z', '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z'], {
    '2026-01-01T00:00:00Z': ['before-deploy', 'x'],
  });
  const d = applyPolicy(s, { keepLast: 1, keepMonthly: 2, keepTags: ['before-deploy'] });
  assert.deepEqual(
    d.map((x) => [x.snapshot.id, x.keep, x.reasons]),
    [
      ['2026-12-02T00:00:00Z', true, ['newest', 'last', 'monthly']],
      ['2026-12-01T00:00:00Z', false, []],
      ['2026-06-01T00:00:00Z', true, ['monthly']],
      ['2026-01-01T00:00:00Z', true, ['tag:before-deploy']],
    ],
  );
});

test('no rule at all is a usage error, never "forget everything"; bad counts and zones too', () => {
  assert.throws(() => applyPolicy(hourly, {}), (e: unknown) => e instanceof UsageError && e.code === 'NO_POLICY' && /at least one --keep-\* rule/.test(e.message));
  assert.throws(() => applyPolicy(hourly, { keepTags: [] }), { code: 'NO_POLICY' });
  assert.throws(() => applyPolicy(hourly, { timeZone: 'Europe/Berlin' }), { code: 'NO_POLICY' });
  assert.throws(() => applyPolicy(hourly, { keepDaily: -1 }), { code: 'BAD_OPTION' });
  assert.throws(() => applyPolicy(hourly, { keepLast: 1.5 }), { code: 'BAD_OPTION' });
  assert.throws(() => applyPolicy(hourly, { keepLast: 1, timeZone: 'Mars/Olympus' }), (e: unknown) => e instanceof UsageError && /--tz must be an IANA time zone/.test(e.message));
});
