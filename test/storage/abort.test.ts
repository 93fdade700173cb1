// Aborts are prompt at every layer of the storage stack, measured from outside the call: a request waiting on
// the throttle, a part or a ranged read mid-body on a slow link to a real S3 server (fauxqs behind a pacing
// proxy), the file backend's writes and reads, and the cleanup of a streamed write (S3: the abort of its
// multipart upload), which is bounded even when the server never answers it. A promptly aborted call is one that rejects with ABORTED within
// `prompt` ms of the signal; broken, each of these waits seconds (the throttle's debt, the body, the server).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StorageEvent } from '../../src/storage/client.ts';
import { FileStore, openStorage, type StorageClient } from '../../src/storage/index.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { startFauxqs, type S3Server } from '../helpers/servers.ts';
import { rejectsWith, stream } from './conformance.ts';
import { s3Options } from './s3-options.ts';
import { startSlowProxy, type SlowProxy } from './slow-proxy.ts';

const MiB = 1024 * 1024;
/** Generous for a loaded test machine; every case here takes seconds when the abort is not honoured. */
const prompt = 300;

/** Fires `controller` and resolves with the ms from then until `pending` rejected, with its error. */
async function abortAndTime(controller: AbortController, pending: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const settled = pending.then(
    () => ({ error: undefined }),
    (error: unknown) => ({ error }),
  );
  const t0 = performance.now();
  controller.abort(new Error('test abort'));
  const { error } = await settled;
  return { ms: performance.now() - t0, error };
}


describe('storage aborts are prompt', () => {
  let root: string;
  let server: S3Server;
  let slow: SlowProxy;
  let faults: FaultProxy;
  const clients: StorageClient[] = [];
  let n = 0;
  /** A client on a fresh prefix of the bucket, to fauxqs through `endpoint`. */
  const s3 = (endpoint: string, overrides: Parameters<typeof s3Options>[1] = {}): StorageClient => {
    const c = openStorage(`s3://aborts/p${n++}`, s3Options({ ...server, endpoint }, overrides));
    clients.push(c);
    return c;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'pagevault-aborts-'));
    server = await startFauxqs();
    await server.createBucket('aborts');
    slow = await startSlowProxy(server.endpoint, 1 * MiB);
    faults = await startFaultProxy(server.endpoint);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await slow?.close();
    await faults?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('a request waiting on the byte throttle rejects at once, and gives its tokens back', async () => {
    const c = openStorage(`file://${root}/throttle`, { throttle: { bytesPerSecond: 1 * MiB } });
    const controller = new AbortController();
    // 8 MiB at 1 MiB/s with a one-second bucket: 7 s of waiting before it may go.
    const waiting = c.putIfAbsent('big', randomBytes(8 * MiB), { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 100));
    const { ms, error } = await abortAndTime(controller, waiting);
    assert.equal((error as { code?: string })?.code, 'ABORTED', String(error));
    assert.ok(ms < prompt, `rejected ${ms.toFixed(0)} ms after the abort`);
    // Its 8 MiB were refunded: half a MiB fits in the bucket's one second at once (without the refund, 7.5 s).
    const t0 = performance.now();
    await c.putIfAbsent('small', randomBytes(MiB / 2));
    const took = performance.now() - t0;
    assert.ok(took < 1000, `the next put waited ${took.toFixed(0)} ms for the cancelled request's debt`);
  });

  it('requests without a body never wait for the debt of parts in flight', async () => {
    const events: StorageEvent[] = [];
    const c = openStorage(`file://${root}/debt`, { throttle: { bytesPerSecond: 1 * MiB }, onEvent: (e) => events.push(e) });
    await c.putIfAbsent('k', Buffer.from('v'));
    const controller = new AbortController();
    const parts = [0, 1, 2].map(() => randomBytes(5 * MiB));
    const writing = c.putObject('pack', stream(parts), { signal: controller.signal, onEvent: (e) => events.push(e) });
    await new Promise((r) => setTimeout(r, 100));
    // The first part ran the bucket ~4 MiB into debt; a head (and the write's own cleanup) must not wait for it.
    const t0 = performance.now();
    await c.head('k');
    const headMs = performance.now() - t0;
    assert.ok(headMs < prompt, `head waited ${headMs.toFixed(0)} ms behind the parts' debt`);
    const { ms, error } = await abortAndTime(controller, writing);
    assert.equal((error as { code?: string })?.code, 'ABORTED', String(error));
    assert.ok(ms < prompt, `the aborted write took ${ms.toFixed(0)} ms to stop`);
    assert.ok(events.some((e) => e.type === 'aborted-upload' && e.supported));
    assert.deepEqual(await readdir(join(root, 'debt', '.pagevault-tmp')), [], 'the temp file is gone');
  });

  it('a part mid-body on a slow link to S3 is cancelled at once, its request torn down', async () => {
    const c = s3(slow.endpoint);
    const controller = new AbortController();
    const data = randomBytes(8 * MiB);
    const sending = c.putObject('pack', stream([data]), { signal: controller.signal });
    const request = await slow.waitFor((r) => r.method === 'PUT' && r.url.includes('partNumber=1') && r.up >= 512 * 1024);
    const { ms, error } = await abortAndTime(controller, sending);
    assert.equal((error as { code?: string })?.code, 'ABORTED', String(error));
    assert.ok(ms < prompt, `putObject rejected ${ms.toFixed(0)} ms after the abort (8 MiB at 1 MiB/s: seconds left)`);
    // What the kernel's socket buffers held still reaches the proxy; then it sees the connection go.
    await slow.waitFor((r) => r === request && (r.clientGone || r.done), 20_000);
    assert.ok(request.clientGone && request.up < data.length, `the request was torn down mid-body (${request.up} of ${data.length} bytes sent)`);
  });

  it('a ranged read and a whole-object get mid-body on a slow link are cancelled at once', async () => {
    const at = (endpoint: string): StorageClient => {
      const client = openStorage('s3://aborts/reads', s3Options({ ...server, endpoint }));
      clients.push(client);
      return client;
    };
    await at(server.endpoint).putIfAbsent('obj', randomBytes(8 * MiB));
    const reader = at(slow.endpoint);
    for (const [what, call] of [
      ['readRange', (signal: AbortSignal) => reader.readRange('obj', MiB, 6 * MiB, { signal })],
      ['getObject', (signal: AbortSignal) => reader.getObject('obj', { signal })],
    ] as const) {
      const seen = slow.log.length;
      const controller = new AbortController();
      const reading = call(controller.signal);
      await slow.waitFor((r) => slow.log.indexOf(r) >= seen && r.method === 'GET' && r.down >= 512 * 1024);
      const { ms, error } = await abortAndTime(controller, reading);
      assert.equal((error as { code?: string })?.code, 'ABORTED', `${what}: ${String(error)}`);
      assert.ok(ms < prompt, `${what} rejected ${ms.toFixed(0)} ms after the abort`);
    }
  });

  it('the abort of a multipart upload is bounded when the server never answers it', async () => {
    const c = s3(faults.endpoint, { retry: { attempts: 8, baseDelayMs: 20, maxDelayMs: 200, budgetMs: 60_000 }, s3: { idleTimeoutMs: 30_000 } });
    faults.setRules([{ match: (r) => r.method === 'DELETE' && r.url.includes('uploadId='), fault: 'stall' }]);
    try {
      const events: StorageEvent[] = [];
      const controller = new AbortController();
      const writing = c.putObject('pack', stream([randomBytes(5 * MiB)], true), {
        signal: controller.signal,
        abortTimeoutMs: 500,
        onEvent: (e) => events.push(e),
      });
      while (!events.some((e) => e.type === 'part')) await new Promise((r) => setTimeout(r, 10));
      const { ms, error } = await abortAndTime(controller, writing);
      assert.equal((error as { code?: string })?.code, 'ABORTED', String(error));
      assert.ok(ms >= 450 && ms < 500 + prompt, `the aborted write took ${ms.toFixed(0)} ms with a 500 ms bound on its cleanup`);
      const failed = events.find((e) => e.type === 'abort-failed');
      assert.ok(failed && failed.uploadId !== undefined, JSON.stringify(events.map((e) => e.type)));
      assert.equal((failed.error as { code?: string }).code, 'TIMEOUT');
      assert.match(failed.error.message, /did not finish within 500 ms.*lifecycle rule/);
      assert.ok(faults.log.some((r) => r.method === 'DELETE' && r.fault === 'stall'), 'the abort reached the server');
    } finally {
      faults.setRules([]);
    }
  });

  it('the file backend stops a large write or read within a slice, leaving no temp file', async () => {
    const store = new FileStore(join(root, 'file'));
    const data = randomBytes(64 * MiB);
    const controller = new AbortController();
    const writing = store.putObject('pack', stream([data]), { signal: controller.signal });
    await new Promise((r) => setImmediate(r));
    const { ms, error } = await abortAndTime(controller, writing);
    assert.equal((error as { code?: string })?.code, 'ABORTED', String(error));
    assert.ok(ms < prompt, `putObject rejected ${ms.toFixed(0)} ms after the abort`);
    assert.deepEqual(await readdir(join(root, 'file', '.pagevault-tmp')), [], 'the temp file was removed');
    await rejectsWith(store.head('pack'), 'NOT_FOUND');

    await store.putIfAbsent('obj', data);
    const reading = new AbortController();
    const read = store.readRange('obj', 0, data.length, { signal: reading.signal });
    await new Promise((r) => setImmediate(r));
    const r = await abortAndTime(reading, read);
    assert.equal((r.error as { code?: string })?.code, 'ABORTED', String(r.error));
    assert.ok(r.ms < prompt, `readRange rejected ${r.ms.toFixed(0)} ms after the abort`);
    const getting = new AbortController();
    const got = store.getObject('obj', { signal: getting.signal });
    const g = await abortAndTime(getting, got);
    assert.equal((g.error as { code?: string })?.code, 'ABORTED', String(g.error));
  });
});
