// `npm run demo`: snapshots a sample database into a vault on the embedded default store (file://), changes
// it, snapshots it again (incrementally), restores both snapshots and verifies them, printing each step.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listSnapshots, restore, snapshot } from '../src/index.ts';
import { contentDigest, createDatabase, fileDigest } from '../test/helpers/sqlite.ts';

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
const dir = mkdtempSync(join(tmpdir(), 'pagevault-demo-'));
try {
  const source = join(dir, 'app.db');
  const vault = `file://${join(dir, 'vault')}`;
  createDatabase(source, { journalMode: 'wal', rows: 20_000 });
  const app = new Database(source);
  app.pragma('wal_autocheckpoint = 0');
  app.prepare("UPDATE items SET name = 'still in the WAL' WHERE id % 100 = 0").run();
  const before = contentDigest(app);
  console.log(`1. sample database ${source}: ${mib(statSync(source).size)} in WAL mode, recent commits still in its WAL`);

  const first = await snapshot({ source, url: vault });
  console.log(
    `2. snapshot ${first.id} -> ${vault}: ${first.pageCount} pages of ${first.pageSize} bytes read (${mib(first.bytesRead)}), ` +
      `${mib(first.bytesUploaded)} stored after compression, ${first.chunksNew} chunks in ${first.packs.length} pack(s), ${first.durationMs} ms`,
  );

  app.prepare("UPDATE items SET doc = '{\"edited\":true}' WHERE id BETWEEN 5000 AND 5040").run();
  const after = contentDigest(app);
  const second = await snapshot({ source, url: vault });
  console.log(
    `3. changed 41 rows; incremental snapshot ${second.id}: ${second.chunksNew} chunk(s) new, ${second.chunksReused} reused, ` +
      `${mib(second.bytesUploaded)} uploaded (${((100 * second.bytesUploaded) / first.bytesUploaded).toFixed(1)}% of the first)`,
  );
  app.close();

  const list = (await listSnapshots({ url: vault })).snapshots;
  console.log(`4. the vault lists ${list.length} snapshots: ${list.map((s) => s.id).join(', ')}`);

  for (const [label, snap, expected] of [
    ['first', first, before],
    ['latest', second, after],
  ] as const) {
    const path = join(dir, `restored-${label}.db`);
    const r = await restore({ url: vault, path, snapshot: snap.id });
    const same = fileDigest(path) === expected;
    console.log(
      `5. restored the ${label} snapshot to ${path}: ${mib(r.bytesDownloaded ?? 0)} downloaded, every chunk and the whole-database ` +
        `digest verified, PRAGMA ${r.check} ok, ${r.durationMs} ms; every row as it was: ${same}`,
    );
    if (!same) process.exitCode = 1;
  }
  console.log(`done. (the demo's files were in ${dir}, now removed)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
