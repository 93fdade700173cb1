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
import { extensionEntryPoint, native, nativeLibraryPath, registerConnection } from '../../src/native/index.ts';
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
  assert.throws(() => native().start(token, 4096, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' }, 'the replaced token');
  native().close(native().start(again, 4096, 1024));
  db.close();
  assert.throws(() => native().start(again, 4096, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' }, 'the closed connection');
  assert.throws(() => native().step({} as never, 1, new Float64Array(6)), { code: 'ERR_INVALID_ARG_TYPE' });
});

test("tokens cannot be guessed from one another: a made-up token is refused, never another connection's", () => {
  const a = registered();
  const b = registered();
  try {
    assert.ok(Number.isSafeInteger(a.token) && Number.isSafeInteger(b.token));
    // Sequential tokens would make a.token + 1 name b.
    for (const guess of [a.token + 1, a.token - 1, b.token + 1, b.token - 1, 1, 2, 3]) {
      assert.throws(() => native().start(guess, 4096, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' }, `token ${guess}`);
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
     raw.close(raw.start(token, 4096, 1024)); // its own thread may back it up
     parentPort.postMessage(token);
     parentPort.once('message', () => { db.close(); parentPort.postMessage('closed'); });`,
    { eval: true, workerData: { lib: nativeLibraryPath, entryPoint: extensionEntryPoint } },
  );
  try {
    const token = (await once(worker, 'message'))[0] as number;
    assert.throws(() => native().start(token, 4096, 1024), {
      code: 'PAGEVAULT_FOREIGN_CONNECTION',
      message: /belongs to another thread/,
    });
    worker.postMessage('close');
    assert.equal((await once(worker, 'message'))[0], 'closed');
    assert.throws(() => native().start(token, 4096, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' });
  } finally {
    await worker.terminate();
  }
});

test('start() checks its arguments in TypeScript before the native call', () => {
  const { db, token } = registered();
  try {
    // Each of these would reach the C side differently (4096.5 truncates to an accepted 4096).
    assert.throws(() => native().start(token, 4096.5, 1024), { name: 'RangeError', message: 'pageSize must be a power of two from 512 to 65536, got 4096.5' });
    assert.throws(() => native().start(token, 1000, 1024), { name: 'RangeError', message: /power of two from 512 to 65536, got 1000$/ });
    assert.throws(() => native().start(token, 4096, 0), { name: 'RangeError', message: 'cacheKiB must be a positive integer, got 0' });
    assert.throws(() => native().start(String(token) as never, 4096, 1024), { name: 'TypeError', message: /connectionToken must be a token/ });
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
           const handle = raw.start(token, size, 1024);
           raw.step(handle, 100, new Float64Array(6));
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
  const handle = native().start(registerConnection(db), 4096, 1024);
  const out = new Float64Array(6);
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
