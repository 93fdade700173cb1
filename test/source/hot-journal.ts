// A hot journal, made the way one happens: a python3 writer (its own SQLite) with a page cache of 10 pages
// runs one big transaction, so that it spills changed pages into the database file after saving their
// originals in the -journal, and is killed with SIGKILL before it commits.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';

/** Runs `insert` (one `?`, given 4,000 random bytes) 2,000 times in one transaction on `db`, then dies. */
export function killWriterMidTransaction(db: string, insert: string): void {
  const script = `import sqlite3, os, sys, signal
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('pragma cache_size=10'); c.execute('begin')
for i in range(2000): c.execute(sys.argv[2], (os.urandom(4000),))
os.kill(os.getpid(), signal.SIGKILL)`;
  const writer = spawnSync('python3', ['-c', script, db, insert], { encoding: 'utf8' });
  assert.equal(writer.signal, 'SIGKILL', `the writer should die mid-transaction: ${writer.stderr}`);
  assert.ok(statSync(`${db}-journal`).size > 512, 'the killed writer left a journal');
}
