// Real SQLite databases for tests: creating them, reassembling a page source's output into a file, and
// comparing files page by page.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { PageSource, type PageSourceResult, type PageBatch } from '../../src/source/index.ts';

/** A temp dir owned by one test, removed after it. */
export function tempDir(t: TestContext, prefix = 'pagevault-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface FixtureOptions {
  pageSize?: number;
  journalMode?: 'wal' | 'delete';
  /** Rows of mixed content (text, JSON, integers, blobs) with two indexes. */
  rows?: number;
}

/** Creates a realistic small database: a table with text, JSON, integers and blobs, and two indexes. */
export function createDatabase(path: string, options: FixtureOptions = {}): void {
  const db = new Database(path);
  try {
    if (options.pageSize) db.pragma(`page_size = ${options.pageSize}`);
    db.pragma(`journal_mode = ${options.journalMode ?? 'delete'}`);
    db.exec(`CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, doc TEXT, n INTEGER, payload BLOB);
             CREATE INDEX items_name ON items(name);
             CREATE INDEX items_n ON items(n);
             CREATE TABLE counter(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
             INSERT INTO counter VALUES (1, 0);`);
    const insert = db.prepare('INSERT INTO items(name, doc, n, payload) VALUES (?, ?, ?, randomblob(?))');
    const rows = options.rows ?? 500;
    db.transaction(() => {
      for (let i = 0; i < rows; i++) {
        insert.run(`item-${i}-${'x'.repeat(i % 37)}`, JSON.stringify({ i, tags: ['a', 'b', String(i % 7)] }), i * 7919, 50 + ((i * 131) % 3000));
      }
    })();
  } finally {
    db.close();
  }
}

/** A database with content of about `bytes` (random blobs, so pages do not compress or repeat). */
export function createLargeDatabase(path: string, bytes: number, pageSize = 4096): void {
  const db = new Database(path);
  try {
    db.pragma(`page_size = ${pageSize}`);
    db.pragma('journal_mode = off');
    db.pragma('synchronous = off');
    db.exec('CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB)');
    const rowBytes = 1 << 20;
    const rows = Math.ceil(bytes / rowBytes);
    const insert = db.prepare('INSERT INTO blobs(data) VALUES (randomblob(?))');
    db.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(rowBytes);
    })();
  } finally {
    db.close();
  }
}

export interface Reassembled {
  result: PageSourceResult;
  batches: number;
  pageNumbers: Set<number>;
  restartedBatches: number;
  resentFlags: number;
}

/**
 * Writes every yielded page at its offset in `file` (last copy wins), then truncates to the final page
 * count: what a restore of this snapshot produces. `between` runs after each batch (to write to the source).
 */
export async function reassemble(
  source: PageSource,
  file: string,
  between?: (batch: PageBatch, index: number) => void | Promise<void>,
): Promise<Reassembled> {
  const fd = openSync(file, 'w');
  const pageNumbers = new Set<number>();
  let batches = 0;
  let restartedBatches = 0;
  let resentFlags = 0;
  try {
    const ps = source.facts.pageSize;
    for await (const batch of source.pages()) {
      for (let i = 0; i < batch.count; i++) {
        const pgno = batch.pageNumbers[i]!;
        pageNumbers.add(pgno);
        writeSync(fd, batch.data, i * ps, ps, (pgno - 1) * ps);
        resentFlags += batch.resent[i]!;
      }
      if (batch.restarted) restartedBatches++;
      await between?.(batch, batches);
      batches++;
    }
    ftruncateSync(fd, source.result.pageCount * ps);
  } finally {
    closeSync(fd);
  }
  return { result: source.result, batches, pageNumbers, restartedBatches, resentFlags };
}

/** Header bytes a backup legitimately changes: change counter, schema cookie, version-valid-for. */
const VOLATILE_HEADER_BYTES = [
  [24, 28],
  [40, 44],
  [92, 96],
] as const;

/**
 * Compares two database files page by page, ignoring the volatile header bytes of page 1. Returns the
 * 1-based numbers of pages that differ (a size difference counts the missing pages as different).
 */
export function differingPages(a: string, b: string, pageSize: number): number[] {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const block = Math.max(pageSize, 4 << 20);
  const ba = Buffer.alloc(block);
  const bb = Buffer.alloc(block);
  const differ: number[] = [];
  try {
    for (let offset = 0; ; offset += block) {
      const na = readSync(fa, ba, 0, block, offset);
      const nb = readSync(fb, bb, 0, block, offset);
      if (na === 0 && nb === 0) break;
      if (offset === 0) {
        for (const [from, to] of VOLATILE_HEADER_BYTES) {
          ba.fill(0, from, to);
          bb.fill(0, from, to);
        }
      }
      const n = Math.max(na, nb);
      for (let p = 0; p < n; p += pageSize) {
        const end = p + pageSize;
        if (end > na || end > nb || ba.compare(bb, p, end, p, end) !== 0) differ.push((offset + p) / pageSize + 1);
      }
      if (na < block && nb < block) break;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
  return differ;
}

export function integrityCheck(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

/** A digest of every row of every table, in primary-key order: equal digests, equal logical content. */
export function contentDigest(db: Database.Database): string {
  const hash = createHash('sha256');
  const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all() as string[];
  for (const table of tables) {
    hash.update(`table ${table}\n`);
    for (const row of db.prepare(`SELECT * FROM "${table}" ORDER BY rowid`).raw().iterate()) {
      hash.update(JSON.stringify(row, (_k, v) => (Buffer.isBuffer(v) ? v.toString('base64') : typeof v === 'bigint' ? String(v) : v)));
    }
  }
  return hash.digest('hex');
}

export function fileDigest(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return contentDigest(db);
  } finally {
    db.close();
  }
}
