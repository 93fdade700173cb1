// The CLI as a container runtime and an operator see it: a snapshot told to stop (SIGTERM, SIGINT) under a low
// bandwidth cap exits within Docker's and Kubernetes' grace periods, publishing nothing and aborting its
// multipart uploads, on file:// and on S3 (fauxqs, behind a logging proxy or a slow link); and sources that
// SQLite cannot open read-only as they are: a hot journal, a WAL database in a read-only directory.
// A snapshot also leaves nothing beside a source that had nothing (no empty -wal and -shm), and never removes
// the -wal and -shm of a process that has the database open (python3's sqlite3 module, its own SQLite).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { after, before, describe, it, type TestContext } from 'node:test';
import { describeRun, runCli, spawnCli, type CliResult } from '../helpers/cli.ts';
import { startFaultProxy, type FaultProxy, type LoggedRequest } from '../helpers/fault-proxy.ts';
import { startHolder } from '../helpers/processes.ts';
import { adminClient, startFauxqs, type S3Server } from '../helpers/servers.ts';
import { createDatabase, createLargeDatabase, tempDir } from '../helpers/sqlite.ts';
import { killWriterMidTransaction } from '../source/hot-journal.ts';
import { startSlowProxy, type SlowProxy } from '../storage/slow-proxy.ts';
import { s3Target } from './s3-target.ts';
import { assertExit, sha256File, type Target } from './suite.ts';

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
      // A pack is written to a temp file once the config is there: it exists when the upload began, and has
      // bytes once a part is stored.
      const tmp = join(vault, '.pagevault-tmp');
      const temps = (): number[] => (existsSync(join(vault, 'pagevault.json')) ? walk(tmp).map((f) => statSync(join(tmp, f), { throwIfNoEntry: false })?.size ?? 0) : []);
      const run = spawnCli(['snapshot', db, `file://${vault}`, '--json', '--max-bytes-per-second', '1MiB']);
      if (stage === 'upload started') await until('the pack upload began', () => temps().length > 0);
      else await until('a part was stored', () => temps().some((size) => size > 0), 60_000);
      const r = await interrupt(run, signal);
      assertInterrupted(t, r, signal, `on file:// (${stage})`);
      assert.deepEqual(
        walk(vault).filter((k) => !k.startsWith('.pagevault-')),
        ['pagevault.json'],
        'no manifest and no pack',
      );
      assert.deepEqual(walk(tmp), [], 'no temp file left: the pack write was cleaned up');
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

    it('a restore on a slow link: SIGINT mid-download exits 130 within the grace period, the target untouched', async (t) => {
      const url = await target.freshUrl();
      assertExit(await runCli(['snapshot', db, url], { env: target.env }), 0);
      const restoreDir = join(dir, 'restore-slow');
      mkdirSync(restoreDir);
      const path = join(restoreDir, 'app.db');
      const seen = slow.log.length;
      const run = spawnCli(['restore', url, path], { env: { ...target.env, AWS_ENDPOINT_URL_S3: slow.endpoint } });
      await slow.waitFor((r) => slow.log.indexOf(r) >= seen && r.method === 'GET' && r.url.includes('/packs/') && r.down >= MiB, 60_000);
      const r = await interrupt(run, 'SIGINT');
      t.diagnostic(`SIGINT during a restore: exited ${r.exitMs.toFixed(0)} ms after the signal`);
      assertExit(r, 130);
      assert.ok(r.exitMs < exitWithinMs, `exited ${r.exitMs.toFixed(0)} ms after the signal\n${describeRun(r)}`);
      assert.deepEqual(readdirSync(restoreDir), [], 'no target and no temp file');
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


const isRoot = process.getuid?.() === 0;

/** Runs a python3 script with `args`; rejects with its stderr when it fails. */
function python(script: string, ...args: string[]): string {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

/** Files beside the database in its directory, sorted. */
const beside = (dir: string): string[] => readdirSync(dir).sort();

/** Rows of table `t` (the fixtures below), read by a second SQLite (python3's), read-write as an application would. */
const rows = (db: string): number => Number(python('import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from t").fetchone()[0])', db));

/** A rollback-journal database of 200 committed rows with a hot journal (hot-journal.ts); returns 200. */
function hotJournal(db: string): number {
  python(
    `import sqlite3, os, sys
c = sqlite3.connect(sys.argv[1]); c.execute('create table t(id integer primary key, b blob)')
for i in range(200): c.execute('insert into t(b) values (?)', (os.urandom(4000),))
c.commit(); c.close()`,
    db,
  );
  killWriterMidTransaction(db, 'insert into t(b) values (?)');
  return 200;
}

/** A WAL database with one table `t` of `n` rows, nothing beside it. */
function walDatabase(db: string, n = 10): void {
  const d = new Database(db);
  d.pragma('journal_mode = wal');
  d.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  const insert = d.prepare('INSERT INTO t(v) VALUES (?)');
  for (let i = 0; i < n; i++) insert.run(`row ${i}`);
  d.close();
  assert.deepEqual(beside(join(db, '..')).filter((f) => f.startsWith('app.db')), ['app.db']);
}

describe('sources SQLite cannot read as they are', () => {
  it('--busy-timeout bounds the wait for a locked database (exit 3); a bad duration is a usage error', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 50 });
    const url = `file://${join(dir, 'vault')}`;
    // Another process holds an EXCLUSIVE lock, as a writer committing a long transaction does.
    const locker = spawn('python3', ['-c', 'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute("begin exclusive")\nprint("locked", flush=True)\nsys.stdin.read()', db], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    t.after(() => locker.kill('SIGKILL'));
    await once(locker.stdout!, 'data');
    for (const [flag, atLeastMs] of [
      ['1s', 1000],
      ['3500ms', 3500],
    ] as const) {
      const r = await runCli(['snapshot', db, url, '--busy-timeout', flag, '--json']);
      assertExit(r, 3);
      assert.equal(r.json?.error?.code, 'SOURCE_BUSY', r.stdout);
      assert.match(r.stderr, /stayed locked/);
      // From outside, tsx start-up included: at least the timeout, and nowhere near the default 30 s.
      assert.ok(r.durationMs >= atLeastMs && r.durationMs < atLeastMs + 10_000, `--busy-timeout ${flag}: ${r.durationMs} ms`);
    }
    const bad = await runCli(['snapshot', db, url, '--busy-timeout', '5x']);
    assertExit(bad, 2);
    assert.match(bad.stderr, /--busy-timeout must be a duration like 500ms, 30s, 2m, 36h, 7d, 2w or 1y \(a bare number is seconds\), got "5x"/);
  });

  it('a hot journal is SOURCE_HOT_JOURNAL saying how to roll it back; done as it says, the snapshot works', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    const committed = hotJournal(db);
    const journal = sha256File(`${db}-journal`);
    const url = `file://${join(dir, 'vault')}`;
    const r = await runCli(['snapshot', db, url, '--json']);
    assertExit(r, 3);
    assert.equal(r.json?.error?.code, 'SOURCE_HOT_JOURNAL', r.stdout);
    assert.match(r.stderr, new RegExp(`${db} has a hot journal \\(${db}-journal\\): a writer stopped in the middle of a transaction`));
    assert.match(r.stderr, new RegExp(`hint: open it once with sqlite3 as a user who can write ${db} and ${dir}, e\\.g\\. \`sqlite3 ${db} 'PRAGMA quick_check'\``));
    assert.equal(sha256File(`${db}-journal`), journal, 'the journal is left exactly as it was');
    assert.ok(!r.stderr.includes('attempt to write a readonly database'), 'not SQLite\'s bare message');

    // What the hint says (python3's sqlite3 where the sqlite3 shell is missing): the journal is rolled back.
    const shell = spawnSync('sqlite3', [db, 'PRAGMA quick_check'], { encoding: 'utf8' });
    if (shell.error) python('import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("pragma quick_check").fetchall()', db);
    else assert.equal(shell.stdout.trim(), 'ok');
    assert.ok(!existsSync(`${db}-journal`));
    assertExit(await runCli(['snapshot', db, url]), 0);
    const restored = join(dir, 'restored.db');
    assertExit(await runCli(['restore', url, restored]), 0);
    assert.equal(rows(restored), committed, 'the restored database has what was committed, not the killed transaction');
  });

  describe('a WAL database in a directory the user cannot write', { skip: !isRoot && 'needs root to run the CLI as a second user (nobody): root ignores directory permissions' }, () => {
    /** A directory of its own for one case: the database inside, the vault beside it writable by nobody. */
    const setup = async (t: TestContext, prepare: (db: string) => Promise<void> | void): Promise<{ dir: string; db: string; url: string }> => {
      const root = tempDir(t);
      chmodSync(root, 0o755);
      const dir = join(root, 'data');
      mkdirSync(dir, { mode: 0o755 });
      const db = join(dir, 'app.db');
      walDatabase(db);
      await prepare(db);
      for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
      chmodSync(dir, 0o555);
      t.after(() => (existsSync(dir) ? chmodSync(dir, 0o755) : undefined));
      const vault = join(root, 'vault');
      mkdirSync(vault);
      chmodSync(vault, 0o777);
      return { dir, db, url: `file://${vault}` };
    };
    /** -wal and -shm as an application killed with SIGKILL leaves them (python3 through hold.py). */
    const crashedApp = async (db: string): Promise<void> => {
      const holder = startHolder(db, 'wal');
      await holder.ready;
      await holder.send('insert 1');
      await holder.kill();
    };

    for (const [name, prepare, missing] of [
      ['without -wal or -shm', () => {}, ['-wal', '-shm']],
      ['with a -shm but no -wal', async (db: string) => {
        await crashedApp(db);
        rmSync(`${db}-wal`);
      }, ['-wal']],
      ['with a -wal but no -shm', async (db: string) => {
        await crashedApp(db);
        rmSync(`${db}-shm`);
      }, ['-shm']],
    ] as const) {
      it(`${name}: SOURCE_WAL_READONLY_DIR naming what is missing and what to do; nothing is written there`, async (t) => {
        const { dir, db, url } = await setup(t, prepare);
        const before = beside(dir);
        const r = await runCli(['snapshot', db, url, '--json'], { asUser: 'nobody' });
        assertExit(r, 3);
        assert.equal(r.json?.error?.code, 'SOURCE_WAL_READONLY_DIR', r.stdout);
        assert.match(r.stderr, new RegExp(`${db} is a WAL database in a directory this user cannot write \\(${dir}\\)`));
        for (const m of missing) assert.ok(r.stderr.includes(`${db}${m}`), `names ${db}${m} as missing:\n${r.stderr}`);
        assert.match(r.stderr, new RegExp(`hint: make ${dir} writable for the user running pagevault`));
        assert.deepEqual(beside(dir), before, 'nothing created or removed in the directory');
      });
    }

    it('with both the -wal and the -shm of a crashed application: the snapshot reads them, and leaves them', async (t) => {
      const { dir, db, url } = await setup(t, crashedApp);
      const before = beside(dir).map((f) => `${f}:${sha256File(join(dir, f))}`);
      const r = await runCli(['snapshot', db, url, '--json'], { asUser: 'nobody' });
      assertExit(r, 0);
      assert.deepEqual(beside(dir).map((f) => `${f}:${sha256File(join(dir, f))}`), before, 'the crashed application\'s files are untouched');
      const restored = join(dir, '..', 'restored.db');
      assertExit(await runCli(['restore', url, restored]), 0);
      assert.equal((new Database(restored, { readonly: true }).prepare('SELECT count(*) AS n FROM held').get() as { n: number }).n, 2, 'the committed rows in the -wal are in the snapshot');
    });
  });
});

describe('the -wal and -shm beside a WAL source', () => {
  /** A WAL database of `mib` MiB (so that a snapshot at 8 MiB/s lasts seconds), nothing beside it. */
  const bigWal = (db: string, mib: number): void => {
    createLargeDatabase(db, mib * MiB);
    const d = new Database(db);
    d.pragma('journal_mode = wal');
    d.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    d.close();
    assert.deepEqual(beside(join(db, '..')), ['app.db']);
  };

  it('an idle database: nothing is left beside it', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'data', 'app.db');
    mkdirSync(join(dir, 'data'));
    walDatabase(db);
    assertExit(await runCli(['snapshot', db, `file://${join(dir, 'vault')}`]), 0);
    assert.deepEqual(beside(join(dir, 'data')), ['app.db'], 'no empty -wal and -shm');
  });

  it('an application holding it open throughout keeps its -wal and -shm, and its commits', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'data', 'app.db');
    mkdirSync(join(dir, 'data'));
    walDatabase(db);
    const holder = startHolder(db, 'wal');
    t.after(() => holder.kill());
    await holder.ready;
    await holder.send('insert 1');
    const wal = statSync(`${db}-wal`).ino;
    assertExit(await runCli(['snapshot', db, `file://${join(dir, 'vault')}`]), 0);
    assert.deepEqual(beside(join(dir, 'data')), ['app.db', 'app.db-shm', 'app.db-wal']);
    assert.equal(statSync(`${db}-wal`).ino, wal, 'the same -wal, not a new one');
    assert.equal(await holder.send('insert 2'), 'ok 2');
    assert.equal(await holder.send('count'), 'count 3');
    assert.equal(await holder.close(), 0);
    // The holder closed last: SQLite's own rule removed both, after checkpointing its commits.
    assert.deepEqual(beside(join(dir, 'data')), ['app.db']);
    assert.equal(rows(db), 10);
    assert.equal(Number(python('import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from held").fetchone()[0])', db)), 3);
  });

  it('a reader that opens it while the snapshot runs, and has written nothing, keeps the very files it opened', async (t) => {
    // The -wal stays empty: only SQLite's lock protocol tells that these files are in use.
    const dir = tempDir(t);
    const data = join(dir, 'data');
    mkdirSync(data);
    const db = join(data, 'app.db');
    bigWal(db, 40);
    const run = spawnCli(['snapshot', db, `file://${join(dir, 'vault')}`, '--max-bytes-per-second', '16MiB']);
    await until('the snapshot opened the database', () => existsSync(`${db}-wal`) && existsSync(`${db}-shm`));
    const reader = spawn(
      'python3',
      ['-c', 'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute("select count(*) from t").fetchone()\nprint("ready", flush=True)\nsys.stdin.readline()\nc.execute("insert into t(v) values (\'late\')")\nc.close()\nprint("done", flush=True)', db],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    t.after(() => reader.kill('SIGKILL'));
    await once(reader.stdout!, 'data');
    const opened = { wal: statSync(`${db}-wal`).ino, shm: statSync(`${db}-shm`).ino };
    assertExit(await run.finished, 0);
    assert.deepEqual(beside(data), ['app.db', 'app.db-shm', 'app.db-wal'], 'in use by the reader');
    assert.deepEqual({ wal: statSync(`${db}-wal`).ino, shm: statSync(`${db}-shm`).ino }, opened, 'the files the reader has open');
    assert.equal(statSync(`${db}-wal`).size, 0);
    reader.stdin!.write('go\n');
    const [code] = (await once(reader, 'exit')) as [number];
    assert.equal(code, 0);
    assert.deepEqual(beside(data), ['app.db'], 'the reader closed last: SQLite removed them');
    assert.equal(rows(db), 1, 'its commit went into the database');
  });

  it('an application that opens it while the snapshot runs keeps them too, open or closed, with every commit', async (t) => {
    const dir = tempDir(t);
    for (const closesFirst of [false, true]) {
      const data = join(dir, `data-${closesFirst}`);
      mkdirSync(data);
      const db = join(data, 'app.db');
      bigWal(db, 40);
      const run = spawnCli(['snapshot', db, `file://${join(dir, `vault-${closesFirst}`)}`, '--max-bytes-per-second', '16MiB']);
      // Our connection created them: from here on they are files the snapshot made, in use by someone else.
      await until('the snapshot opened the database', () => existsSync(`${db}-wal`) && existsSync(`${db}-shm`));
      const holder = startHolder(db, 'wal');
      t.after(() => holder.kill());
      await holder.ready;
      for (let i = 1; i <= 5; i++) assert.equal(await holder.send(`insert ${i}`), `ok ${i}`);
      if (closesFirst) assert.equal(await holder.close(), 0, 'closed while the snapshot still had the database open');
      const r = await run.finished;
      assertExit(r, 0);
      assert.deepEqual(beside(data), ['app.db', 'app.db-shm', 'app.db-wal'], closesFirst ? 'its commits are in the -wal' : 'in use');
      if (closesFirst) assert.ok(statSync(`${db}-wal`).size > 0, 'the -wal holds the commits');
      else {
        assert.equal(await holder.send('insert 6'), 'ok 6', 'the holder goes on committing');
        assert.equal(await holder.close(), 0);
      }
      assert.equal(Number(python('import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from held").fetchone()[0])', db)), closesFirst ? 6 : 7, 'every commit is there');
    }
  });

  it('a user who may only read the database leaves the two empty files, as SQLite does, and says why at info', { skip: !isRoot && 'needs root to run the CLI as a second user (nobody)' }, async (t) => {
    const root = tempDir(t);
    chmodSync(root, 0o755);
    const data = join(root, 'data');
    mkdirSync(data);
    chmodSync(data, 0o777);
    const db = join(data, 'app.db');
    walDatabase(db);
    chmodSync(db, 0o644);
    const vault = join(root, 'vault');
    mkdirSync(vault);
    chmodSync(vault, 0o777);
    const r = await runCli(['snapshot', db, `file://${vault}`], { asUser: 'nobody' });
    assertExit(r, 0);
    assert.deepEqual(beside(data), ['app.db', 'app.db-shm', 'app.db-wal']);
    assert.equal(statSync(`${db}-wal`).size, 0);
    assert.match(r.stderr, /"reason":"no-write-access".*left the empty -wal and -shm/);
  });
});
