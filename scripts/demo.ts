// `npm run demo`: makes a sample database, streams it through pagevault's engine (SQLite's backup API into
// the staging VFS, no local copy), reassembles the pages into a new file and verifies it, printing each step.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PageSource } from '../src/source/index.ts';
import { createDatabase, differingPages, fileDigest, integrityCheck, reassemble } from '../test/helpers/sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'pagevault-demo-'));
try {
  const source = join(dir, 'sample.db');
  const copy = join(dir, 'copy.db');
  createDatabase(source, { journalMode: 'wal', rows: 20_000 });
  const writer = new Database(source);
  writer.pragma('wal_autocheckpoint = 0');
  writer.prepare("UPDATE items SET name = 'still in the WAL' WHERE id % 100 = 0").run();
  console.log(`1. made ${source}: ${(statSync(source).size / 1048576).toFixed(1)} MiB, WAL mode, recent commits still in the WAL`);

  const pages = await PageSource.open(source);
  const started = performance.now();
  const r = await reassemble(pages, copy);
  const ms = performance.now() - started;
  const f = pages.facts;
  console.log(
    `2. streamed it through the engine (mode ${r.result.mode}): ${r.result.pageCount} pages of ${f.pageSize} bytes in ` +
      `${r.batches} batches, ${ms.toFixed(0)} ms, ${r.result.restarts} restarts; SQLite ${f.sqliteVersion}`,
  );
  console.log(`3. wrote the pages at their offsets into ${copy}`);
  const ok = integrityCheck(copy);
  const same = fileDigest(copy) === fileDigest(source);
  writer.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  writer.close();
  const differing = differingPages(source, copy, f.pageSize);
  console.log(`4. verified: integrity_check ${ok}; every row equal: ${same}; pages differing after a checkpoint: ${differing.length}`);
  if (ok !== 'ok' || !same || differing.length > 0) process.exitCode = 1;
  console.log('(snapshot to object storage and restore arrive with the vault format; see README.md)');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
