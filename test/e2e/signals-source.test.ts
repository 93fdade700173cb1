// The CLI as a container runtime and an operator see it: a snapshot told to stop (SIGTERM, SIGINT) under a low
// bandwidth cap exits within Docker's and Kubernetes' grace periods, publishing nothing and aborting its
// multipart uploads, on file:// and on S3 (fauxqs, behind a logging proxy or a slow link); and sources that
// SQLite cannot open read-only as they are: a hot journal, a WAL database in a read-only directory.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { describeRun, spawnCli, type CliResult } from '../helpers/cli.ts';
import { startFaultProxy, type FaultProxy, type LoggedRequest } from '../helpers/fault-proxy.ts';
import { adminClient, startFauxqs, type S3Server } from '../helpers/servers.ts';
import { createLargeDatabase } from '../helpers/sqlite.ts';
import { startSlowProxy, type SlowProxy } from '../storage/slow-proxy.ts';
import { s3Target } from './s3-target.ts';
import { assertExit, type Target } from './suite.ts';

const MiB = 1024 * 1024;
/**
 * The promise is an exit within 2 s of the signal. Measured from this process (kill() to the child's 'close'),
 * which adds process teardown and this test runner's own scheduling on a machine running other test files at
 * once: 500 ms more. A snapshot that does not honour the signal takes 7 s or more here (the throttle's wait
 * for an 8 MiB part at 1 MiB/s), so the margin cannot hide the bug.
 */
const exitWithinMs = 2000 + 500;

function walk(dir: string, root = dir): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), root) : [relative(root, join(dir, e.name))]))
    .sort();
}

async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends `signal` to a running CLI and measures, from here, how long it takes to exit. */
async function interrupt(run: ReturnType<typeof spawnCli>, signal: NodeJS.Signals): Promise<CliResult & { exitMs: number }> {
  const t0 = performance.now();
  run.child.kill(signal);
  const r = await run.finished;
  return { ...r, exitMs: performance.now() - t0 };
}

function assertInterrupted(t: TestContext, r: CliResult & { exitMs: number }, signal: NodeJS.Signals, when: string): void {
  t.diagnostic(`${signal} ${when}: exited ${r.exitMs.toFixed(0)} ms after the signal`);
  assertExit(r, signal === 'SIGINT' ? 130 : 143);
  assert.ok(r.exitMs < exitWithinMs, `${signal} ${when}: exited ${r.exitMs.toFixed(0)} ms after the signal\n${describeRun(r)}`);
  // --json: no snapshot result on stdout; at most the error object.
  assert.ok(r.stdout === '' || (r.json?.id === undefined && r.json?.error?.code === 'ABORTED'), `stdout: ${r.stdout}`);
}

describe('a snapshot told to stop exits within the grace period, publishing nothing', () => {
  let dir: string;
  let db: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pagevault-signals-'));
    db = join(dir, 'big.db');
    createLargeDatabase(db, 40 * MiB);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('on file:// at 1 MiB/s: SIGTERM while the parts wait on the throttle, SIGINT with a part stored', async (t) => {
    for (const [signal, stage] of [
      ['SIGTERM', 'upload started'],
      ['SIGINT', 'a part stored'],
    ] as const) {
      const vault = join(dir, `vault-${signal}`);
      const uploads = join(vault, '.pagevault-uploads');
      const run = spawnCli(['snapshot', db, `file://${vault}`, '--json', '--max-bytes-per-second', '1MiB']);
      if (stage === 'upload started') await until('the pack upload began', () => walk(uploads).some((f) => f.endsWith('/key')));
      else await until('a part was stored', () => walk(uploads).some((f) => /\/\d+-[0-9a-f]{32}$/.test(f)), 60_000);
      const r = await interrupt(run, signal);
      assertInterrupted(t, r, signal, `on file:// (${stage})`);
      assert.deepEqual(
        walk(vault).filter((k) => !k.startsWith('.pagevault-')),
        ['pagevault.json'],
        'no manifest and no pack',
      );
      assert.deepEqual(walk(uploads), [], 'the multipart upload was aborted');
      assert.deepEqual(walk(join(vault, '.pagevault-tmp')), [], 'no temp file left');
    }
  });

  describe('on S3 (fauxqs)', () => {
    let server: S3Server;
    let target: Target;
    let logged: FaultProxy;
    let slow: SlowProxy;
    before(async () => {
      server = await startFauxqs();
      logged = await startFaultProxy(server.endpoint);
      slow = await startSlowProxy(server.endpoint, 1 * MiB);
      const credentials = { accessKeyId: 'e2e-access', secretAccessKey: 'e2e-secret' };
      target = await s3Target({
        endpoint: server.endpoint,
        ...credentials,
        client: adminClient({ endpoint: server.endpoint, ...credentials }),
        createBucket: (name) => server.createBucket(name),
        stop: () => server.stop(),
      });
    });
    after(async () => {
      await logged?.close();
      await slow?.close();
      await target?.stop();
    });

    /** Each upload the run created was aborted: a DELETE ?uploadId=<id> answered 204 for every POST ?uploads. */
    const assertUploadsAborted = (log: readonly { method: string; url: string; status?: number }[], prefix: string): void => {
      const created = log.filter((r) => r.method === 'POST' && r.url.includes(prefix) && /[?&]uploads/.test(r.url));
      const aborted = log.filter((r) => r.method === 'DELETE' && r.url.includes(prefix) && r.url.includes('uploadId='));
      assert.ok(created.length >= 1, 'the snapshot started a pack upload');
      assert.equal(aborted.length, created.length, `every upload aborted: ${log.map((r) => `${r.method} ${r.url} ${r.status}`).join('\n')}`);
      for (const r of aborted) assert.equal(r.status, 204, `abort answered ${r.status}`);
    };

    it('at 1 MiB/s: SIGTERM while the parts wait on the throttle, SIGINT with a part stored', async (t) => {
      for (const [signal, stage] of [
        ['SIGTERM', 'upload started'],
        ['SIGINT', 'a part stored'],
      ] as const) {
        const url = await target.freshUrl();
        const prefix = `/${url.slice('s3://'.length)}/`;
        const mine = (r: LoggedRequest) => r.url.includes(prefix);
        const run = spawnCli(['snapshot', db, url, '--json', '--max-bytes-per-second', '1MiB'], {
          env: { ...target.env, AWS_ENDPOINT_URL_S3: logged.endpoint },
        });
        if (stage === 'upload started') {
          await until('the pack upload began', () => logged.log.some((r) => mine(r) && r.method === 'POST' && r.status === 200));
        } else {
          await until('a part was stored', () => logged.log.some((r) => mine(r) && r.method === 'PUT' && r.url.includes('partNumber=') && r.status === 200), 60_000);
        }
        const r = await interrupt(run, signal);
        assertInterrupted(t, r, signal, `on S3 (${stage})`);
        assert.deepEqual(await target.list(url), ['pagevault.json'], 'no manifest and no pack');
        assertUploadsAborted(logged.log.filter(mine), prefix);
      }
    });

    it('on a slow link: SIGTERM with a part mid-body', async (t) => {
      const url = await target.freshUrl();
      const prefix = `/${url.slice('s3://'.length)}/`;
      const run = spawnCli(['snapshot', db, url, '--json'], { env: { ...target.env, AWS_ENDPOINT_URL_S3: slow.endpoint } });
      const part = await slow.waitFor((r) => r.url.includes(prefix) && r.method === 'PUT' && r.url.includes('partNumber=') && r.up >= MiB, 60_000);
      const r = await interrupt(run, 'SIGTERM');
      assertInterrupted(t, r, 'SIGTERM', 'on a slow link (a part mid-body)');
      assert.ok(part.status === undefined, 'the part had not been answered when the snapshot stopped');
      assert.deepEqual(await target.list(url), ['pagevault.json'], 'no manifest and no pack');
      assertUploadsAborted(
        slow.log.filter((x) => x.url.includes(prefix)),
        prefix,
      );
    });
  });
});

