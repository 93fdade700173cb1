// The staging cap (invariant 1): in application mode SQLite re-sends the pages the application's commit changes
// inside that commit, where nothing can drain them. One UPDATE of every row late in the copy must not stage the
// database in memory: past maxStagedBytes the copy falls back to our own connection, and the snapshot is still
// a state the database had at a transaction boundary, byte for byte.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MiB, sourceDefaults } from '../../src/config/defaults.ts';
import { PageSource } from '../../src/source/index.ts';
import { contentDigest, differingPages, fileDigest, integrityCheck, reassemble, tempDir } from '../helpers/sqlite.ts';
import { captureLogger } from './log-capture.ts';

const pageSize = 4096;

/** About `mib` MiB of 1000-byte rows (four to a page), so that an UPDATE of every row rewrites every page. */
function rowsDatabase(db: Database.Database, mib: number): void {
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const insert = db.prepare('INSERT INTO t(v) VALUES (randomblob(1000))');
  db.transaction(() => {
    for (let i = 0; i < mib * 1024; i++) insert.run();
  })();
}

describe('the staging cap in application mode', () => {
  for (const journalMode of ['wal', 'delete'] as const) {
    test(`${journalMode}: one UPDATE of every row at 90% stages at most maxStagedBytes, falls back, and the snapshot is the state after it`, async (t) => {
      const dir = tempDir(t);
      const src = join(dir, 'src.db');
      const ref = join(dir, 'ref.db');
      const out = join(dir, 'out.db');
      const db = new Database(src);
      t.after(() => db.open && db.close());
      db.pragma(`journal_mode = ${journalMode}`);
      rowsDatabase(db, 40);
      const pageCount = db.pragma('page_count', { simple: true }) as number;
      const { logger, lines } = captureLogger();
      const source = await PageSource.open(db, { logger });
      let delivered = 0;
      let updatedAt = -1;
      const r = await reassemble(source, out, (batch, i) => {
        delivered += batch.count;
        if (updatedAt < 0 && delivered >= 0.9 * pageCount) {
          assert.equal(db.prepare('UPDATE t SET v = randomblob(1000)').run().changes, 40 * 1024, "the application's commit succeeded");
          updatedAt = i;
          writeFileSync(ref, db.serialize()); // the database right after that commit
        } else if (updatedAt >= 0 && journalMode === 'wal') {
          // After the fallback our own connection holds a read transaction: later commits are not in the snapshot.
          db.prepare('UPDATE t SET v = zeroblob(1000) WHERE id <= 100').run();
        }
      });
      assert.ok(updatedAt > 0, 'the UPDATE ran during the copy');
      const cap = sourceDefaults.maxStagedBytes;
      assert.ok(r.result.peakStagedBytes <= cap, `peak staged ${r.result.peakStagedBytes} bytes, cap ${cap}`);
      assert.ok(r.result.peakStagedBytes > cap / 2, `sanity: the UPDATE did fill the staging buffer (${r.result.peakStagedBytes})`);
      assert.equal(r.result.mode, journalMode === 'wal' ? 'wal-read-transaction' : 'rollback-stepped');
      assert.equal(r.result.fallbacks.length, 1);
      assert.match(r.result.fallbacks[0]!, /re-sent more than 8388608 bytes of pages \(maxStagedBytes\).*falling back from application/);
      assert.ok(lines.some((l) => l.level === 40 && l.msg === r.result.fallbacks[0]), 'the fallback is logged as a warning');
      assert.equal(r.restartedBatches, 1, 'the batch after the fallback says the copy started over');
      assert.deepEqual(differingPages(ref, out, pageSize), [], 'the snapshot is the database right after the UPDATE, byte for byte');
      assert.equal(integrityCheck(out), 'ok');
      if (journalMode === 'wal') {
        const zeroed = "SELECT count(*) FROM t WHERE v = zeroblob(1000)";
        assert.equal(db.prepare(zeroed).pluck().get(), 100, 'sanity: later commits happened');
        const copy = new Database(out, { readonly: true });
        assert.equal(copy.prepare(zeroed).pluck().get(), 0, 'and are not in the snapshot');
        copy.close();
      }
    });
  }

  test('the cap is an option: a smaller one falls back on a smaller rewrite', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    const db = new Database(src);
    t.after(() => db.open && db.close());
    db.pragma('journal_mode = wal');
    rowsDatabase(db, 4);
    const maxStagedBytes = 2 * MiB;
    const source = await PageSource.open(db, { stepPages: 32, maxStagedBytes });
    const r = await reassemble(source, join(dir, 'out.db'), (_batch, i) => {
      // 3 MiB of pages already copied: under the default cap, over this one.
      if (i === 25) db.prepare('UPDATE t SET v = randomblob(1000) WHERE id <= 3072').run();
    });
    assert.ok(r.result.peakStagedBytes <= maxStagedBytes, `peak ${r.result.peakStagedBytes}`);
    assert.equal(r.result.fallbacks.length, 1);
    assert.equal(fileDigest(join(dir, 'out.db')), contentDigest(db));
  });

  test('a temporary database, which has no file to fall back to, copies again from page 1 (a restart)', async () => {
    // '' is in memory until its cache spills to an anonymous file; from then on its commits re-send pages too.
    const db = new Database('');
    db.pragma('cache_size = -1000');
    rowsDatabase(db, 4);
    const { logger, lines } = captureLogger();
    const maxStagedBytes = 2 * MiB;
    const source = await PageSource.open(db, { stepPages: 32, maxStagedBytes, maxRestarts: 1, logger });
    const pages = new Map<number, Buffer>();
    let batches = 0;
    let restartedBatches = 0;
    for await (const batch of source.pages()) {
      if (batch.restarted) restartedBatches++;
      for (let i = 0; i < batch.count; i++) pages.set(batch.pageNumbers[i]!, Buffer.from(batch.data.subarray(i * pageSize, (i + 1) * pageSize)));
      if (++batches === 20) db.prepare('UPDATE t SET v = randomblob(1000) WHERE id <= 3072').run();
    }
    const r = source.result;
    assert.equal(r.mode, 'application');
    assert.equal(r.restarts, 1);
    assert.equal(restartedBatches, 1);
    assert.equal(r.peakStagedBytes, maxStagedBytes, 'the staging buffer filled up to the cap, not past it');
    assert.ok(lines.some((l) => l.level === 40 && /maxStagedBytes.*copying again from page 1/.test(l.msg)));
    const image = Buffer.concat(Array.from({ length: r.pageCount }, (_, i) => pages.get(i + 1)!));
    const copy = new Database(image);
    assert.equal(contentDigest(copy), contentDigest(db), 'the snapshot is the final state');
    copy.close();
    db.close();
  });

  test('a cap that cannot hold one step and the destination cache is refused with BAD_OPTION', async (t) => {
    const db = new Database(':memory:');
    t.after(() => db.close());
    rowsDatabase(db, 1);
    await assert.rejects(PageSource.open(db, { maxStagedBytes: 1.5 }), {
      name: 'UsageError',
      code: 'BAD_OPTION',
      message: 'maxStagedBytes must be a positive integer, got 1.5',
    });
    await assert.rejects(PageSource.open(db, { stepPages: 256, maxStagedBytes: MiB }), {
      name: 'UsageError',
      code: 'BAD_OPTION',
      message: `maxStagedBytes must hold one step and the destination cache, at least ${(256 + 64) * pageSize} for steps of 256 pages of 4096 bytes, got ${MiB}`,
    });
  });
});
