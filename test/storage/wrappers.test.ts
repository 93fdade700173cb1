// The limit and throttle wrappers and a streamed write's bound on parts in flight, measured on the file backend
// in a temp dir (real I/O, no server needed) and on fauxqs: peaks of concurrent requests, requests counted per
// listing page, elapsed time under a rate.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StorageEvent } from '../../src/storage/client.ts';
import { FileStore, LimitStore, listObjects, openStorage, partSizeFor, RetryStore, S3Store, ThrottleStore, TokenBucket, type StorageClient } from '../../src/storage/index.ts';
import { startFauxqs } from '../helpers/servers.ts';
import { StorageWrapper, type Call } from '../../src/storage/wrappers/wrapper.ts';
import { collect, sha256, stream } from './conformance.ts';
import { s3Options } from './s3-options.ts';

const MiB = 1024 * 1024;

/** Counts the part writes in flight at once, and delays each a little so that they overlap. */
class PeakCounter extends StorageWrapper {
  active = 0;
  peak = 0;
  protected override async around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    if (!/part \d+ of$/.test(call.op)) return fn();
    this.peak = Math.max(this.peak, ++this.active);
    try {
      await new Promise((r) => setTimeout(r, 20));
      return await fn();
    } finally {
      this.active--;
    }
  }
}

/** Counts the requests it sees, by operation. */
class RequestCounter extends StorageWrapper {
  readonly counts = new Map<string, number>();
  protected override around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    this.counts.set(call.op, (this.counts.get(call.op) ?? 0) + 1);
    return fn();
  }
}


describe('storage wrappers', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'pagevault-wrappers-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('the limit wrapper never lets more requests run than its concurrency, and does reach it', async () => {
    const backend = new FileStore(join(root, 'limit'));
    await backend.putIfAbsent('obj', randomBytes(MiB));
    const limited = new LimitStore(backend, 3);
    const reads = Array.from({ length: 24 }, (_, i) => limited.readRange('obj', i * 1000, 50_000));
    await Promise.all(reads);
    assert.equal(limited.peak, 3);
  });

  it('the byte rate holds: 6 MiB at 4 MiB/s with a quarter-second burst takes over a second', async () => {
    const events: StorageEvent[] = [];
    const c = openStorage(`file://${root}/bytes`, { throttle: { bytesPerSecond: 4 * MiB, burstSeconds: 0.25 }, onEvent: (e) => events.push(e) });
    const body = randomBytes(MiB);
    const started = performance.now();
    for (let i = 0; i < 6; i++) await c.putIfAbsent(`k${i}`, body);
    const elapsed = performance.now() - started;
    // 1 MiB of burst is free, the other 5 MiB take 1.25 s at 4 MiB/s.
    assert.ok(elapsed >= 1150, `took ${elapsed.toFixed(0)} ms`);
    assert.ok(elapsed < 3000, `took ${elapsed.toFixed(0)} ms`);
    assert.ok(events.some((e) => e.type === 'throttled'));
    const up = events.filter((e) => e.type === 'transfer' && e.direction === 'up').reduce((s, e) => s + (e.type === 'transfer' ? e.bytes : 0), 0);
    assert.equal(up, 6 * MiB, 'transfer events account for every byte');
  });

  it('the request rate holds: 30 requests at 40/s with a quarter-second burst take over half a second', async () => {
    const c = openStorage(`file://${root}/requests`, { throttle: { requestsPerSecond: 40, burstSeconds: 0.25 } });
    await c.putIfAbsent('k', Buffer.from('v'));
    const started = performance.now();
    await Promise.all(Array.from({ length: 30 }, () => c.head('k')));
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 450, `took ${elapsed.toFixed(0)} ms`);
  });

  it('a token bucket refills at its rate and lets a taker go into debt', () => {
    let now = 0;
    const bucket = new TokenBucket(100, 50, () => now);
    assert.equal(bucket.take(50), 0);
    assert.equal(bucket.take(100), 1000, 'a taker larger than the bucket waits for its debt');
    now = 1000;
    assert.equal(bucket.take(0), 0);
    now = 1500;
    assert.equal(bucket.take(50), 0);
    assert.equal(bucket.take(10), 100);
  });

  it('a streamed write keeps at most partsInFlight parts in flight', async () => {
    const server = await startFauxqs();
    try {
      await server.createBucket('parts');
      const { s3 } = s3Options(server);
      const counter = new PeakCounter(new S3Store({ ...s3, bucket: 'parts' }));
      const parts = Array.from({ length: 6 }, () => randomBytes(5 * MiB));
      assert.equal(await counter.putObject('big', stream(parts), { partsInFlight: 2 }), 6 * 5 * MiB);
      assert.equal(counter.peak, 2);
      assert.equal(sha256(await counter.getObject('big')), sha256(Buffer.concat(parts)));
      await counter.close();
    } finally {
      await server.stop();
    }
  });

  it('a listing of 50 keys in pages of 10 is 5 requests: 5 slots of the limit, 5 charges of the throttle', async () => {
    const backend = new FileStore(join(root, 'pages'), undefined, { listPageSize: 10 });
    for (let i = 0; i < 50; i++) await backend.putIfAbsent(`k/${String(i).padStart(2, '0')}`, Buffer.from('x'));
    // The stack's order (stack.ts), with a counter at the limit's place and one on the wire.
    const wire = new RequestCounter(backend);
    const limited = new LimitStore(wire, 2);
    const atLimit = new RequestCounter(limited);
    const throttled = new ThrottleStore(atLimit, { requestsPerSecond: 1000 });
    const c: StorageClient = new RetryStore(throttled);
    const listed = await collect(listObjects(c, 'k/'));
    assert.equal(listed.length, 50);
    assert.equal(wire.counts.get('list'), 5, 'requests on the wire');
    assert.equal(atLimit.counts.get('list'), 5, 'requests through the limit and the throttle');
    assert.equal(limited.peak, 1);
  });

  it('an external AbortSignal cancels a streamed write and leaves nothing behind', async () => {
    const c = openStorage(`file://${root}/signal`);
    const controller = new AbortController();
    async function* parts(): AsyncGenerator<Uint8Array> {
      yield randomBytes(5 * MiB);
      controller.abort(new Error('operator pressed ^C'));
      yield randomBytes(5 * MiB);
    }
    await assert.rejects(c.putObject('big', parts(), { signal: controller.signal }), { code: 'ABORTED' });
    assert.deepEqual(await c.sweepIncomplete!('', 0), []);
    assert.deepEqual(await collect(listObjects(c, '')), []);
  });

  it('part size grows with the expected size so that no upload needs more than 10,000 parts', () => {
    assert.equal(partSizeFor(undefined), 8 * MiB);
    assert.equal(partSizeFor(1024 * MiB), 8 * MiB);
    assert.equal(partSizeFor(200 * 1024 * MiB), 21 * MiB);
    assert.ok(Math.ceil((200 * 1024 * MiB) / partSizeFor(200 * 1024 * MiB)) <= 10_000);
    assert.equal(partSizeFor(100 * MiB, 5 * MiB), 5 * MiB);
    assert.throws(() => partSizeFor(60 * 1024 * 1024 * MiB), /needs parts larger than S3's/);
  });
});
