// The source check (src/snapshot/source-check.ts) through snapshot() on real databases: what it finds is in
// the result and the manifest, a damaged source is still published, and the check reads the state the
// snapshot copies (its read transaction begun with the snapshot's, begun again when a commit landed between).
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { openStorage, PageSource, restore, snapshot } from '../../src/index.ts';
import { SourceCheck } from '../../src/snapshot/source-check.ts';
import type { ConsistencyMode, ReadCompanion } from '../../src/source/page-source.ts';
import { listSnapshotIds, readManifest } from '../../src/vault/repository.ts';
import { startWriter } from '../helpers/processes.ts';
import { createDatabase, integrityCheck, reassemble, tempDir } from '../helpers/sqlite.ts';
import { corruptOnePage } from './corrupt.ts';

const silent = pino({ level: 'silent' });

/** integrity_check's answer, or the error it stopped with. */
function verdict(path: string): string {
  try {
    return integrityCheck(path);
  } catch (err) {
    return (err as Error).message;
  }
}

async function manifestOf(vault: string, id: string) {
  const storage = openStorage(vault);
  try {
    return await readManifest(storage, id);
  } finally {
    await storage.close();
  }
}

for (const journalMode of ['wal', 'delete'] as const) {
  test(`a healthy ${journalMode} source: quick_check ok, of the snapshot's own state, in the result and the manifest`, async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'app.db');
    createDatabase(src, { journalMode, rows: 2000 });
    const vault = `file://${join(dir, 'vault')}`;
    const r = await snapshot({ source: src, url: vault });
    assert.equal(r.mode, journalMode === 'wal' ? 'wal-read-transaction' : 'rollback-stepped');
    assert.deepEqual({ ...r.sourceCheck!, durationMs: 0 }, { kind: 'quick_check', ok: true, errors: [], durationMs: 0, sameState: true });
    const m = await manifestOf(vault, r.id);
    assert.deepEqual(m.source.check, r.sourceCheck);
    assert.equal(m.source.path, src);
    assert.equal(m.source.fileName, 'app.db');
    const full = await snapshot({ source: src, url: vault, sourceCheck: 'full' });
    assert.equal(full.sourceCheck?.kind, 'integrity_check');
    assert.equal(full.sourceCheck?.ok, true);
    const none = await snapshot({ source: src, url: vault, sourceCheck: 'none' });
    assert.equal(none.sourceCheck, null);
    assert.equal((await manifestOf(vault, none.id)).source.check, null);
  });
}

test('a source with one page overwritten is published, its check failed and recorded with the page SQLite named', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'wal', rows: 3000 });
  const { page } = corruptOnePage(src);
  const db = new Database(src, { readonly: true });
  assert.equal((db.prepare('SELECT id FROM items WHERE id = 1').get() as { id: number }).id, 1, 'the other rows still read');
  db.close();
  assert.notEqual(verdict(src), 'ok', 'integrity_check fails');
  const vault = `file://${join(dir, 'vault')}`;
  for (const sourceCheck of ['quick', 'full'] as const) {
    const r = await snapshot({ source: src, url: vault, sourceCheck });
    const check = r.sourceCheck!;
    assert.equal(check.ok, false);
    assert.equal(check.sameState, true);
    assert.ok(check.errors.length >= 1 && check.errors.length <= 20, check.errors.join('\n'));
    assert.match(check.errors[0]!, new RegExp(`page ${page}\\b`), 'the first error names the page overwritten');
    assert.deepEqual((await manifestOf(vault, r.id)).source.check, check, 'the manifest records it');
  }
  const storage = openStorage(vault);
  assert.equal((await listSnapshotIds(storage)).length, 2, 'both snapshots were published');
  await storage.close();
  // What it holds is the damaged database, byte for byte: its restore fails the integrity check as the source does.
  await assert.rejects(restore({ url: vault, path: join(dir, 'restored.db') }), /integrity_check|quick_check|malformed/);
});

test("the check's connection sees a commit between its probe and its read transaction (PRAGMA data_version)", async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'wal', rows: 100 });
  const check = new SourceCheck({ path: src, kind: 'quick_check', logger: silent });
  t.after(() => check.close());
  const writer = new Database(src);
  t.after(() => writer.close());
  await check.probe();
  assert.equal(await check.pin('wal-read-transaction'), true, 'nothing committed: the same state');
  await check.probe();
  writer.prepare('UPDATE counter SET n = n + 1').run();
  assert.equal(await check.pin('wal-read-transaction'), false, 'a commit landed between');
  await check.probe();
  assert.equal(await check.pin('wal-read-transaction'), true);
  check.copyComplete();
  const record = await check.record();
  assert.equal(record.ok, true);
  assert.equal(record.sameState, true);
});

test('without a held transaction, a restart after the pin means the copy read a later state; a new pin starts over', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'delete', rows: 100 });
  const record = async (steps: (check: SourceCheck) => Promise<void>) => {
    const check = new SourceCheck({ path: src, kind: 'quick_check', logger: silent });
    t.after(() => check.close());
    await steps(check);
    check.copyComplete();
    return check.record();
  };
  const pinned = async (check: SourceCheck) => {
    await check.probe();
    await check.pin('rollback-stepped');
  };
  const still = await record(async (check) => {
    await pinned(check);
    check.batch(false);
    check.batch(false);
  });
  assert.deepEqual([still.ok, still.sameState], [true, true]);
  const restarted = await record(async (check) => {
    await pinned(check);
    check.batch(false);
    check.batch(true);
  });
  assert.deepEqual([restarted.ok, restarted.sameState], [true, false]);
  // A fallback begins a new backup: probe and pin again before its first (restarted) batch.
  const fellBack = await record(async (check) => {
    await pinned(check);
    check.batch(false);
    await check.probe();
    await check.pin('rollback-locked');
    check.batch(true);
  });
  assert.deepEqual([fellBack.ok, fellBack.sameState], [true, true]);
});

test("a held read transaction is begun again when the companion saw a commit land: the copy is the companion's state", async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'wal', rows: 200 });
  const writer = new Database(src);
  t.after(() => writer.close());
  const calls: string[] = [];
  // A companion whose first two pins report a commit, and makes one: the copy must come from a transaction
  // begun after it, as the companion's is.
  const companion: ReadCompanion = {
    probe: async () => void calls.push('probe'),
    pin: async (mode: ConsistencyMode) => {
      calls.push(`pin ${mode}`);
      if (calls.length > 4) return true;
      writer.prepare('UPDATE counter SET n = n + 1').run();
      return false;
    },
  };
  const source = await PageSource.open(src, { companion });
  await reassemble(source, join(dir, 'copy.db'));
  assert.deepEqual(calls, ['probe', 'pin wal-read-transaction', 'probe', 'pin wal-read-transaction', 'probe', 'pin wal-read-transaction']);
  const copy = new Database(join(dir, 'copy.db'), { readonly: true });
  assert.equal(copy.prepare('SELECT n FROM counter').pluck().get(), 2, 'both commits made before the last pin are in the copy');
  copy.close();
});

test('with a writer committing all the time, the check still reads the snapshot state (sameState) and passes', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'busy.db');
  createDatabase(src, { journalMode: 'wal', rows: 4000 });
  const writer = startWriter(src, { busyTimeoutMs: 5000 });
  await writer.ready;
  try {
    const vault = `file://${join(dir, 'vault')}`;
    for (let i = 0; i < 3; i++) {
      const r = await snapshot({ source: src, url: vault, sourceCheck: 'full' });
      assert.equal(r.sourceCheck?.ok, true, JSON.stringify(r.sourceCheck));
      assert.equal(r.sourceCheck?.sameState, true);
    }
  } finally {
    const stats = await writer.stop();
    assert.ok(stats.commits > 10, `the writer committed (${stats.commits})`);
  }
});

test("an application's connection: checked from the file; its writes during the copy make sameState false; in memory, no check", async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'wal', rows: 3000 });
  const db = new Database(src);
  t.after(() => db.close());
  const vault = `file://${join(dir, 'vault')}`;
  const quiet = await snapshot({ source: db, url: vault });
  assert.equal(quiet.mode, 'application');
  assert.deepEqual([quiet.sourceCheck?.ok, quiet.sourceCheck?.sameState], [true, true]);
  const update = db.prepare("UPDATE items SET name = name || '!' WHERE id BETWEEN 10 AND 20");
  let calls = 0;
  const written = await snapshot({ source: db, url: vault, onProgress: () => void (++calls === 2 && update.run()) });
  assert.equal(written.sourceCheck?.ok, true);
  assert.equal(written.sourceCheck?.sameState, false, 'the copy holds a write the check did not read');

  const memory = new Database(':memory:');
  t.after(() => memory.close());
  memory.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)');
  const inMemory = await snapshot({ source: memory, url: `file://${join(dir, 'memory-vault')}` });
  assert.equal(inMemory.sourceCheck, null, 'nothing on disk for a second connection to check');
  assert.equal((await manifestOf(`file://${join(dir, 'memory-vault')}`, inMemory.id)).source.path, null);
});

test('an abort while the check runs stops it at once and publishes nothing', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'app.db');
  createDatabase(src, { journalMode: 'wal', rows: 20_000 });
  const controller = new AbortController();
  let aborted = 0;
  const started = Date.now();
  await assert.rejects(
    snapshot({
      source: src,
      url: `file://${join(dir, 'vault')}`,
      sourceCheck: 'full',
      signal: controller.signal,
      onProgress: () => {
        if (aborted++ === 0) controller.abort(new Error('test'));
      },
    }),
    (err: unknown) => (err as Error).name === 'AbortedError',
  );
  assert.ok(Date.now() - started < 5000);
  const storage = openStorage(`file://${join(dir, 'vault')}`);
  assert.deepEqual(await listSnapshotIds(storage), []);
  await storage.close();
});

test('a check that cannot run is recorded as not complete, never as ok', async (t) => {
  const dir = tempDir(t);
  const check = new SourceCheck({ path: join(dir, 'gone.db'), kind: 'quick_check', logger: silent });
  t.after(() => check.close());
  await check.probe();
  assert.equal(await check.pin('wal-read-transaction'), true, 'nothing to begin again for');
  check.copyComplete();
  const record = await check.record();
  assert.equal(record.ok, false);
  assert.equal(record.sameState, false);
  assert.match(record.errors[0]!, /^the check did not complete: open .*gone\.db/);
});
