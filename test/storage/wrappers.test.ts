// The limit and throttle wrappers and the multipart upload's bound on parts in flight, measured on the file
// backend in a temp dir (real I/O, no server needed): peaks of concurrent requests, elapsed time under a rate.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StorageEvent } from '../../src/storage/client.ts';
import { FileStore, LimitStore, MultipartUpload, openStorage, partSizeFor, TokenBucket } from '../../src/storage/index.ts';
import { StorageWrapper, type Call } from '../../src/storage/wrappers/wrapper.ts';
import { sha256 } from './conformance.ts';

const MiB = 1024 * 1024;

/** Counts the calls of each operation in flight at once, and delays each a little so that they overlap. */
class PeakCounter extends StorageWrapper {
  active = 0;
  peak = 0;
  protected override async around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    if (!call.op.startsWith('upload part')) return fn();
    this.peak = Math.max(this.peak, ++this.active);
    try {
      await new Promise((r) => setTimeout(r, 20));
      return await fn();
    } finally {
      this.active--;
    }
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

  it('a multipart upload keeps at most partsInFlight parts in flight and resolves each write once its part is stored', async () => {
    const counter = new PeakCounter(new FileStore(join(root, 'parts')));
    const upload = new MultipartUpload(counter, 'big', { partsInFlight: 2 });
    const parts = Array.from({ length: 6 }, () => randomBytes(5 * MiB));
    const order: number[] = [];
    await Promise.all(parts.map((p, i) => upload.writePart(p).then(() => order.push(i))));
    assert.equal(counter.peak, 2);
    assert.equal(order.length, 6);
    await upload.complete();
    assert.equal(sha256(await counter.getObject('big')), sha256(Buffer.concat(parts)));
  });

  it('an external AbortSignal cancels an upload and aborts it', async () => {
    const c = openStorage(`file://${root}/signal`);
    const controller = new AbortController();
    const upload = new MultipartUpload(c, 'big', { signal: controller.signal });
    await upload.writePart(randomBytes(5 * MiB));
    const pending = upload.writePart(randomBytes(5 * MiB));
    controller.abort(new Error('operator pressed ^C'));
    await assert.rejects(pending, { code: 'ABORTED' });
    await assert.rejects(upload.complete(), { code: 'ABORTED' });
    const left = [];
    for await (const u of c.listMultipartUploads('')) left.push(u);
    assert.deepEqual(left, []);
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
