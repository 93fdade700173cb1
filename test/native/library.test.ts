// The native library: one file that is both the Node-API addon and a SQLite extension, calling SQLite only
// through the extension API table and exporting nothing but its two entry points; and its lock probe.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { native, nativeLibraryPath, registerConnection } from '../../src/native/index.ts';
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

test('a token dies with its connection; handles are type-checked', () => {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
  const token = registerConnection(db);
  assert.equal(registerConnection(db), token + 1, 'loading again replaces the registration');
  db.close();
  assert.throws(() => native().start(token + 1, 4096, 1024), { code: 'PAGEVAULT_UNKNOWN_CONNECTION' });
  assert.throws(() => native().step({} as never, 1, new Float64Array(6)), { code: 'ERR_INVALID_ARG_TYPE' });
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
