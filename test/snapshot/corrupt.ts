// A damaged database, the way they are met in the wild: one page of a table's b-tree, in the middle of it,
// overwritten with garbage by something other than SQLite. integrity_check fails; queries of the other rows work.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';

export interface Corruption {
  /** The page overwritten. */
  page: number;
  /** A row on another page, still readable. */
  readableId: number;
}

/** Overwrites the middle leaf page of table `items` (see createDatabase) with random bytes. */
export function corruptOnePage(path: string): Corruption {
  const db = new Database(path);
  let page: number;
  let pageSize: number;
  try {
    // Into the main file first: the page to overwrite is the one on disk.
    db.pragma('wal_checkpoint(TRUNCATE)');
    pageSize = db.pragma('page_size', { simple: true }) as number;
    const leaves = db.prepare("SELECT pageno FROM dbstat WHERE name = 'items' AND pagetype = 'leaf' ORDER BY pageno").pluck().all() as number[];
    if (leaves.length < 3) throw new Error(`corruptOnePage: table items has ${leaves.length} leaf pages; make more rows`);
    page = leaves[Math.floor(leaves.length / 2)]!;
  } finally {
    db.close();
  }
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, randomBytes(pageSize), 0, pageSize, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
  return { page, readableId: 1 };
}
