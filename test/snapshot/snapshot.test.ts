// snapshot() and restore() through the library on a file:// vault: the pipeline's own promises (patches for
// re-sent pages, restarts, the upload-driven throttle, abort) on real databases.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MiB } from '../../src/config/defaults.ts';
import { openStorage, restore, snapshot } from '../../src/index.ts';
import { listObjects } from '../../src/storage/index.ts';
import { contentDigest, createDatabase, createLargeDatabase, fileDigest, integrityCheck, tempDir } from '../helpers/sqlite.ts';

function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();
}

test("an application connection's writes during the snapshot become patches; the restore is the final state", async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'wal', rows: 6000 });
  const db = new Database(src);
  t.after(() => db.close());
  const update = db.prepare("UPDATE items SET name = name || '!' WHERE id BETWEEN 700 AND 760");
  let calls = 0;
  const result = await snapshot({
    source: db,
    url: `file://${join(dir, 'vault')}`,
    onProgress: () => {
      // Rows 700-760 sit in pages copied by the first steps: writing them after that re-sends them.
      if (++calls >= 3 && calls <= 5) update.run();
    },
  });
  assert.equal(result.mode, 'application');
  assert.ok(result.patches > 0, `re-sent pages became patches (${result.patches})`);
  assert.equal(result.databaseDigest, null, 'with patches the whole-database digest is not knowable at snapshot time');
  const out = join(dir, 'restored.db');
  const r = await restore({ url: `file://${join(dir, 'vault')}`, path: out });
  assert.equal(r.id, result.id);
  assert.equal(integrityCheck(out), 'ok');
  assert.equal(fileDigest(out), contentDigest(db), 'the restored database is the state when the copy completed');
  assert.equal(db.prepare("SELECT count(*) FROM items WHERE name LIKE '%!!!'").pluck().get(), 61, 'sanity: three updates landed');
});

test('a rollback-journal source that keeps changing restarts; the snapshot is still one committed state', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'rb.db');
  createDatabase(src, { journalMode: 'delete', rows: 6000 });
  const other = new Database(src, { timeout: 0 });
  t.after(() => other.open && other.close());
  const bump = other.prepare('UPDATE counter SET n = n + 1');
  let refused = 0;
  const result = await snapshot({
    source: src,
    url: `file://${join(dir, 'vault')}`,
    // The source check's shared lock would hold the commits back while it runs (source-check.test.ts).
    sourceCheck: 'none',
    onProgress: () => {
      if (refused > 0) return;
      try {
        bump.run();
      } catch {
        if (other.inTransaction) other.exec('ROLLBACK');
        refused++;
      }
    },
  });
  assert.ok(result.restarts > 0, `restarts: ${result.restarts}`);
  // Counted from the published extents: chunks emitted before a restart are superseded, not counted twice.
  assert.equal(result.chunksNew + result.chunksReused + result.chunksZero, Math.ceil(result.pageCount / 16));
  other.close();
  const out = join(dir, 'restored.db');
  await restore({ url: `file://${join(dir, 'vault')}`, path: out });
  assert.equal(integrityCheck(out), 'ok');
  assert.equal(fileDigest(out), fileDigest(src), 'the last committed state (no commit succeeded after the locked pass began)');
});

test('uploads drive the backup: pages read never run ahead of bytes stored by more than the buffers', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'big.db');
  createLargeDatabase(src, 48 * MiB); // random blobs: incompressible, stored raw
  const bound = 10 * MiB; // two 5 MiB part buffers
  let worst = 0;
  let samples = 0;
  const result = await snapshot({
    source: src,
    url: `file://${join(dir, 'vault')}`,
    partSize: 5 * MiB,
    maxBytesInFlight: bound,
    maxBytesPerSecond: 24 * MiB,
    workers: 1,
    onProgress: (p) => {
      samples++;
      worst = Math.max(worst, p.pagesRead * 4096 - p.bytesUploaded);
    },
  });
  assert.ok(samples > 20);
  assert.ok(result.bytesUploaded > 45 * MiB, 'incompressible pages are uploaded whole');
  // Part buffers (10 MiB), chunk and encode buffers (~3 MiB), the source's batch and a partly filled part.
  assert.ok(worst <= bound + 10 * MiB, `pages read ran ${(worst / MiB).toFixed(1)} MiB ahead of the uploads`);
});

test('an incremental snapshot after a small change uploads a small fraction; both restore', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'inc.db');
  const vault = `file://${join(dir, 'vault')}`;
  createDatabase(src, { journalMode: 'wal', rows: 20_000 });
  const first = await snapshot({ source: src, url: vault });
  const db = new Database(src);
  db.prepare("UPDATE items SET doc = '{\"changed\":true}' WHERE id BETWEEN 10000 AND 10010").run();
  const afterChange = contentDigest(db);
  db.close();
  const second = await snapshot({ source: src, url: vault });
  assert.equal(second.parent, first.id);
  assert.ok(second.chunksNew > 0 && second.chunksNew <= 6, `chunks uploaded: ${second.chunksNew}`);
  assert.ok(second.bytesUploaded < first.bytesUploaded * 0.05, `${second.bytesUploaded} of ${first.bytesUploaded} bytes`);
  const full = await snapshot({ source: src, url: vault, full: true });
  assert.equal(full.chunksReused, 0);
  // bytesUploaded is every byte each snapshot wrote: its packs and its manifest, as the vault lists them.
  const storage = openStorage(vault);
  t.after(() => storage.close());
  for (const s of [first, second, full]) {
    let bytes = 0;
    for await (const o of listObjects(storage, '')) if (o.key.includes(s.id)) bytes += o.size;
    assert.equal(s.bytesUploaded, bytes, `snapshot ${s.id}`);
  }
  await restore({ url: vault, path: join(dir, 'second.db'), snapshot: second.id });
  await restore({ url: vault, path: join(dir, 'first.db'), snapshot: first.id });
  assert.equal(fileDigest(join(dir, 'second.db')), afterChange);
  assert.notEqual(fileDigest(join(dir, 'first.db')), afterChange);
});

test('an aborted snapshot publishes nothing and leaves no upload behind', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'abort.db');
  createLargeDatabase(src, 24 * MiB);
  const controller = new AbortController();
  const vaultDir = join(dir, 'vault');
  await assert.rejects(
    snapshot({
      source: src,
      url: `file://${vaultDir}`,
      signal: controller.signal,
      partSize: 5 * MiB,
      maxBytesPerSecond: 8 * MiB,
      onProgress: (p) => {
        if (p.bytesUploaded > 0) controller.abort(new Error('operator'));
      },
    }),
    { name: 'AbortedError', code: 'ABORTED' },
  );
  const files = listTree(vaultDir);
  assert.deepEqual(files.filter((f) => f.startsWith('manifests/')), []);
  assert.deepEqual(files.filter((f) => f.startsWith('.pagevault-tmp/')), [], 'the pack write was cleaned up');
  assert.deepEqual(files, ['pagevault.json']);
});

test('a snapshot sweeps pack writes left unfinished by a snapshot that died, and leaves recent ones alone', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'db.db');
  createDatabase(src, { rows: 200 });
  const vaultDir = join(dir, 'vault');
  // What a killed snapshot leaves in a file vault: a temp file that was never renamed into place.
  const tmp = join(vaultDir, '.pagevault-tmp');
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'stale'), 'x');
  writeFileSync(join(tmp, 'recent'), 'x');
  const old = new Date(Date.now() - 3 * 24 * 3600 * 1000);
  utimesSync(join(tmp, 'stale'), old, old);
  await snapshot({ source: src, url: `file://${vaultDir}` });
  assert.deepEqual(readdirSync(tmp), ['recent']);
});

test('an abort that comes while the manifest is being written leaves a published snapshot, reported as published', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'wal', rows: 3000 });
  const storage = openStorage(`file://${join(dir, 'vault')}`);
  t.after(() => storage.close());
  const controller = new AbortController();
  let manifestWrites = 0;
  // The signal fires once the manifest's request is on its way (as a SIGINT would, mid-request).
  const interrupted = new Proxy(storage, {
    get(target, prop) {
      if (prop === 'putIfAbsent') {
        return async (key: string, body: Uint8Array, options?: { signal?: AbortSignal }) => {
          if (!key.startsWith('manifests/')) return target.putIfAbsent(key, body, options);
          manifestWrites++;
          const write = target.putIfAbsent(key, body, options);
          controller.abort(new Error('received SIGINT'));
          return write;
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const result = await snapshot({ source: src, storage: interrupted, signal: controller.signal, sourceCheck: 'none' });
  assert.equal(manifestWrites, 1);
  assert.ok(controller.signal.aborted);
  assert.deepEqual(readdirSync(join(dir, 'vault', 'manifests')), [result.id], 'published, and reported so');
  const out = join(dir, 'restored.db');
  await restore({ storage, path: out });
  assert.equal(fileDigest(out), fileDigest(src));
});

test('a newest snapshot whose extent table is damaged is not built on: the next snapshot uploads every chunk, and restores', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'wal', rows: 3000 });
  const vault = join(dir, 'vault');
  const first = await snapshot({ source: src, url: `file://${vault}`, sourceCheck: 'none' });
  const table = join(vault, 'extents', first.id);
  chmodSync(table, 0o644);
  writeFileSync(table, 'not an extent table');
  const second = await snapshot({ source: src, url: `file://${vault}`, sourceCheck: 'none' });
  assert.equal(second.parent, null, 'no parent: its extents cannot be read');
  assert.equal(second.chunksReused, 0);
  assert.equal(second.chunksNew, first.chunksNew);
  const out = join(dir, 'restored.db');
  const r = await restore({ url: `file://${vault}`, path: out });
  assert.equal(r.id, second.id);
  assert.equal(fileDigest(out), fileDigest(src));
});
