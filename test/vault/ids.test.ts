import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BugError, UsageError } from '../../src/errors.ts';
import { isSnapshotId, newSnapshotId, parseSnapshotId } from '../../src/vault/ids.ts';

test('an id is the UTC time to the millisecond and 10 lowercase hex digits', () => {
  const now = new Date(Date.UTC(2026, 10, 24, 2, 3, 4, 123));
  const id = newSnapshotId(now);
  assert.match(id, /^20261124T020304123Z-[0-9a-f]{10}$/);
  assert.equal(parseSnapshotId(id).createdAt.getTime(), now.getTime());
  assert.ok(isSnapshotId(id));
  // Fixed width at the edges of the range too.
  assert.match(newSnapshotId(new Date(Date.UTC(2000, 0, 1))), /^20000101T000000000Z-/);
  assert.match(newSnapshotId(new Date('0999-12-31T23:59:59.999Z')), /^09991231T235959999Z-/);
});

test('10,000 ids in one millisecond are unique and sort after an earlier millisecond, before a later one', () => {
  const t = Date.UTC(2026, 10, 24, 2, 3, 4, 123);
  const earlier = newSnapshotId(new Date(t - 1));
  const later = newSnapshotId(new Date(t + 1));
  const ids = Array.from({ length: 10_000 }, () => newSnapshotId(new Date(t)));
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) {
    assert.ok(earlier < id && id < later, id);
  }
  // String order is time order across the year, month, day ... millisecond fields.
  const times = ['2025-12-31T23:59:59.999Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.001Z', '2026-02-01T00:00:00.000Z', '2026-10-01T09:00:00.000Z'];
  const sorted = times.map((s) => newSnapshotId(new Date(s)));
  assert.deepEqual([...sorted].sort(), sorted);
});

test('parseSnapshotId refuses anything else with BAD_SNAPSHOT_ID, naming the id and the expected form', () => {
  const bad = [
    '',
    '20261124T020304123Z',
    '20261124T020304123Z-9f2c41d07',
    '20261124T020304123Z-9F2C41D07A',
    '20261124T020304123Z-9f2c41d07a0',
    '20261124T020304Z-9f2c41d07a',
    '20261124t020304123z-9f2c41d07a',
    '20260230T020304123Z-9f2c41d07a', // 30 February
    '20261124T240304123Z-9f2c41d07a', // hour 24
    '20261124T026004123Z-9f2c41d07a', // minute 60
    ' 20261124T020304123Z-9f2c41d07a',
    '../20261124T020304123Z-9f2c41d07a',
  ];
  for (const id of bad) {
    assert.equal(isSnapshotId(id), false, id);
    assert.throws(
      () => parseSnapshotId(id),
      (err: unknown) => err instanceof UsageError && err.code === 'BAD_SNAPSHOT_ID' && err.message.includes(JSON.stringify(id)) && err.message.includes('YYYYMMDDTHHMMSSmmmZ-'),
      id,
    );
  }
  assert.equal(isSnapshotId(42), false);
  assert.equal(parseSnapshotId('20240229T235959999Z-0000000000').createdAt.toISOString(), '2024-02-29T23:59:59.999Z');
});

test('newSnapshotId refuses dates it cannot write in fixed width', () => {
  assert.throws(() => newSnapshotId(new Date('invalid')), BugError);
  assert.throws(() => newSnapshotId(new Date(Date.UTC(10000, 0, 1))), BugError);
});
