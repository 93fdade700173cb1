// runAll: bounded workers over one list; the first failure or an abort stops new work, and nothing still runs
// when it returns.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from '../../src/errors.ts';
import { runAll } from '../../src/util/run-all.ts';

test('at most `limit` at once, every item once with its index', async () => {
  let running = 0;
  let most = 0;
  const seen: number[] = [];
  await runAll([...Array(20).keys()], 3, async (item, index) => {
    assert.equal(item, index);
    running++;
    most = Math.max(most, running);
    await sleep(2);
    seen.push(item);
    running--;
  }, { what: 'test' });
  assert.equal(most, 3);
  assert.deepEqual(seen.sort((a, b) => a - b), [...Array(20).keys()]);
});

test('the first failure is rethrown once the running calls have settled, and no new item starts', async () => {
  let started = 0;
  let running = 0;
  await assert.rejects(
    runAll([...Array(20).keys()], 4, async (item) => {
      started++;
      running++;
      await sleep(item === 2 ? 1 : 20);
      running--;
      if (item === 2) throw new Error('item 2 failed');
    }, { what: 'test' }),
    /item 2 failed/,
  );
  assert.equal(running, 0, 'nothing still runs');
  assert.ok(started <= 5, `${started} started`);
});

test('an abort stops new work with AbortedError, after the running calls settle', async () => {
  const controller = new AbortController();
  let running = 0;
  let started = 0;
  const done = runAll([...Array(50).keys()], 2, async () => {
    started++;
    running++;
    await sleep(10);
    running--;
  }, { signal: controller.signal, what: 'list snapshots' });
  await sleep(25);
  controller.abort(new Error('stop'));
  await assert.rejects(done, (err: unknown) => err instanceof AbortedError && /list snapshots: aborted/.test(err.message));
  assert.equal(running, 0, 'nothing still runs');
  assert.ok(started < 50, `${started} started`);
});
