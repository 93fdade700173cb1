// The storage stack under injected faults (test/helpers/fault-proxy.ts in front of fauxqs): uploads and
// downloads either succeed with the right bytes (SHA-256) or fail with a typed error within the retry budget;
// no partial object is ever visible; a failed multipart upload is aborted; permanent errors are not retried;
// a create or completion whose response was lost is recognised as our own write, whatever the ETag says.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { StorageEvent } from '../../src/storage/client.ts';
import { openStorage, type StorageClient, type StorageOptions } from '../../src/storage/index.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { startFauxqs, type S3Server } from '../helpers/servers.ts';
import { listKeys, rejectsWith, sha256, stream } from './conformance.ts';
import { s3Options } from './s3-options.ts';

const MiB = 1024 * 1024;
const idleTimeoutMs = 400;


describe('storage under injected faults', () => {
  let server: S3Server;
  let proxy: FaultProxy;
  const clients: StorageClient[] = [];
  let n = 0;

  /** A client through the proxy, on a fresh prefix, with its events collected. */
  const open = (overrides: StorageOptions = {}): { c: StorageClient; events: StorageEvent[]; prefix: string } => {
    const events: StorageEvent[] = [];
    const prefix = `t${n++}`;
    const c = openStorage(
      `s3://faults/${prefix}`,
      s3Options(
        { ...server, endpoint: proxy.endpoint },
        {
          retry: { attempts: 12, baseDelayMs: 5, maxDelayMs: 100, budgetMs: 20_000 },
          onEvent: (e) => events.push(e),
          ...overrides,
          s3: { idleTimeoutMs, ...overrides.s3 },
        },
      ),
    );
    clients.push(c);
    return { c, events, prefix };
  };
  /** A client straight to the server, to see what is really stored. */
  const direct = (prefix: string): StorageClient => {
    const c = openStorage(`s3://faults/${prefix}`, s3Options(server));
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startFauxqs();
    await server.createBucket('faults');
    proxy = await startFaultProxy(server.endpoint, { seed: 7 });
  });
  after(async () => {
    for (const c of clients) await c.close();
    await proxy?.close();
    await server?.stop();
  });

  it('with every kind of fault at random, uploads and downloads end with the right bytes', async () => {
    proxy.setRules([]);
    proxy.setRates({ reset: 0.04, 'reset-after': 0.04, stall: 0.02, truncate: 0.05, '500': 0.05, '503': 0.05 });
    const before = proxy.log.length;
    const { c, events, prefix } = open();
    try {
      const smalls = Array.from({ length: 12 }, () => randomBytes(20_000));
      await Promise.all(smalls.map((b, i) => c.putIfAbsent(`manifests/${String(i).padStart(2, '0')}`, b)));
      const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(3 * MiB)];
      await c.putObject('packs/s1/big', stream(parts), { partsInFlight: 3 });
      const whole = Buffer.concat(parts);

      for (const [i, b] of smalls.entries()) assert.equal(sha256(await c.getObject(`manifests/${String(i).padStart(2, '0')}`)), sha256(b));
      const into = Buffer.alloc(2 * MiB);
      for (let i = 0; i < 12; i++) {
        const offset = Math.floor((i * whole.length) / 13);
        const view = await c.readRange('packs/s1/big', offset, 2 * MiB, { into });
        assert.equal(sha256(view), sha256(whole.subarray(offset, offset + 2 * MiB)), `range at ${offset}`);
      }
      assert.equal(sha256(await c.getObject('packs/s1/big')), sha256(whole));
      assert.equal((await listKeys(c, 'manifests/')).length, 12);
      assert.equal(sha256(await direct(prefix).getObject('packs/s1/big')), sha256(whole), 'the server holds the right bytes');
    } finally {
      proxy.setRates({});
    }
    const faults = proxy.log.slice(before).filter((e) => e.fault);
    const kinds = new Set(faults.map((e) => e.fault));
    assert.ok(faults.length >= 8, `only ${faults.length} faults were injected`);
    assert.ok(kinds.size >= 4, `only ${[...kinds].join(', ')} were injected`);
    assert.ok(events.filter((e) => e.type === 'retry').length >= faults.length - 2, 'each fault was retried');
  });

  it('a part that keeps failing fails the upload with a typed error, aborts it, and leaves nothing visible', async () => {
    const { c, events, prefix } = open({ retry: { attempts: 5, baseDelayMs: 5, maxDelayMs: 50, budgetMs: 5000 } });
    proxy.setRules([{ match: (r) => r.method === 'PUT' && r.url.includes('partNumber=2&'), fault: '500' }]);
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB)];
    const err = await rejectsWith(c.putObject('packs/s2/doomed', stream(parts), { partsInFlight: 2, onEvent: (e) => events.push(e) }), 'RETRIES_EXHAUSTED');
    proxy.setRules([]);
    assert.match(err.message, /upload part 2 of packs\/s2\/doomed.*InternalError \(HTTP 500\).*gave up after 5 attempts/);
    const part2 = proxy.log.filter((e) => e.path === `/faults/${prefix}/packs/s2/doomed` && e.url.includes('partNumber=2&'));
    assert.equal(part2.length, 5, 'part 2 was sent five times, from its buffer');
    const aborts = proxy.log.filter((e) => e.method === 'DELETE' && e.path === `/faults/${prefix}/packs/s2/doomed` && e.url.includes('uploadId='));
    assert.equal(aborts.length, 1);
    assert.equal(aborts[0]!.status, 204, 'the server accepted the abort');
    assert.ok(events.some((e) => e.type === 'aborted-upload' && e.supported), 'the upload reported its abort');
    await rejectsWith(direct(prefix).head('packs/s2/doomed'), 'NOT_FOUND');
    assert.deepEqual(await listKeys(direct(prefix)), []);
  });

  it('a putIfAbsent whose response was lost is recognised as its own write on retry', async () => {
    const { c, prefix } = open();
    proxy.setRules([{ match: (r) => r.method === 'PUT' && r.path.endsWith('/manifests/lost'), fault: 'reset-after', times: 1 }]);
    const body = randomBytes(5000);
    await c.putIfAbsent('manifests/lost', body);
    assert.equal(proxy.log.filter((e) => e.path === `/faults/${prefix}/manifests/lost` && e.fault === 'reset-after').length, 1);
    assert.equal(sha256(await direct(prefix).getObject('manifests/lost')), sha256(body));
    await rejectsWith(c.putIfAbsent('manifests/lost', randomBytes(5000)), 'ALREADY_EXISTS');
  });

  it('a putIfAbsent whose response was lost succeeds on retry when the ETag is not the MD5 (as under SSE-KMS)', async () => {
    const { c, prefix } = open();
    proxy.setRules([
      { match: (r) => r.method === 'PUT' && r.path.endsWith('/manifests/kms'), fault: 'reset-after', times: 1 },
      { match: (r) => r.method === 'HEAD' && r.path.endsWith('/manifests/kms'), fault: 'etag' },
    ]);
    try {
      const body = randomBytes(5000);
      await c.putIfAbsent('manifests/kms', body);
      assert.ok(proxy.log.some((e) => e.path === `/faults/${prefix}/manifests/kms` && e.fault === 'etag'), 'the retry saw an ETag that is not the MD5');
      assert.equal(sha256(await direct(prefix).getObject('manifests/kms')), sha256(body));
      await rejectsWith(c.putIfAbsent('manifests/kms', body), 'ALREADY_EXISTS');
    } finally {
      proxy.setRules([]);
    }
  });

  it('a server that ignores Range fails readRange with NOT_SUPPORTED instead of downloading the whole object', async () => {
    const { c, prefix } = open();
    await c.putIfAbsent('big', randomBytes(4 * MiB));
    proxy.setRules([{ match: (r) => r.method === 'GET' && r.path.endsWith('/big'), fault: 'no-range' }]);
    try {
      const err = await rejectsWith(c.readRange('big', MiB, 1000), 'NOT_SUPPORTED');
      assert.match(err.message, /ignored the Range header.*\(4194304 bytes\)/);
      await rejectsWith(c.readRange('big', 4 * MiB - 10, 1000), 'INVALID_RANGE');
      assert.equal(proxy.log.filter((e) => e.path === `/faults/${prefix}/big` && e.method === 'GET').length, 2, 'one request each, not retried');
    } finally {
      proxy.setRules([]);
    }
  });

  it('a CompleteMultipartUpload whose response was lost still completes', async () => {
    const { c, prefix } = open();
    proxy.setRules([{ match: (r) => r.method === 'POST' && r.url.includes('/packs/s3/x?uploadId='), fault: 'reset-after', times: 1 }]);
    const parts = [randomBytes(5 * MiB), randomBytes(1000)];
    await c.putObject('packs/s3/x', stream(parts));
    assert.equal(proxy.counts()['reset-after']! >= 1, true);
    assert.equal(sha256(await direct(prefix).getObject('packs/s3/x')), sha256(Buffer.concat(parts)));
  });

  it('truncated bodies and stalls past the idle timeout are retried; the bytes come out right', async () => {
    const { c, events } = open();
    const body = randomBytes(3 * MiB);
    await c.putIfAbsent('obj', body);
    proxy.setRules([
      { match: (r) => r.method === 'GET' && r.path.endsWith('/obj'), fault: 'truncate', times: 2 },
      { match: (r) => r.method === 'GET' && r.path.endsWith('/obj'), fault: 'stall', times: 1 },
    ]);
    const started = Date.now();
    const into = Buffer.alloc(MiB);
    const view = await c.readRange('obj', MiB, MiB, { into });
    assert.ok(Date.now() - started >= idleTimeoutMs, 'waited for the idle timeout');
    assert.equal(sha256(view), sha256(body.subarray(MiB, 2 * MiB)));
    const codes = events.flatMap((e) => (e.type === 'retry' ? [(e.error as { code?: string }).code] : []));
    assert.deepEqual(codes.sort(), ['CONNECTION', 'CONNECTION', 'TIMEOUT'].sort());
    proxy.setRules([{ match: (r) => r.method === 'GET' && r.path.endsWith('/obj'), fault: 'truncate', times: 1 }]);
    assert.equal(sha256(await c.getObject('obj')), sha256(body));
  });

  it('a server that keeps answering SlowDown exhausts the budget with a typed error, in bounded time', async () => {
    const { c } = open({ retry: { attempts: 100, baseDelayMs: 20, maxDelayMs: 200, budgetMs: 1500 } });
    proxy.setRules([{ match: (r) => r.method === 'GET', fault: '503' }]);
    const started = Date.now();
    const err = await rejectsWith(c.getObject('anything'), 'RETRIES_EXHAUSTED');
    const elapsed = Date.now() - started;
    proxy.setRules([]);
    assert.ok(elapsed <= 1500 + 500, `took ${elapsed} ms`);
    assert.equal((err.cause as { code: string }).code, 'THROTTLED');
    assert.match(err.message, /SlowDown \(HTTP 503\)/);
  });

  it('a permanent error (403) is not retried', async () => {
    const { c, prefix } = open();
    proxy.setRules([{ match: (r) => r.method === 'GET', fault: '403' }]);
    await rejectsWith(c.getObject('secret'), 'ACCESS_DENIED');
    proxy.setRules([]);
    assert.equal(proxy.log.filter((e) => e.path === `/faults/${prefix}/secret`).length, 1);
  });
});
