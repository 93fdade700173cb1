// A separate writer process for concurrency tests. Each commit inserts row k into `items` and sets the
// counter row to k in one transaction, so any committed state has rows 1..N contiguous and counter = N.
// Usage: node writer.mjs <db> [--busy-timeout ms] [--pause ms]
// Prints "ready" after its first commit; on SIGTERM prints one JSON line {commits, busy, lastId} and exits.
import Database from 'better-sqlite3';

const [path, ...rest] = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
const busyTimeout = flag('--busy-timeout', 0);
const pause = flag('--pause', 0);
const db = new Database(path, { timeout: busyTimeout });
const next = db.prepare('SELECT coalesce(max(id), 0) + 1 FROM items').pluck();
const insert = db.prepare("INSERT INTO items(id, name, doc, n, payload) VALUES (?, 'w', '{}', ?, randomblob(200 + ? % 900))");
const count = db.prepare('UPDATE counter SET n = ? WHERE id = 1');
const commit = db.transaction(() => {
  const id = next.get();
  insert.run(id, id, id);
  count.run(id);
  return id;
});

let commits = 0;
let busy = 0;
let lastId = 0;
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

while (!stopping) {
  try {
    lastId = commit();
    commits++;
    if (commits === 1) process.stdout.write('ready\n');
  } catch (err) {
    if (String(err.code).startsWith('SQLITE_BUSY')) busy++;
    else throw err;
  }
  // Let the SIGTERM handler run between commits.
  await new Promise((r) => (pause > 0 ? setTimeout(r, pause) : setImmediate(r)));
}
db.close();
process.stdout.write(JSON.stringify({ commits, busy, lastId }) + '\n');
