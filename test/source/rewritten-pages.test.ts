// The staging VFS keeps nothing to answer reads with: a page the backup already wrote reads back as zeros.
// That is correct only if SQLite never uses the answer: it re-reads a spilled page just before a re-sent copy
// replaces it whole. One test per way the application's connection rewrites pages the copy has passed, each
// run twice, with those reads answered by zeros and by 0xAA (setRereadFill), and each comparing the reassembled
// copy with the source byte for byte (except the volatile header bytes): a copy that equals its source with
// 0xAA in every re-read page never used what a re-read returned. The tests fail when the VFS drops re-sent
// writes. A page size change mid-copy is not followed but refused (page-source.test.ts, PAGE_SIZE_CHANGED).
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { sourceDefaults } from '../../src/config/defaults.ts';
import { native, type StepOut } from '../../src/native/index.ts';
import { PageSource } from '../../src/source/index.ts';
import { createDatabase, differingPages, integrityCheck, reassemble, tempDir } from '../helpers/sqlite.ts';

const pageSize = 4096;
const stepPages = 16;
const destinationCachePages = (sourceDefaults.destinationCacheKiB * 1024) / pageSize;

/** What a pattern's check is given. */
interface Outcome {
  resentPages: number;
  /** The destination's reads of pages it had written (answered with the fill). */
  rereads: number;
  pageCountBefore: number;
  pageCountAfter: number;
}

interface Pattern {
  /** Journal modes the pattern exists in (default both). */
  journalModes?: ('delete' | 'wal')[];
  /** Prepares the source before the snapshot starts. */
  setup?: (db: Database.Database) => void;
  /** Writes through the application's connection after batch `i` (each batch is one step of 16 pages). */
  write: (db: Database.Database, i: number) => void;
  /** What the result must show for the pattern to have happened. */
  check: (o: Outcome) => void;
}

/** auto_vacuum=FULL: a commit that frees pages moves pages from the end into them and shrinks the file. */
function autoVacuum(db: Database.Database): void {
  db.pragma('auto_vacuum = FULL');
  db.exec('VACUUM');
}

const patterns: Record<string, Pattern> = {
  'rewrites of a few pages already copied (re-sent pages)': {
    write: (db, i) => {
      if (i < 12) db.prepare("UPDATE items SET name = name || '+' WHERE id <= 20").run();
    },
    check: (o) => assert.ok(o.resentPages > 0, 'pages were re-sent'),
  },
  'one rewrite of more copied pages than the destination cache holds (spilled pages re-read)': {
    write: (db, i) => {
      if (i === 8) db.prepare('UPDATE items SET payload = randomblob(length(payload)) WHERE id <= 1500').run();
    },
    check: (o) => {
      assert.ok(o.resentPages > 2 * destinationCachePages, `${o.resentPages} re-sent pages, more than the ${destinationCachePages} the cache holds`);
      assert.ok(o.rereads > 0, 'the destination re-read spilled pages before overwriting them');
    },
  },
  'growth past the end while rewriting copied pages': {
    write: (db, i) => {
      if (i >= 10) return;
      db.prepare("UPDATE items SET n = n + 1 WHERE id <= 50").run();
      db.prepare("INSERT INTO items(name, doc, n, payload) SELECT 'grown', '{}', 1, randomblob(3000) FROM items LIMIT 40").run();
    },
    check: (o) => {
      assert.ok(o.resentPages > 0);
      assert.ok(o.pageCountAfter > o.pageCountBefore, `the database grew (${o.pageCountBefore} -> ${o.pageCountAfter} pages)`);
    },
  },
  'shrinking (auto_vacuum moves pages from the end into copied ones)': {
    setup: autoVacuum,
    write: (db, i) => {
      if (i === 6) db.prepare('DELETE FROM items WHERE id % 3 = 0').run();
    },
    check: (o) => {
      assert.ok(o.resentPages > 0);
      assert.ok(o.pageCountAfter < o.pageCountBefore, `the database shrank (${o.pageCountBefore} -> ${o.pageCountAfter} pages)`);
    },
  },
  'shrinking below pages already copied (the destination truncates them at its final commit)': {
    setup: autoVacuum,
    write: (db, i) => {
      if (i === 60) db.prepare('DELETE FROM items WHERE id % 3 != 0').run();
    },
    check: (o) => {
      const copied = 61 * stepPages;
      assert.ok(o.pageCountAfter < copied, `the database shrank to ${o.pageCountAfter} pages, below the ${copied} copied`);
      assert.ok(o.rereads > 0, 'pages moved into copied ones were re-read before being overwritten');
    },
  },
  'a rolled-back transaction that spilled into the database file (its pages re-sent, then their originals)': {
    // In WAL mode a rollback restarts the backup instead (page-source.test.ts).
    journalModes: ['delete'],
    setup: (db) => db.pragma('cache_size = 20'),
    write: (db, i) => {
      if (i !== 8) return;
      db.exec('BEGIN');
      db.prepare('UPDATE items SET payload = randomblob(length(payload)) WHERE id <= 1500').run();
      db.exec('ROLLBACK');
    },
    check: (o) => {
      assert.ok(o.resentPages > 2 * destinationCachePages, `${o.resentPages} re-sent pages`);
      assert.ok(o.rereads > 0, 'spilled pages were re-read before the originals replaced them');
    },
  },
};

/**
 * Runs fn with every backup's re-reads answered by `fill`, counting them: the native binding's start and step
 * are wrapped for the duration.
 */
async function withRereadFill<T>(fill: number, fn: () => Promise<T>): Promise<{ value: T; rereads: number }> {
  const binding = native();
  const { start, step } = binding;
  let rereads = 0;
  binding.start = (...args) => {
    const handle = start(...args);
    binding.setRereadFill(handle, fill);
    return handle;
  };
  binding.step = (handle, pages, out) => {
    const rc = step(handle, pages, out);
    rereads = (out as unknown as StepOut)[8];
    return rc;
  };
  try {
    return { value: await fn(), rereads };
  } finally {
    binding.start = start;
    binding.step = step;
  }
}

async function snapshotWhileWriting(t: TestContext, journalMode: 'delete' | 'wal', pattern: Pattern, fill: number): Promise<void> {
  const dir = tempDir(t);
  const src = join(dir, 'src.db');
  const out = join(dir, 'out.db');
  createDatabase(src, { journalMode, rows: 3000, pageSize });
  const db = new Database(src);
  t.after(() => db.open && db.close());
  pattern.setup?.(db);
  const before = db.pragma('page_count', { simple: true }) as number;
  const source = await PageSource.open(db, { stepPages });
  const { value: r, rereads } = await withRereadFill(fill, () => reassemble(source, out, (_batch, i) => pattern.write(db, i)));
  assert.equal(r.result.mode, 'application');
  assert.equal(r.result.restarts, 0);
  const after = db.pragma('page_count', { simple: true }) as number;
  assert.equal(r.result.pageCount, after);
  pattern.check({ resentPages: r.result.resentPages, rereads, pageCountBefore: before, pageCountAfter: after });
  // The source file holds every committed page once the WAL is checkpointed into it.
  if (journalMode === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  assert.deepEqual(differingPages(src, out, pageSize), [], 'the copy equals the source byte for byte');
  assert.equal(integrityCheck(out), 'ok');
}

describe('pages the backup already wrote, rewritten by the application', () => {
  for (const journalMode of ['delete', 'wal'] as const) {
    for (const [name, pattern] of Object.entries(patterns)) {
      if (pattern.journalModes && !pattern.journalModes.includes(journalMode)) continue;
      for (const fill of [0x00, 0xaa]) {
        test(`${journalMode}: ${name}; re-reads answer 0x${fill.toString(16).padStart(2, '0')}`, (t) => snapshotWhileWriting(t, journalMode, pattern, fill));
      }
    }
  }
});
