// The native library: one file that is both the Node-API addon and a SQLite extension, calling SQLite only
// through the extension API table and exporting nothing but its two entry points; and its lock probe.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { extensionEntryPoint, native, nativeLibraryPath, registerConnection, SQLITE, STEP_OUT, type StepOut } from '../../src/native/index.ts';
import { startHolder } from '../helpers/processes.ts';

function dynamicSymbols(flag: '--undefined-only' | '--defined-only'): string[] {
  const out = execFileSync('nm', ['-D', flag, nativeLibraryPath], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/).pop()!)
    .filter(Boolean);
}

test('the library has no undefined sqlite3_* symbols: every SQLite call goes through the API table', () => {
  const undefinedSymbols = dynamicSymbols('--undefined-only');
  assert.ok(undefinedSymbols.some((s) => s.startsWith('napi_')), 'sanity: it does import Node-API');
  assert.deepEqual(undefinedSymbols.filter((s) => /sqlite3/i.test(s)), []);
});

test('the library exports only the Node-API module and the extension entry point', () => {
  const exported = dynamicSymbols('--defined-only').sort();
  assert.deepEqual(exported, ['napi_register_module_v1', 'node_api_module_get_api_version_v1', 'sqlite3_pagevault_init']);
});

/** A connection with a few pages, and its token. */
function registered(): { db: Database.Database; token: number } {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(20000))');
  return { db, token: registerConnection(db) };
}

test('a token dies with its connection; handles are type-checked', () => {
  const { db, token } = registered();
  const again = registerConnection(db);
  assert.notEqual(again, token, 'loading again replaces the registration');
  assert.throws(() => native().start(token, 4096, 1024, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' }, 'the replaced token');
  native().close(native().start(again, 4096, 1024, 1024));
  db.close();
  assert.throws(() => native().start(again, 4096, 1024, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' }, 'the closed connection');
  assert.throws(() => native().step({} as never, 1, new Float64Array(STEP_OUT)), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => native().setRereadFill({} as never, 0), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('setRereadFill takes a byte; re-reads are counted (none in a copy nobody writes to)', () => {
  const { db, token } = registered();
  const handle = native().start(token, 4096, 1, 1024);
  try {
    assert.throws(() => native().setRereadFill(handle, 256), { name: 'RangeError', message: 'the fill must be a byte, 0 to 255' });
    native().setRereadFill(handle, 0xaa);
    const out = new Float64Array(STEP_OUT);
    assert.equal(native().step(handle, 100, out), SQLITE.DONE);
    assert.equal(out[8], 0);
  } finally {
    native().close(handle);
    db.close();
  }
});

test("tokens cannot be guessed from one another: a made-up token is refused, never another connection's", () => {
  const a = registered();
  const b = registered();
  try {
    assert.ok(Number.isSafeInteger(a.token) && Number.isSafeInteger(b.token));
    // Sequential tokens would make a.token + 1 name b.
    for (const guess of [a.token + 1, a.token - 1, b.token + 1, b.token - 1, 1, 2, 3]) {
      assert.throws(() => native().start(guess, 4096, 1024, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' }, `token ${guess}`);
    }
  } finally {
    a.db.close();
    b.db.close();
  }
});

test("a token registered in a worker thread is refused on the main thread, and works in its worker", async () => {
  // CommonJS eval: the worker loads better-sqlite3 and the same library (same path: the same instance).
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const Database = require('better-sqlite3');
     const raw = require(workerData.lib);
     const db = new Database(':memory:');
     db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(20000))');
     db.loadExtension(workerData.lib, workerData.entryPoint);
     const token = db.prepare('SELECT pagevault_connection()').pluck().get();
     raw.close(raw.start(token, 4096, 1024, 1024)); // its own thread may back it up
     parentPort.postMessage(token);
     parentPort.once('message', () => { db.close(); parentPort.postMessage('closed'); });`,
    { eval: true, workerData: { lib: nativeLibraryPath, entryPoint: extensionEntryPoint } },
  );
  try {
    const token = (await once(worker, 'message'))[0] as number;
    assert.throws(() => native().start(token, 4096, 1024, 1024), {
      code: 'PAGEVAULT_FOREIGN_CONNECTION',
      message: /belongs to another thread/,
    });
    worker.postMessage('close');
    assert.equal((await once(worker, 'message'))[0], 'closed');
    assert.throws(() => native().start(token, 4096, 1024, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' });
  } finally {
    await worker.terminate();
  }
});

test('start() checks its arguments in TypeScript before the native call', () => {
  const { db, token } = registered();
  try {
    // Each of these would reach the C side differently (4096.5 truncates to an accepted 4096).
    assert.throws(() => native().start(token, 4096.5, 1024, 1024), { name: 'BugError', message: 'pageSize must be a power of two from 512 to 65536, got 4096.5' });
    assert.throws(() => native().start(token, 1000, 1024, 1024), { name: 'BugError', message: /power of two from 512 to 65536, got 1000$/ });
    assert.throws(() => native().start(token, 4096, 0, 1024), { name: 'BugError', message: 'cacheKiB must be a positive integer, got 0' });
    assert.throws(() => native().start(token, 4096, 1024, 0), { name: 'BugError', message: 'maxStagedPages must be a positive integer, got 0' });
    assert.throws(() => native().start(String(token) as never, 4096, 1024, 1024), { name: 'BugError', message: /connectionToken must be a token/ });
  } finally {
    db.close();
  }
});

test('the native start() itself refuses a page size that is not a power of two in 512..65536, without crashing', () => {
  // The raw addon, bypassing the TypeScript checks, in a child process: a division by a page size of 0 is SIGFPE.
  const child = spawnSync(
    process.execPath,
    [
      '-e',
      `const Database = require('better-sqlite3');
       const raw = require(process.env.PV_LIB);
       const results = [];
       for (const size of [0, 1000, 131072, 2 ** 32 + 4096, -4096]) {
         const db = new Database(':memory:');
         db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(20000))');
         db.loadExtension(process.env.PV_LIB, process.env.PV_ENTRY);
         const token = db.prepare('SELECT pagevault_connection()').pluck().get();
         try {
           const handle = raw.start(token, size, 1024, 1024);
           raw.step(handle, 100, new Float64Array(9));
           raw.drain(handle, new Uint32Array(8), Buffer.alloc(8 * 65536));
           raw.close(handle);
           results.push({ size, accepted: true });
         } catch (err) {
           results.push({ size, name: err.name, code: err.code, message: err.message });
         }
         db.close();
       }
       process.stdout.write(JSON.stringify(results));`,
    ],
    { cwd: process.cwd(), encoding: 'utf8', env: { ...process.env, PV_LIB: nativeLibraryPath, PV_ENTRY: extensionEntryPoint } },
  );
  assert.equal(child.signal, null, `the child was killed by ${child.signal}`);
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(
    JSON.parse(child.stdout),
    [0, 1000, 131072, 2 ** 32 + 4096, -4096].map((size) => ({
      size,
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
      message: `pageSize must be a power of two from 512 to 65536, got ${size}`,
    })),
  );
});

test('a backup from a registered connection copies into the staging VFS and drains in order', () => {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t(x); ');
  const insert = db.prepare('INSERT INTO t VALUES (randomblob(3000))');
  for (let i = 0; i < 100; i++) insert.run();
  const pageCount = db.pragma('page_count', { simple: true }) as number;
  const handle = native().start(registerConnection(db), 4096, 1024, 1024);
  const out = new Float64Array(STEP_OUT);
  const pages = new Uint32Array(8);
  const data = Buffer.alloc(8 * 4096);
  const seen: number[] = [];
  let rc: number;
  do {
    rc = native().step(handle, 32, out);
    assert.ok(rc === 0 || rc === 101, `rc ${rc}`);
    for (let n; (n = native().drain(handle, pages, data)) > 0; ) seen.push(...pages.subarray(0, n));
  } while (rc !== 101);
  assert.equal(out[2], pageCount);
  assert.equal(native().finish(handle), 0);
  native().close(handle);
  native().close(handle); // idempotent
  assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: pageCount }, (_, i) => i + 1));
  db.close();
});

/** A file database of `rows` rows of about 3 KB (one page each at 4 KiB) in `journalMode`, open, and its token. */
function fileDatabase(dir: string, rows: number, journalMode: 'wal' | 'delete'): { db: Database.Database; token: number } {
  const db = new Database(join(dir, `${journalMode}.db`));
  db.pragma(`journal_mode = ${journalMode}`);
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, x BLOB)');
  const insert = db.prepare('INSERT INTO t(x) VALUES (randomblob(3000))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run();
  })();
  return { db, token: registerConnection(db) };
}

test('the staging buffer holds at most maxStagedPages: a step past it fails with SQLITE_FULL and overCap', () => {
  const { db, token } = registered();
  const insert = db.prepare('INSERT INTO t VALUES (randomblob(3000))');
  for (let i = 0; i < 200; i++) insert.run();
  const handle = native().start(token, 4096, 1, 40);
  const out = new Float64Array(STEP_OUT);
  try {
    const rc = native().step(handle, 100, out); // nothing drained: 100 pages do not fit in 40
    const [, , , staged, , , overCap, peak] = out as unknown as StepOut;
    assert.equal(rc, SQLITE.FULL);
    assert.equal(overCap, 1);
    assert.equal(staged, 40);
    assert.equal(peak, 40);
    assert.equal(native().step(handle, 100, out), SQLITE.FULL, 'the backup cannot go on');
    const pages = new Uint32Array(64);
    assert.equal(native().drain(handle, pages, Buffer.alloc(64 * 4096)), 40, 'what was staged is still drainable');
    assert.deepEqual([...pages.subarray(0, 40)], Array.from({ length: 40 }, (_, i) => i + 2), 'pages 2.. in order (page 1 comes last)');
  } finally {
    native().close(handle);
    db.close();
  }
});

test('pages drained from the front make room: a backlog that never empties stays within the cap', () => {
  const { db, token } = registered();
  const insert = db.prepare('INSERT INTO t VALUES (randomblob(3000))');
  for (let i = 0; i < 300; i++) insert.run();
  const pageCount = db.pragma('page_count', { simple: true }) as number;
  // Without reclaiming the drained front, 300 pages staged in arrival order would need a buffer of 300.
  const handle = native().start(token, 4096, 1, 48);
  const out = new Float64Array(STEP_OUT);
  const pages = new Uint32Array(16);
  const data = Buffer.alloc(16 * 4096);
  const seen: number[] = [];
  try {
    let rc: number;
    do {
      rc = native().step(handle, 16, out);
      assert.ok(rc === SQLITE.OK || rc === SQLITE.DONE, `rc ${rc}`);
      const n = native().drain(handle, pages, data); // at most 16 a step: a backlog builds up and never empties
      seen.push(...pages.subarray(0, n));
    } while (rc !== SQLITE.DONE);
    assert.equal(out[6], 0, 'no write refused');
    assert.ok(out[7]! <= 48, `peak ${out[7]} pages`);
    for (let n; (n = native().drain(handle, pages, data)) > 0; ) seen.push(...pages.subarray(0, n));
    assert.deepEqual(seen.slice(0, 100), Array.from({ length: 100 }, (_, i) => i + 2), 'in arrival order');
    assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: pageCount }, (_, i) => i + 1), 'every page once');
  } finally {
    native().close(handle);
    db.close();
  }
});

for (const journalMode of ['wal', 'delete'] as const) {
  test(`${journalMode}: the source connection's commit succeeds when the staging VFS refuses the pages it re-sends`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pagevault-native-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { db, token } = fileDatabase(dir, 1000, journalMode);
    const handle = native().start(token, 4096, 64, 128);
    const out = new Float64Array(STEP_OUT);
    const pages = new Uint32Array(128);
    const data = Buffer.alloc(128 * 4096);
    try {
      for (let i = 0; i < 10; i++) {
        assert.equal(native().step(handle, 64, out), SQLITE.OK);
        while (native().drain(handle, pages, data) > 0);
      }
      // 600 pages already copied are rewritten in one commit: SQLite re-sends them inside it, past the cap.
      const changed = db.prepare('UPDATE t SET x = zeroblob(3000) WHERE id <= 600').run().changes;
      assert.equal(changed, 600, "the application's commit succeeded");
      assert.equal(native().step(handle, 64, out), SQLITE.FULL, 'the backup reports the refusal at its next step');
      assert.equal(out[6], 1, 'overCap');
      assert.equal(out[7], 128, 'peak: the cap');
    } finally {
      native().close(handle);
    }
    assert.equal(db.prepare('SELECT count(*) FROM t WHERE x = zeroblob(3000)').pluck().get(), 600, 'and it is in the database');
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
  });
}

test("lockHolder finds another process's SQLite locks where SQLite takes them, and takes none itself", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pagevault-locks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'held.db');
  const dbLocks = [0x4000_0000, 512] as const; // PENDING, RESERVED and the SHARED range
  const shmLocks = [120, 9] as const; // the WAL locks and the DMS byte
  assert.equal(native().lockHolder(db, ...dbLocks), 0, 'no file: no holder');

  const holder = startHolder(db, 'wal');
  try {
    await holder.ready;
    // An idle WAL connection keeps a shared lock on the database and on the -shm's DMS byte.
    assert.equal(native().lockHolder(db, ...dbLocks), holder.pid);
    assert.equal(native().lockHolder(`${db}-shm`, ...shmLocks), holder.pid);
    assert.equal(native().lockHolder(db, 0, 4096), 0, 'nothing is locked outside the lock bytes');
    // Probing took no lock: the holder still writes.
    assert.equal(await holder.send('insert 1'), 'ok 1');
  } finally {
    assert.equal(await holder.close(), 0);
  }
  assert.equal(native().lockHolder(db, ...dbLocks), 0, 'a closed connection holds nothing');
  assert.throws(() => native().lockHolder(db, -1, 1), /bad range/);
});
