// A vault knows which database it backs up: a snapshot of another one is refused (SOURCE_MISMATCH) before
// anything is uploaded, unless newSource says it replaces the vault's source.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { openStorage, snapshot, SourceError } from '../../src/index.ts';
import { listSnapshotIds, readManifest } from '../../src/vault/repository.ts';
import { createDatabase, tempDir } from '../helpers/sqlite.ts';

function mismatch(...facts: RegExp[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof SourceError, String(err));
    assert.equal(err.code, 'SOURCE_MISMATCH');
    for (const f of facts) assert.match(err.message, f);
    assert.match(err.hint ?? '', /--new-source/);
    return true;
  };
}

async function ids(vault: string): Promise<string[]> {
  const storage = openStorage(vault);
  try {
    return await listSnapshotIds(storage);
  } finally {
    await storage.close();
  }
}

test('another database into the same vault is refused, nothing uploaded; newSource accepts it and it becomes the source', async (t) => {
  const dir = tempDir(t);
  const a = join(dir, 'a.db');
  const b = join(dir, 'b.db');
  createDatabase(a, { journalMode: 'wal', rows: 500 });
  createDatabase(b, { journalMode: 'wal', rows: 700 });
  const vaultDir = join(dir, 'vault');
  const vault = `file://${vaultDir}`;
  const first = await snapshot({ source: a, url: vault });
  assert.equal(first.newSource, false);
  const packsBefore = readdirSync(join(vaultDir, 'packs'));
  await assert.rejects(snapshot({ source: b, url: vault }), mismatch(new RegExp(`path ${b}, not ${a}`), /file name b\.db, not a\.db/, new RegExp(first.id)));
  await assert.rejects(snapshot({ source: b, url: vault, full: true }), mismatch(/file name b\.db/), 'a full snapshot is compared too');
  assert.deepEqual(await ids(vault), [first.id], 'nothing published');
  assert.deepEqual(readdirSync(join(vaultDir, 'packs')), packsBefore, 'nothing uploaded');

  const accepted = await snapshot({ source: b, url: vault, newSource: true });
  assert.equal(accepted.newSource, true);
  const storage = openStorage(vault);
  const m = await readManifest(storage, accepted.id);
  await storage.close();
  assert.deepEqual([m.source.path, m.source.fileName], [b, 'b.db']);
  // b is the vault's source now: it goes on without the flag, and a is the stranger.
  const next = await snapshot({ source: b, url: vault });
  assert.equal(next.newSource, false);
  await assert.rejects(snapshot({ source: a, url: vault }), mismatch(/file name a\.db, not b\.db/));
  assert.deepEqual(await ids(vault), [first.id, accepted.id, next.id]);
});

test('the same file by a relative path is the same source; moved, or with another page size or application_id, it is not', async (t) => {
  const dir = tempDir(t);
  const a = join(dir, 'app.db');
  createDatabase(a, { journalMode: 'wal', rows: 300 });
  const vault = `file://${join(dir, 'vault')}`;
  await snapshot({ source: a, url: vault });
  const again = await snapshot({ source: relative(process.cwd(), a), url: vault });
  assert.equal(again.newSource, false);

  const moved = join(dir, 'moved');
  mkdirSync(moved);
  const move = (from: string, to: string) => {
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(from + suffix)) renameSync(from + suffix, to + suffix);
  };
  move(a, join(moved, 'app.db'));
  await assert.rejects(snapshot({ source: join(moved, 'app.db'), url: vault }), (err: unknown) => {
    mismatch(new RegExp(`path ${join(moved, 'app.db')}, not ${a}`))(err);
    assert.doesNotMatch((err as Error).message, /file name/, 'only the path differs');
    return true;
  });
  move(join(moved, 'app.db'), a);

  const db = new Database(a);
  db.pragma('application_id = 1886348404');
  db.close();
  await assert.rejects(snapshot({ source: a, url: vault }), mismatch(/application_id 1886348404, not 0/));

  // A page size is fixed (a VACUUM that changes it is a new database as far as the chunks go).
  const other = join(dir, 'other.db');
  createDatabase(other, { journalMode: 'wal', rows: 300, pageSize: 8192 });
  const otherVault = `file://${join(dir, 'other-vault')}`;
  await snapshot({ source: other, url: otherVault });
  const big = new Database(other);
  big.pragma('journal_mode = delete');
  big.pragma('page_size = 1024');
  big.exec('VACUUM');
  big.close();
  await assert.rejects(snapshot({ source: other, url: otherVault }), mismatch(/page size 1024, not 8192/));
});

test("an application's connection, in memory or on a file, is compared the same way", async (t) => {
  const dir = tempDir(t);
  const vault = `file://${join(dir, 'vault')}`;
  const memory = new Database(':memory:');
  t.after(() => memory.close());
  memory.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1)');
  await snapshot({ source: memory, url: vault });
  const again = await snapshot({ source: memory, url: vault });
  assert.equal(again.newSource, false, 'an in-memory database has no path: null matches null');
  const file = join(dir, 'app.db');
  createDatabase(file, { rows: 10 });
  const db = new Database(file);
  t.after(() => db.close());
  await assert.rejects(snapshot({ source: db, url: vault }), mismatch(new RegExp(`path ${file}, not none \\(in memory\\)`)));
  assert.equal((await snapshot({ source: db, url: vault, newSource: true })).newSource, true);
  assert.equal((await snapshot({ source: file, url: vault })).newSource, false, 'its own connection or ours: the same file');
});
