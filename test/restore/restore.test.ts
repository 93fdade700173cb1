// restore() through the library on a file:// vault: replacing a database safely, and failing safely.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { restore, snapshot } from '../../src/index.ts';
import { parseSnapshotId } from '../../src/vault/ids.ts';
import { manifestKey } from '../../src/vault/layout.ts';
import { decodeManifest, encodeManifest } from '../../src/vault/manifest.ts';
import { createDatabase, differingPages, fileDigest, integrityCheck, tempDir } from '../helpers/sqlite.ts';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('--force replaces a WAL database: its old -wal and -shm are gone, so SQLite cannot replay them into the new one', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'src.db');
  createDatabase(src, { journalMode: 'wal', rows: 500 });
  const vault = `file://${join(dir, 'vault')}`;
  await snapshot({ source: src, url: vault });

  // An older, different database at the target, with committed changes still in its WAL, left as a crash
  // leaves it (a clean close would checkpoint and remove the -wal, so the pair is copied while open).
  const target = join(dir, 'target.db');
  createDatabase(target, { journalMode: 'wal', rows: 50 });
  const old = new Database(target);
  old.pragma('wal_autocheckpoint = 0');
  old.exec("DELETE FROM items WHERE id > 10; INSERT INTO items(name) VALUES ('only in the old WAL')");
  const wal = readFileSync(`${target}-wal`);
  const shm = readFileSync(`${target}-shm`);
  await assert.rejects(restore({ url: vault, path: target }), { name: 'TargetExistsError', code: 'TARGET_EXISTS' });
  old.close();
  writeFileSync(`${target}-wal`, wal);
  writeFileSync(`${target}-shm`, shm);
  assert.ok(wal.length > 0);

  const r = await restore({ url: vault, path: target, force: true });
  assert.equal(r.check, 'integrity_check');
  assert.equal(existsSync(`${target}-wal`), false, 'the old -wal is gone');
  assert.equal(existsSync(`${target}-shm`), false, 'the old -shm is gone');
  assert.equal(fileDigest(target), fileDigest(src), 'the restored database, not the old WAL replayed into it');
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('pagevault-')), [], 'no temp file left');
});

test('a tampered pack fails the restore with an IntegrityError naming it; the target and its directory are as before', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'src.db');
  createDatabase(src, { rows: 3000 });
  const vaultDir = join(dir, 'vault');
  const s = await snapshot({ source: src, url: `file://${vaultDir}` });
  const pack = join(vaultDir, s.packs[0]!);
  const fd = openSync(pack, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, 5000);
  byte[0]! ^= 0x20;
  writeSync(fd, byte, 0, 1, 5000);
  closeSync(fd);

  const target = join(dir, 'target.db');
  createDatabase(target, { rows: 10 });
  const before = sha(target);
  const listing = readdirSync(dir).sort();
  await assert.rejects(restore({ url: `file://${vaultDir}`, path: target, force: true }), (err: Error & { code?: string }) => {
    assert.equal(err.name, 'IntegrityError');
    assert.ok(['CHUNK_DAMAGED', 'CHUNK_DIGEST'].includes(err.code!), err.code);
    assert.ok(err.message.includes(s.packs[0]!), `names the pack: ${err.message}`);
    return true;
  });
  assert.equal(sha(target), before, 'the target is untouched');
  assert.deepEqual(readdirSync(dir).sort(), listing, 'the temp file is removed');
  assert.equal(integrityCheck(target), 'ok');
});

test('restore picks the newest snapshot at or before --at, or the one named', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'src.db');
  const vault = `file://${join(dir, 'vault')}`;
  createDatabase(src, { rows: 100 });
  const a = await snapshot({ source: src, url: vault });
  const db = new Database(src);
  db.exec("INSERT INTO items(name) VALUES ('second')");
  db.close();
  const b = await snapshot({ source: src, url: vault });
  const between = new Date(parseSnapshotId(a.id).createdAt.getTime() + 1);
  assert.ok(between < parseSnapshotId(b.id).createdAt);
  const r1 = await restore({ url: vault, path: join(dir, 'at.db'), at: between });
  assert.equal(r1.id, a.id);
  const r2 = await restore({ url: vault, path: join(dir, 'latest.db') });
  assert.equal(r2.id, b.id);
  await assert.rejects(restore({ url: vault, path: join(dir, 'x.db'), at: new Date('2000-01-01T00:00:00Z') }), { code: 'NOT_FOUND' });
  const empty = await restore({ url: `file://${join(dir, 'empty-vault')}`, path: join(dir, 'y.db'), ifReplicaExists: true });
  assert.equal(empty.skipped, 'no-snapshot');
  assert.equal(existsSync(join(dir, 'y.db')), false);
  const kept = await restore({ url: vault, path: join(dir, 'latest.db'), ifNotExists: true });
  assert.equal(kept.skipped, 'target-exists');
});

test('a snapshot of a database that was already corrupt restores to nothing: integrity_check refuses it (exit 5)', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'corrupt.db');
  createDatabase(src, { rows: 3000 });
  // Scribble over a b-tree page in the middle: SQLite's backup copies pages without parsing them.
  const fd = openSync(src, 'r+');
  writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096 * 100);
  closeSync(fd);
  const vault = `file://${join(dir, 'vault')}`;
  const s = await snapshot({ source: src, url: vault });
  assert.notEqual(s.databaseDigest, null);
  const target = join(dir, 'restored.db');
  await assert.rejects(restore({ url: vault, path: target }), (err: Error & { code?: string }) => {
    assert.equal(err.name, 'IntegrityError');
    assert.equal(err.code, 'INTEGRITY_CHECK', err.message);
    assert.ok(err.message.includes(s.id), err.message);
    return true;
  });
  assert.equal(existsSync(target), false, 'nothing is put in place');
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('pagevault-')), [], 'no temp file left');
  const quick = await restore({ url: vault, path: target, quickCheck: true }).then(
    () => 'restored',
    (err: Error & { code?: string }) => err.code,
  );
  assert.equal(quick, 'INTEGRITY_CHECK', 'quick_check sees a scribbled b-tree page too');
});

test('the integrity check split across threads finds what PRAGMA integrity_check finds, whole or split', async (t) => {
  // Split, integrity_check is quick_check of the whole file plus integrity_check(<table>) per table. Each
  // damage below is seen by only one of those parts: an index whose content does not match its table (the
  // per-table checks; quick_check passes it) and a free-list count one short (quick_check; the per-table
  // checks pass it). Snapshots copy pages without judging them, so both restore as far as the check.
  const dir = tempDir(t);
  const damaged: [string, (db: Database.Database, path: string) => void, RegExp][] = [
    [
      'index',
      (db) => {
        db.unsafeMode(true);
        db.pragma('writable_schema = ON');
        db.prepare("UPDATE sqlite_schema SET sql = 'CREATE INDEX items_n ON items(name)' WHERE name = 'items_n'").run();
      },
      /PRAGMA integrity_check\('items'\) of the restored database failed: row \d+ missing from index items_n/,
    ],
    [
      'freelist',
      (db, path) => {
        db.exec('DELETE FROM items WHERE id % 2 = 0');
        db.close();
        const fd = openSync(path, 'r+');
        const count = Buffer.alloc(4);
        readSync(fd, count, 0, 4, 36);
        assert.ok(count.readUInt32BE(0) > 1, 'the deletes left free pages');
        count.writeUInt32BE(count.readUInt32BE(0) - 1);
        writeSync(fd, count, 0, 4, 36);
        closeSync(fd);
      },
      /PRAGMA (quick_check|integrity_check) of the restored database failed: .*Freelist: size is \d+ but should be \d+/s,
    ],
  ];
  for (const [name, damage, expected] of damaged) {
    const src = join(dir, `${name}.db`);
    createDatabase(src, { rows: 3000 });
    const db = new Database(src);
    damage(db, src);
    if (db.open) db.close();
    const vault = `file://${join(dir, `vault-${name}`)}`;
    const s = await snapshot({ source: src, url: vault });
    for (const checkThreads of [1, 2]) {
      const target = join(dir, `${name}-${checkThreads}.db`);
      await assert.rejects(restore({ url: vault, path: target, checkThreads }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'INTEGRITY_CHECK', err.message);
        assert.ok(err.message.includes(s.id), err.message);
        if (checkThreads === 2) assert.match(err.message, expected);
        else assert.match(err.message, /PRAGMA integrity_check of the restored database failed/);
        return true;
      });
      assert.equal(existsSync(target), false, `${name}, ${checkThreads} thread(s): nothing is put in place`);
    }
    if (name === 'index') {
      const quick = await restore({ url: vault, path: join(dir, 'index-quick.db'), quickCheck: true });
      assert.equal(quick.check, 'quick_check', 'quick_check alone does not see the index: the per-table checks did');
    }
  }
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('pagevault-')), [], 'no temp file left');
  const intact = join(dir, 'intact.db');
  createDatabase(intact, { rows: 3000 });
  const vault = `file://${join(dir, 'vault-intact')}`;
  await snapshot({ source: intact, url: vault });
  const r = await restore({ url: vault, path: join(dir, 'intact-restored.db'), checkThreads: 2 });
  assert.equal(r.check, 'integrity_check');
  assert.equal(integrityCheck(join(dir, 'intact-restored.db')), 'ok');
});

test('the split integrity check passes an intact database of every kind of table: virtual, shadow, WITHOUT ROWID, quoted names', async (t) => {
  // integrity_check(<table>) is run for each row of sqlite_schema of type 'table': FTS5 and R*Tree tables and
  // their shadow tables, sqlite_sequence and sqlite_stat*, a name that needs quoting. None may fail a restore
  // that the whole integrity_check passes.
  const dir = tempDir(t);
  const src = join(dir, 'kinds.db');
  const db = new Database(src);
  db.exec(`CREATE TABLE "it's" (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT UNIQUE);
           CREATE VIRTUAL TABLE docs USING fts5(body);
           CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);
           CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;`);
  db.transaction(() => {
    for (let i = 0; i < 2000; i++) {
      db.prepare(`INSERT INTO "it's" (v) VALUES (?)`).run(`value ${i}`);
      db.prepare('INSERT INTO docs (body) VALUES (?)').run(`document ${i} about ${i % 17}`);
      db.prepare('INSERT INTO boxes VALUES (?, ?, ?)').run(i, i, i + 1);
      db.prepare('INSERT INTO kv VALUES (?, randomblob(100))').run(`k${i}`);
    }
  })();
  db.exec('ANALYZE');
  const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() as number;
  db.close();
  assert.ok(tables > 10, `${tables} tables, shadow and statistics tables included`);
  const vault = `file://${join(dir, 'vault')}`;
  await snapshot({ source: src, url: vault });
  const target = join(dir, 'restored.db');
  const r = await restore({ url: vault, path: target, checkThreads: 2 });
  assert.equal(r.check, 'integrity_check');
  assert.deepEqual(differingPages(src, target, 4096), [], 'the restored file is the source, page for page');
});

test('the whole-database digest is checked on the file as written: a manifest whose chunks verify but whose digest differs is refused', async (t) => {
  // Every chunk decodes and matches its own digest; only the read-back of the file, chunk by chunk in blocks of
  // many chunks (the database spans several blocks and ends in a short chunk), can tell.
  const dir = tempDir(t);
  const src = join(dir, 'src.db');
  createDatabase(src, { rows: 6000 });
  const vaultDir = join(dir, 'vault');
  const s = await snapshot({ source: src, url: `file://${vaultDir}`, chunkSize: 16 * 1024 });
  assert.ok(s.pageCount * s.pageSize > 8 * 1024 * 1024, `database of ${s.pageCount} pages of ${s.pageSize}: more than one 8 MiB read-back block`);
  assert.notEqual(s.pageCount % (16 * 1024 / s.pageSize), 0, 'the last chunk is short');
  const good = join(dir, 'good.db');
  const ok = await restore({ url: `file://${vaultDir}`, path: good });
  assert.equal(ok.databaseDigest, s.databaseDigest);

  const key = join(vaultDir, manifestKey(s.id));
  const m = decodeManifest(readFileSync(key), s.id);
  const wrong = m.databaseDigest!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  writeFileSync(key, encodeManifest({ ...m, databaseDigest: wrong }));
  const target = join(dir, 'target.db');
  await assert.rejects(restore({ url: `file://${vaultDir}`, path: target }), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'DATABASE_DIGEST');
    assert.match(String((err as Error).message), new RegExp(s.id));
    return true;
  });
  assert.equal(existsSync(target), false, 'nothing at the target');
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('pagevault-')), [], 'no temp file left');
});
