// The page source on real databases: reassembling its pages must give the source back, under every
// consistency mode, with real concurrent writer processes.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../../src/errors.ts';
import { PageSource } from '../../src/source/index.ts';
import { startWriter } from '../helpers/processes.ts';
import {
  contentDigest,
  createDatabase,
  differingPages,
  fileDigest,
  integrityCheck,
  reassemble,
  tempDir,
} from '../helpers/sqlite.ts';
import { captureLogger } from './log-capture.ts';

/** A committed state of the writer's workload: rows 1..N contiguous and the counter equal to N. */
function assertCommittedState(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    const { count, maxId } = db.prepare('SELECT count(*) AS count, max(id) AS maxId FROM items').get() as { count: number; maxId: number };
    const counter = db.prepare('SELECT n FROM counter').pluck().get() as number;
    assert.equal(count, maxId, 'rows are contiguous');
    if (counter !== 0) assert.equal(counter, maxId, 'the counter equals the last row');
    return maxId;
  } finally {
    db.close();
  }
}

describe('reassembled pages equal the source', () => {
  for (const pageSize of [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]) {
    for (const journalMode of ['delete', 'wal'] as const) {
      test(`page size ${pageSize}, ${journalMode}`, async (t) => {
        const dir = tempDir(t);
        const src = join(dir, 'src.db');
        const out = join(dir, 'out.db');
        createDatabase(src, { pageSize, journalMode, rows: 1500 });
        if (journalMode === 'wal') {
          // Leave committed content in the WAL too: the snapshot must see it.
          const db = new Database(src);
          db.pragma('wal_autocheckpoint = 0');
          db.prepare("UPDATE items SET name = 'in-wal' WHERE id % 10 = 0").run();
          db.close();
        }
        const source = await PageSource.open(src);
        assert.equal(source.facts.pageSize, pageSize);
        assert.equal(source.facts.journalMode, journalMode);
        const r = await reassemble(source, out);
        assert.equal(r.result.mode, journalMode === 'wal' ? 'wal-read-transaction' : 'rollback-stepped');
        assert.equal(r.result.restarts, 0);
        assert.equal(integrityCheck(out), 'ok');
        assert.equal(fileDigest(out), fileDigest(src));
        if (journalMode === 'delete') {
          // Byte for byte, but for the header counters a backup rewrites.
          assert.deepEqual(differingPages(src, out, pageSize), []);
        }
        const db = new Database(src, { readonly: true });
        assert.equal(r.result.pageCount, db.pragma('page_count', { simple: true }));
        db.close();
        assert.equal(r.pageNumbers.size, r.result.pageCount, 'every page delivered once');
      });
    }
  }

  test('an empty (0-byte) database gives zero pages', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'empty.db');
    writeFileSync(src, '');
    const source = await PageSource.open(src);
    const r = await reassemble(source, join(dir, 'out.db'));
    assert.equal(r.result.pageCount, 0);
    assert.deepEqual(readdirSync(dir).sort(), ['empty.db', 'out.db']);
  });

  test('a one-page database', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'one.db');
    const db = new Database(src);
    db.pragma('user_version = 7');
    db.close();
    const source = await PageSource.open(src);
    const r = await reassemble(source, join(dir, 'out.db'));
    assert.equal(r.result.pageCount, 1);
    assert.deepEqual([...r.pageNumbers], [1]);
    assert.deepEqual(differingPages(src, join(dir, 'out.db'), 4096), []);
    const copy = new Database(join(dir, 'out.db'), { readonly: true });
    assert.equal(copy.pragma('user_version', { simple: true }), 7);
    copy.close();
  });
});

describe('own connection with a concurrent writer process', () => {
  test('WAL: one read transaction, zero restarts, the writer never sees SQLITE_BUSY, a committed state', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'wal', rows: 6000 });
    // busy timeout 0: any SQLITE_BUSY would fail a commit and be counted.
    const writer = startWriter(src, { busyTimeoutMs: 0 });
    t.after(() => writer.stop().catch(() => undefined));
    await writer.ready;
    const source = await PageSource.open(src);
    const r = await reassemble(source, join(dir, 'out.db'), () => sleep(5));
    await sleep(50);
    const stats = await writer.stop();
    assert.equal(r.result.restarts, 0);
    assert.equal(r.result.resentPages, 0);
    assert.equal(stats.busy, 0, 'the writer was never blocked');
    assert.equal(integrityCheck(join(dir, 'out.db')), 'ok');
    const snapshotLast = assertCommittedState(join(dir, 'out.db'));
    assert.ok(snapshotLast > 6000, 'the snapshot includes writer commits made before it began');
    assert.ok(stats.lastId > snapshotLast, `the writer kept committing during the snapshot (${stats.lastId} > ${snapshotLast})`);
  });

  test('rollback journal: completes and is a committed state', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'delete', rows: 3000 });
    const writer = startWriter(src, { busyTimeoutMs: 10_000, pauseMs: 2 });
    t.after(() => writer.stop().catch(() => undefined));
    await writer.ready;
    const { logger, lines } = captureLogger();
    const source = await PageSource.open(src, { logger });
    const r = await reassemble(source, join(dir, 'out.db'), () => sleep(2));
    await sleep(20);
    const stats = await writer.stop();
    assert.equal(integrityCheck(join(dir, 'out.db')), 'ok');
    const snapshotLast = assertCommittedState(join(dir, 'out.db'));
    assert.ok(snapshotLast > 3000, 'the snapshot includes writer commits made before it began');
    assert.ok(stats.lastId > snapshotLast, `the writer committed while the snapshot ran (${stats.lastId} > ${snapshotLast})`);
    assert.ok(['rollback-stepped', 'rollback-locked'].includes(r.result.mode));
    if (r.result.mode === 'rollback-locked') {
      assert.ok(lines.some((l) => l.level === 40 && l.msg.includes('falling back from rollback-stepped to rollback-locked')));
    }
  });

  test('rollback journal: restarts are capped, then one locked pass, and the log says so', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'delete', rows: 3000 });
    const other = new Database(src, { timeout: 0 });
    t.after(() => other.close());
    const bump = other.prepare('UPDATE counter SET n = n + 1');
    const { logger, lines } = captureLogger();
    const source = await PageSource.open(src, { logger, maxRestarts: 2 });
    // Commit after every batch until the first refusal (the locked pass has begun), then stop writing.
    let refused = 0;
    const r = await reassemble(source, join(dir, 'out.db'), () => {
      if (refused > 0) return;
      try {
        bump.run();
      } catch (err) {
        assert.equal((err as { code: string }).code, 'SQLITE_BUSY');
        if (other.inTransaction) other.exec('ROLLBACK');
        refused++;
      }
    });
    assert.equal(r.result.mode, 'rollback-locked');
    assert.equal(r.result.restarts, 3);
    assert.equal(r.result.fallbacks.length, 1);
    assert.ok(r.restartedBatches >= 3);
    assert.ok(refused > 0, 'writers wait while the locked pass holds its read lock');
    assert.ok(lines.some((l) => l.level === 40 && l.msg.includes('falling back from rollback-stepped to rollback-locked')));
    assert.equal(integrityCheck(join(dir, 'out.db')), 'ok');
    assert.equal(fileDigest(join(dir, 'out.db')), contentDigest(other));
  });
});

describe("the application's connection", () => {
  for (const journalMode of ['delete', 'wal'] as const) {
    test(`${journalMode}: writes between steps are re-sent and the result equals the final state`, async (t) => {
      const dir = tempDir(t);
      const src = join(dir, 'src.db');
      createDatabase(src, { journalMode, rows: 3000 });
      const db = new Database(src);
      t.after(() => db.open && db.close());
      const update = db.prepare("UPDATE items SET name = name || '+' WHERE id <= 20");
      const insert = db.prepare("INSERT INTO items(name, doc, n, payload) VALUES ('app', '{}', 1, randomblob(500))");
      const source = await PageSource.open(db, { stepPages: 16 });
      // Write during the first batches only: the snapshot is the state when the copy completes, and the
      // last batches are drained after that.
      const r = await reassemble(source, join(dir, 'out.db'), (_batch, i) => {
        if (i >= 12) return;
        update.run();
        insert.run();
      });
      assert.ok(r.batches > 20);
      assert.equal(r.result.mode, 'application');
      assert.equal(r.result.restarts, 0);
      assert.ok(r.result.resentPages > 0, 'pages written again by the application were re-sent');
      assert.ok(r.resentFlags > 0);
      assert.equal(integrityCheck(join(dir, 'out.db')), 'ok');
      assert.equal(fileDigest(join(dir, 'out.db')), contentDigest(db), 'the snapshot is the final state');
      assert.ok(db.open, "the application's connection stays open");
      assert.equal(db.close, Database.prototype.close, 'close() is unhooked');
    });
  }

  test('WAL: a ROLLBACK between steps restarts; capped, it falls back to our own connection', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'wal', rows: 3000 });
    const db = new Database(src);
    t.after(() => db.open && db.close());
    const expected = contentDigest(db);
    const { logger, lines } = captureLogger();
    const source = await PageSource.open(db, { stepPages: 64, maxRestarts: 2, logger });
    let batches = 0;
    const r = await reassemble(source, join(dir, 'out.db'), () => {
      batches++;
      db.exec("BEGIN; UPDATE items SET name = 'rolled back' WHERE id < 100; ROLLBACK");
    });
    assert.equal(r.result.restarts, 3);
    assert.deepEqual(r.result.fallbacks.length, 1);
    assert.equal(r.result.mode, 'wal-read-transaction');
    assert.ok(lines.some((l) => l.level === 40 && l.msg.includes('falling back from application to wal-read-transaction')));
    assert.ok(batches < 200, `no endless restart loop (${batches} batches)`);
    assert.equal(integrityCheck(join(dir, 'out.db')), 'ok');
    assert.equal(fileDigest(join(dir, 'out.db')), expected);
  });

  test('a write transaction left open between steps is waited for (SQLITE_BUSY), then the copy goes on', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'wal', rows: 3000 });
    const db = new Database(src);
    t.after(() => db.open && db.close());
    const source = await PageSource.open(db, { stepPages: 64 });
    const r = await reassemble(source, join(dir, 'out.db'), (_batch, i) => {
      if (i === 2) {
        db.exec("BEGIN IMMEDIATE; INSERT INTO items(name) VALUES ('held')");
        setTimeout(() => db.exec('COMMIT'), 150);
      }
    });
    assert.ok(r.result.busyWaits > 0, 'steps found the connection in a write transaction');
    assert.equal(r.result.mode, 'application');
    assert.equal(fileDigest(join(dir, 'out.db')), contentDigest(db));
  });

  test('a write transaction held past busyTimeoutMs falls back to our own connection', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'wal', rows: 3000 });
    const db = new Database(src);
    t.after(() => db.open && db.close());
    const before = contentDigest(db);
    const source = await PageSource.open(db, { stepPages: 64, busyTimeoutMs: 40 });
    let commit: NodeJS.Timeout | undefined;
    const r = await reassemble(source, join(dir, 'out.db'), (_batch, i) => {
      if (i === 1) {
        db.exec("BEGIN IMMEDIATE; INSERT INTO items(name) VALUES ('held')");
        commit = setTimeout(() => db.exec('COMMIT'), 2000);
      }
    });
    clearTimeout(commit);
    db.exec('COMMIT');
    assert.equal(r.result.mode, 'wal-read-transaction');
    assert.equal(r.result.fallbacks.length, 1);
    assert.match(r.result.fallbacks[0]!, /stayed busy/);
    assert.equal(fileDigest(join(dir, 'out.db')), before, 'the uncommitted write is not in the snapshot');
  });

  test('closing the application connection mid-snapshot detaches the backup first: SOURCE_CLOSED', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'wal', rows: 3000 });
    const db = new Database(src);
    const source = await PageSource.open(db, { stepPages: 64 });
    await assert.rejects(
      reassemble(source, join(dir, 'out.db'), (_b, i) => {
        if (i === 1) db.close();
      }),
      { name: 'SourceError', code: 'SOURCE_CLOSED' },
    );
    assert.equal(db.open, false);
    // The file is free: nothing holds it (an EXCLUSIVE lock is granted at once).
    const other = new Database(src, { timeout: 0 });
    other.exec('BEGIN EXCLUSIVE; COMMIT');
    other.close();
  });

  test('an in-memory database that keeps restarting fails with TOO_MANY_RESTARTS, not a loop', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t(x); ');
    const insert = db.prepare('INSERT INTO t VALUES (randomblob(3000))');
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run();
    })();
    const source = await PageSource.open(db, { stepPages: 16, maxRestarts: 2 });
    assert.equal(source.facts.path, undefined);
    const other = db; // the same connection: VACUUM rewrites every page and restarts the backup
    let batches = 0;
    await assert.rejects(
      (async () => {
        for await (const _batch of source.pages()) {
          if (++batches % 2 === 0) other.exec('VACUUM');
        }
      })(),
      { name: 'SourceError', code: 'TOO_MANY_RESTARTS' },
    );
    assert.ok(db.open);
    db.close();
  });
});

describe('cancellation and bad input', () => {
  test('an AbortSignal stops the snapshot with ABORTED and releases the source', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'wal', rows: 3000 });
    const controller = new AbortController();
    const source = await PageSource.open(src, { signal: controller.signal, stepPages: 64 });
    await assert.rejects(
      reassemble(source, join(dir, 'out.db'), (_b, i) => {
        if (i === 2) controller.abort(new Error('operator pressed ^C'));
      }),
      { name: 'AbortedError', code: 'ABORTED' },
    );
    // Our read transaction is gone: a checkpoint can now reset the whole WAL.
    const db = new Database(src);
    const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    assert.equal(row!.busy, 0);
    db.close();
  });

  test('breaking out of the iteration releases the application connection', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'delete', rows: 3000 });
    const db = new Database(src);
    const source = await PageSource.open(db, { stepPages: 64 });
    for await (const batch of source.pages()) {
      assert.ok(batch.count > 0);
      break;
    }
    assert.equal(db.close, Database.prototype.close);
    db.close();
    const other = new Database(src, { timeout: 0 });
    other.exec('BEGIN EXCLUSIVE; COMMIT');
    other.close();
  });

  test('bad options: UsageError BAD_OPTION with an exact message, before anything is opened', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'wal', rows: 100 });
    const cases: [Parameters<typeof PageSource.open>[1], string][] = [
      [{ stepPages: 0 }, 'stepPages must be a positive integer, got 0'],
      [{ stepPages: 1.5 }, 'stepPages must be a positive integer, got 1.5'],
      [{ maxRestarts: -1 }, 'maxRestarts must be a non-negative integer, got -1'],
      [{ busyTimeoutMs: Number.NaN }, 'busyTimeoutMs must be >= 0, got NaN'],
    ];
    const db = new Database(src);
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    const before = readdirSync(dir).sort();
    for (const [options, message] of cases) {
      for (const source of [src, db]) {
        await assert.rejects(PageSource.open(source, options), (err: unknown) => {
          assert.ok(err instanceof UsageError, `a UsageError, got ${(err as Error).name}: ${(err as Error).message}`);
          assert.equal(err.code, 'BAD_OPTION');
          assert.equal(err.message, message);
          return true;
        });
      }
    }
    // Nothing was registered on the application's connection, nor opened beside the file.
    assert.equal(db.close, Database.prototype.close);
    assert.deepEqual(readdirSync(dir).sort(), before);
    db.close();
    await assert.rejects(PageSource.open(42 as unknown as string), (err: unknown) => {
      return err instanceof UsageError && err.code === 'BAD_OPTION' && err.message === 'source must be a database path or an open better-sqlite3 Database, got number';
    });
  });

  const badInputs: [string, (dir: string) => string, string][] = [
    ['a missing file', (dir) => join(dir, 'missing.db'), 'SOURCE_MISSING'],
    ['a path through a missing directory', (dir) => join(dir, 'nope', 'x.db'), 'SOURCE_MISSING'],
    ['a text file', (dir) => (writeFileSync(join(dir, 'notes.txt'), 'not a database\n'.repeat(20)), join(dir, 'notes.txt')), 'SOURCE_NOT_SQLITE'],
    ['a file shorter than a header', (dir) => (writeFileSync(join(dir, 'short.db'), 'SQLite format 3\0'), join(dir, 'short.db')), 'SOURCE_NOT_SQLITE'],
    ['a directory', (dir) => (mkdirSync(join(dir, 'adir')), join(dir, 'adir')), 'SOURCE_UNREADABLE'],
    [
      'a SQLite header over garbage',
      (dir) => {
        const good = join(dir, 'good.db');
        createDatabase(good, { rows: 10 });
        const bad = join(dir, 'garbage.db');
        copyFileSync(good, bad);
        const fd = openSync(bad, 'r+');
        writeSync(fd, randomFillSync(Buffer.alloc(4096 - 100)), 0, 4096 - 100, 100);
        closeSync(fd);
        return bad;
      },
      'SOURCE_CORRUPT',
    ],
  ];
  for (const [what, make, code] of badInputs) {
    test(`${what}: ${code}, and nothing written beside it`, async (t) => {
      const dir = tempDir(t);
      const path = make(dir);
      const before = readdirSync(dir).sort();
      await assert.rejects(PageSource.open(path), (err: Error & { code?: string }) => {
        assert.equal(err.name, 'SourceError');
        assert.equal(err.code, code, err.message);
        assert.ok(err.message.includes(path), `the message names the file: ${err.message}`);
        return true;
      });
      assert.deepEqual(readdirSync(dir).sort(), before);
    });
  }

  test('a page size change mid-snapshot fails with PAGE_SIZE_CHANGED', async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src.db');
    createDatabase(src, { journalMode: 'delete', rows: 3000, pageSize: 4096 });
    const source = await PageSource.open(src, { stepPages: 64 });
    await assert.rejects(
      reassemble(source, join(dir, 'out.db'), (_b, i) => {
        if (i === 1) {
          const db = new Database(src);
          db.exec('PRAGMA page_size = 8192; VACUUM');
          db.close();
        }
      }),
      { name: 'SourceError', code: 'PAGE_SIZE_CHANGED' },
    );
  });
});
