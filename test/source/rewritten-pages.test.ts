// The staging VFS answers every read with zeros: a page the backup already wrote reads back as zeros. That is
// correct only because SQLite overwrites such a page whole (it re-reads a spilled page before a re-sent copy
// replaces it). One test per way the application's connection rewrites pages the copy has passed, each
// comparing the reassembled copy with the source byte for byte (except the volatile header bytes). Checked
// both ways: these tests fail when the VFS drops re-sent writes, and pass when its reads return 0xAA instead.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { sourceDefaults } from '../../src/config/defaults.ts';
import { PageSource } from '../../src/source/index.ts';
import { createDatabase, differingPages, integrityCheck, reassemble, tempDir } from '../helpers/sqlite.ts';

const pageSize = 4096;
const destinationCachePages = (sourceDefaults.destinationCacheKiB * 1024) / pageSize;

interface Pattern {
  /** Prepares the source before the snapshot starts. */
  setup?: (db: Database.Database) => void;
  /** Writes through the application's connection after batch `i`. */
  write: (db: Database.Database, i: number) => void;
  /** What the result must show for the pattern to have happened. */
  check: (resentPages: number, pageCountBefore: number, pageCountAfter: number) => void;
}

const patterns: Record<string, Pattern> = {
  'rewrites of a few pages already copied (re-sent pages)': {
    write: (db, i) => {
      if (i < 12) db.prepare("UPDATE items SET name = name || '+' WHERE id <= 20").run();
    },
    check: (resent) => assert.ok(resent > 0, 'pages were re-sent'),
  },
  'one rewrite of more copied pages than the destination cache holds (spilled pages re-read)': {
    write: (db, i) => {
      if (i === 8) db.prepare('UPDATE items SET payload = randomblob(length(payload)) WHERE id <= 1500').run();
    },
    check: (resent) =>
      assert.ok(resent > 2 * destinationCachePages, `${resent} re-sent pages, more than the ${destinationCachePages} the cache holds`),
  },
  'growth past the end while rewriting copied pages': {
    write: (db, i) => {
      if (i >= 10) return;
      db.prepare("UPDATE items SET n = n + 1 WHERE id <= 50").run();
      db.prepare("INSERT INTO items(name, doc, n, payload) SELECT 'grown', '{}', 1, randomblob(3000) FROM items LIMIT 40").run();
    },
    check: (resent, before, after) => {
      assert.ok(resent > 0);
      assert.ok(after > before, `the database grew (${before} -> ${after} pages)`);
    },
  },
  'shrinking (auto_vacuum moves pages from the end into copied ones)': {
    setup: (db) => {
      db.pragma('auto_vacuum = FULL');
      db.exec('VACUUM');
    },
    write: (db, i) => {
      if (i === 6) db.prepare('DELETE FROM items WHERE id % 3 = 0').run();
    },
    check: (resent, before, after) => {
      assert.ok(resent > 0);
      assert.ok(after < before, `the database shrank (${before} -> ${after} pages)`);
    },
  },
};

async function snapshotWhileWriting(t: TestContext, journalMode: 'delete' | 'wal', pattern: Pattern): Promise<void> {
  const dir = tempDir(t);
  const src = join(dir, 'src.db');
  const out = join(dir, 'out.db');
  createDatabase(src, { journalMode, rows: 3000, pageSize });
  const db = new Database(src);
  t.after(() => db.open && db.close());
  pattern.setup?.(db);
  const before = db.pragma('page_count', { simple: true }) as number;
  const source = await PageSource.open(db, { stepPages: 16 });
  const r = await reassemble(source, out, (_batch, i) => pattern.write(db, i));
  assert.equal(r.result.mode, 'application');
  assert.equal(r.result.restarts, 0);
  const after = db.pragma('page_count', { simple: true }) as number;
  assert.equal(r.result.pageCount, after);
  pattern.check(r.result.resentPages, before, after);
  // The source file holds every committed page once the WAL is checkpointed into it.
  if (journalMode === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  assert.deepEqual(differingPages(src, out, pageSize), [], 'the copy equals the source byte for byte');
  assert.equal(integrityCheck(out), 'ok');
}

describe('pages the backup already wrote, rewritten by the application', () => {
  for (const journalMode of ['delete', 'wal'] as const) {
    for (const [name, pattern] of Object.entries(patterns)) {
      test(`${journalMode}: ${name}`, (t) => snapshotWhileWriting(t, journalMode, pattern));
    }
  }
});
