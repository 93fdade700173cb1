// `npm run bench -- engine`: the page source's throughput (first step to last page delivered into reusable
// buffers, nothing else) against, in the same run, better-sqlite3's db.backup(file) to a temp file and a
// plain read of the file; and the engine's peak RSS at two database sizes. Each measurement runs in a
// process of its own so that its peak RSS is its own; caches are warm (the plain read runs first).
//
// Options: --sizes 256,1024 (MiB of database content), --runs 3. Databases are kept in .bench/ between runs.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readSync, closeSync, rmSync, statSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MiB } from '../src/config/defaults.ts';
import { PageSource } from '../src/source/index.ts';
import { createLargeDatabase } from '../test/helpers/sqlite.ts';

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
  return { ms, bytes, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

function runChild(kind: Measure, path: string): Sample {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--measure', kind, path], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Sample;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function database(sizeMiB: number): string {
  const dir = fileURLToPath(new URL('../.bench/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `engine-${sizeMiB}MiB.db`);
  if (!existsSync(path)) {
    const partial = `${path}.partial`;
    rmSync(partial, { force: true });
    process.stderr.write(`creating ${sizeMiB} MiB database...\n`);
    createLargeDatabase(partial, sizeMiB * MiB);
    renameSync(partial, path);
  }
  return path;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--measure') {
    console.log(JSON.stringify(await measure(process.argv[3] as Measure, process.argv[4]!)));
    return;
  }
  const sizes = arg('--sizes', '256,1024').split(',').map(Number);
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
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(`runs: ${runs} per path, warm page cache, each in its own process`);
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log(`engine peak RSS by database size: ${rss.join(', ')} (goal: < 120 MiB, flat)`);
  console.log('goals: engine >= 2.5x faster than db.backup(file), within 10x of a plain read');
}

await main();
