// `npm run bench -- engine`: the page source's throughput (first step to last page delivered into reusable
// buffers, nothing else) against, in the same run, better-sqlite3's db.backup(file) to a temp file and a
// plain read of the file; and the engine's peak RSS at two database sizes. Each measurement runs in a
// process of its own so that its peak RSS is its own; caches are warm (the plain read runs first).
//
// Options: --sizes 256,1024 (MiB of database content), --runs 3. Databases are kept in .bench/ between runs.
import Database from 'better-sqlite3';
import { openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../src/config/defaults.ts';
import { PageSource } from '../src/source/index.ts';
import { createLargeDatabase } from '../test/helpers/sqlite.ts';
import { childJob, peakRss, reportFromChild, runInChild } from './lib/child.ts';
import { arg, median, numbers } from './lib/cli.ts';
import { cachedDatabase } from './lib/database.ts';
import { formatTable } from './lib/table.ts';

type Measure = 'engine' | 'backup' | 'read';
interface Sample {
  ms: number;
  bytes: number;
  maxRssMiB: number;
}

async function measure(kind: Measure, path: string): Promise<Sample> {
  const start = performance.now();
  let bytes = 0;
  if (kind === 'engine') {
    const source = await PageSource.open(path);
    for await (const batch of source.pages()) bytes += batch.data.length;
  } else if (kind === 'backup') {
    const db = new Database(path, { readonly: true });
    const target = join(tmpdir(), `pagevault-bench-${process.pid}.db`);
    await db.backup(target);
    db.close();
    bytes = statSync(target).size;
    rmSync(target, { force: true });
  } else {
    const fd = openSync(path, 'r');
    const buffer = Buffer.allocUnsafe(8 * MiB);
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) bytes += n;
    closeSync(fd);
  }
  const ms = performance.now() - start;
  return { ms, bytes, maxRssMiB: peakRss() / MiB };
}

function runChild(kind: Measure, path: string): Sample {
  return runInChild<Sample>(import.meta.url, { kind, path }, `${kind} of ${path}`);
}

const database = (sizeMiB: number): string => cachedDatabase(`engine-${sizeMiB}MiB.db`, (p) => createLargeDatabase(p, sizeMiB * MiB));

async function main(): Promise<void> {
  const job = childJob<{ kind: Measure; path: string }>();
  if (job) {
    reportFromChild(await measure(job.kind, job.path));
    return;
  }
  const sizes = numbers('--sizes', '256,1024');
  const runs = Number(arg('--runs', '3'));
  const rows: string[][] = [];
  const rss: string[] = [];
  for (const size of sizes) {
    const path = database(size);
    const fileMiB = statSync(path).size / MiB;
    const samples: Record<Measure, Sample[]> = { read: [], engine: [], backup: [] };
    for (let i = 0; i < runs; i++) {
      for (const kind of ['read', 'engine', 'backup'] as const) samples[kind].push(runChild(kind, path));
    }
    const ms = (k: Measure) => median(samples[k].map((s) => s.ms));
    const engineRss = Math.max(...samples.engine.map((s) => s.maxRssMiB));
    for (const kind of ['engine', 'backup', 'read'] as const) {
      const t = ms(kind);
      rows.push([
        `${fileMiB.toFixed(0)} MiB`,
        kind === 'engine' ? 'pagevault engine' : kind === 'backup' ? 'db.backup(file)' : 'plain read',
        `${(t / 1000).toFixed(3)} s`,
        `${(fileMiB / (t / 1000)).toFixed(0)} MiB/s`,
        `${(ms('backup') / t).toFixed(2)}x`,
        `${(t / ms('read')).toFixed(2)}x`,
        `${Math.max(...samples[kind].map((s) => s.maxRssMiB)).toFixed(0)} MiB`,
      ]);
    }
    rss.push(`${fileMiB.toFixed(0)} MiB: ${engineRss.toFixed(0)} MiB`);
  }
  const header = ['database', 'path', 'median time', 'throughput', 'speed vs db.backup', 'time vs plain read', 'peak RSS'];
  console.log(`runs: ${runs} per path, warm page cache, each in its own process`);
  console.log(formatTable(header, rows));
  console.log(`engine peak RSS by database size: ${rss.join(', ')} (goal: < 120 MiB, flat)`);
  console.log('goals: engine >= 2.5x faster than db.backup(file), within 10x of a plain read');
}

await main();
