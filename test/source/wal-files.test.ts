// What the page source leaves beside its database, and how it fails where a read-only connection cannot read:
// removeWalFilesWeCreated's outcomes against real second processes (python3's sqlite3, its own SQLite) and a
// second connection in this process, with the POSIX locks read back from /proc/locks; a hot journal that
// appears in the middle of a snapshot.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, it, type TestContext } from 'node:test';
import { PageSource } from '../../src/source/index.ts';
import { removeWalFilesWeCreated, walFilesBefore } from '../../src/source/wal-files.ts';
import { createDatabase, tempDir } from '../helpers/sqlite.ts';
import { killWriterMidTransaction } from './hot-journal.ts';

/** A WAL database with a table `t` and nothing beside it. */
function walDatabase(dir: string): string {
  const db = join(dir, 'app.db');
  const d = new Database(db);
  d.pragma('journal_mode = wal');
  d.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b')");
  d.close();
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('app.db')), ['app.db']);
  return db;
}

/** Copies every page through a page source of our own (its read-only connection), then closes it. */
async function snapshotPages(db: string): Promise<void> {
  const source = await PageSource.open(db);
  for await (const batch of source.pages()) void batch;
  source.close();
}

/** A python3 process with `db` open, idle after reading it (or after one commit with `write`). */
async function pythonHolder(t: TestContext, db: string, write = false): Promise<ChildProcess> {
  const script = [
    'import sqlite3, sys',
    'c = sqlite3.connect(sys.argv[1], isolation_level=None)',
    'c.execute("pragma wal_autocheckpoint=0")',
    write ? 'c.execute("insert into t(v) values (\'python\')")' : 'c.execute("select count(*) from t").fetchone()',
    'print("ready", flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script, db], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await once(child.stdout!, 'data');
  return child;
}

/** POSIX locks on `path` from /proc/locks: "<pid> <READ|WRITE> <start> <end>". */
function locksOn(path: string): string[] {
  const ino = statSync(path).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === 'POSIX' && f[5]?.split(':')[2] === String(ino))
    .map((f) => `${f[4]} ${f[3]} ${f[6]} ${f[7]}`);
}

const linux = existsSync('/proc/locks');

describe('the -wal and -shm our own connection creates', { skip: !linux && 'needs /proc (Linux)' }, () => {
  it('are removed when nobody else has the database open', async (t) => {
    const dir = tempDir(t);
    const db = walDatabase(dir);
    await snapshotPages(db);
    assert.deepEqual(readdirSync(dir), ['app.db']);
  });

  it('outcomes: none for a rollback-journal database, existed, in-use (an idle reader), not-empty (a commit), removed', async (t) => {
    const dir = tempDir(t);
    const rollback = join(dir, 'rollback.db');
    createDatabase(rollback, { rows: 10 });
    const rb = walFilesBefore(rollback);
    await snapshotPages(rollback);
    assert.equal(removeWalFilesWeCreated(rollback, rb), 'none');

    const db = walDatabase(dir);
    const before = walFilesBefore(db);
    assert.deepEqual(before, { wal: false, shm: false });
    // Our connection, open, creates both; a second process opens the database meanwhile and stays idle.
    const ours = new Database(db, { readonly: true, fileMustExist: true });
    ours.prepare('SELECT count(*) FROM t').get();
    const reader = await pythonHolder(t, db);
    ours.close();
    assert.equal(statSync(`${db}-wal`).size, 0);
    assert.ok(locksOn(db).some((l) => l.startsWith(`${reader.pid} READ 1073741826 1073742335`)), `the idle reader holds SHARED: ${locksOn(db).join('; ')}`);
    assert.equal(removeWalFilesWeCreated(db, before), 'in-use');
    assert.ok(existsSync(`${db}-wal`) && existsSync(`${db}-shm`));
    assert.equal(removeWalFilesWeCreated(db, { wal: true, shm: true }), 'existed', 'files that were there before are never ours');
    reader.kill('SIGKILL');
    await once(reader, 'exit');

    // A writer that committed and went away while we were open: its frames stay in the -wal, which stays.
    const writer = await pythonHolder(t, db, true);
    writer.kill('SIGKILL');
    await once(writer, 'exit');
    assert.ok(statSync(`${db}-wal`).size > 0);
    assert.equal(removeWalFilesWeCreated(db, before), 'not-empty');
    assert.equal(Number(spawnSync('python3', ['-c', 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from t").fetchone()[0])', db], { encoding: 'utf8' }).stdout), 3);
    // That python connection closed last (read-write): SQLite itself checkpointed and removed both.
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('app.db')), ['app.db']);

    const again = new Database(db, { readonly: true, fileMustExist: true });
    again.prepare('SELECT count(*) FROM t').get();
    again.close();
    assert.ok(existsSync(`${db}-wal`), 'a read-only connection cannot remove them itself');
    assert.equal(removeWalFilesWeCreated(db, before), 'removed');
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('app.db')), ['app.db']);
  });

  it('are left while another connection in this process has the database open, whose locks stay intact', async (t) => {
    const dir = tempDir(t);
    const db = walDatabase(dir);
    const before = walFilesBefore(db);
    const source = await PageSource.open(db);
    const app = new Database(db);
    try {
      app.prepare('SELECT count(*) FROM t').get();
      for await (const batch of source.pages()) void batch;
      source.close();
      const locks = locksOn(db).filter((l) => l.startsWith(`${process.pid} `));
      assert.ok(locks.some((l) => l.includes('READ 1073741826 1073742335')), `the application's connection holds SHARED: ${locks.join('; ')}`);
      assert.equal(removeWalFilesWeCreated(db, before), 'open-here');
      assert.deepEqual(readdirSync(dir).sort(), ['app.db', 'app.db-shm', 'app.db-wal']);
      assert.deepEqual(locksOn(db).filter((l) => l.startsWith(`${process.pid} `)), locks, 'no lock of this process was dropped');
      app.prepare("INSERT INTO t(v) VALUES ('app')").run();
      assert.equal((app.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 3, 'the application goes on writing');
    } finally {
      app.close();
    }
    assert.deepEqual(readdirSync(dir), ['app.db'], 'the application closed last: SQLite removed them');
  });
});

describe('a hot journal', () => {
  it('that appears while the page source copies a rollback-journal database fails the copy with SOURCE_HOT_JOURNAL', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 300 });
    const source = await PageSource.open(db, { stepPages: 16 });
    const pages = source.pages()[Symbol.asyncIterator]();
    assert.equal((await pages.next()).done, false);
    // A writer spills a big transaction into the file and is killed before it commits.
    killWriterMidTransaction(db, "insert into items(name, payload) values ('x', ?)");
    await assert.rejects(
      (async () => {
        for (let r = await pages.next(); !r.done; r = await pages.next());
      })(),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SOURCE_HOT_JOURNAL', err.message);
        assert.match(err.message, /^backup step: .*app\.db has a hot journal/);
        return true;
      },
    );
    source.close();
  });
});
