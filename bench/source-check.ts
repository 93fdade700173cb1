// `npm run bench -- source-check`: what the snapshot's source check costs, in CPU seconds and in wall time
// added to the snapshot, against the snapshot without a check measured in the same run. The snapshots are
// incremental snapshots of an unchanged application-like database (bench/lib/realistic-db.ts, in .bench/) into
// a file:// vault seeded once by a full snapshot: what cron runs every few minutes, where the check's share of
// the work is largest (every page is read and digested, almost nothing is compressed or uploaded). The paths:
//   - none: the snapshot alone (the peer);
//   - quick, full: PRAGMA quick_check or integrity_check in the check's own process, beside the copy (as built);
//   - quick then, full then: the snapshot alone, then the PRAGMA in the same process: the sequential design;
//   - quick alone, full alone: the PRAGMA by itself on a fresh read-only connection.
// CPU is that of the measuring process and of the processes it started (/proc/self/stat, children reaped
// before it is read), from just before the work to just after. pagevault runs as built (dist/). Every
// measurement is a process of its own; the database file is read once before the clock starts (a warm page
// cache, as for a database in use), and each check's answer must be "ok".
//
// Options: --sizes 1024 (MiB of database), --runs 3 (medians are reported).
import Database from 'better-sqlite3';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GiB, MiB } from '../src/config/defaults.ts';
import { childJob, reportFromChild, runInChild } from './lib/child.ts';
import { median, numbers, arg } from './lib/cli.ts';
import { benchDir, cachedDatabase } from './lib/database.ts';
import { createRealisticDatabase } from './lib/realistic-db.ts';
import { formatTable } from './lib/table.ts';

type Variant = 'none' | 'quick' | 'full' | 'quick then' | 'full then' | 'quick alone' | 'full alone';
const variants: Variant[] = ['none', 'quick', 'full', 'quick then', 'full then', 'quick alone', 'full alone'];

type Job = { kind: 'seed'; db: string; vault: string } | { kind: 'measure'; variant: Variant; db: string; vault: string };

interface Sample {
  wallMs: number;
  cpuMs: number;
  /** The check's own duration, as the snapshot recorded it (or as the PRAGMA took). */
  checkMs: number;
}

const pragmaOf = { quick: 'quick_check', full: 'integrity_check' } as const;

/** CPU of this process and of its reaped children, in ms (Linux); this process's only elsewhere. */
function cpuMs(): number {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    // utime, stime, cutime, cstime are fields 14-17 of stat, 12-15 after "pid (comm) ", in clock ticks (100 Hz).
    return fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) * 10;
  } catch {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
}

/** Waits until every child process has been reaped, so that its CPU time is in cutime and cstime. */
async function childrenReaped(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    let children = '';
    try {
      for (const task of readdirSync('/proc/self/task')) children += readFileSync(`/proc/self/task/${task}/children`, 'utf8');
    } catch {
      return; // not Linux
    }
    if (children.trim() === '') return;
    await sleep(10);
  }
  throw new Error('a child process outlived its snapshot');
}

function warm(path: string): void {
  const fd = openSync(path, 'r');
  const buffer = Buffer.allocUnsafe(8 * MiB);
  while (readSync(fd, buffer, 0, buffer.length, null) > 0);
  closeSync(fd);
}

function check(path: string, pragma: string): void {
  const db = new Database(path, { readonly: true });
  try {
    const answer = db.pragma(pragma, { simple: true });
    if (answer !== 'ok') throw new Error(`PRAGMA ${pragma} of ${path}: ${String(answer)}`);
  } finally {
    db.close();
  }
}

async function measure(job: Extract<Job, { kind: 'measure' }>): Promise<Sample> {
  const { snapshot } = (await import(new URL('../dist/index.js', import.meta.url).href)) as typeof import('../src/index.ts');
  warm(job.db);
  const url = `file://${job.vault}`;
  const cpu = cpuMs();
  const started = performance.now();
  let checkMs = 0;
  const [kind, how] = job.variant.split(' ') as ['none' | 'quick' | 'full', string | undefined];
  if (how === 'alone') {
    check(job.db, pragmaOf[kind as 'quick' | 'full']);
    checkMs = performance.now() - started;
  } else {
    const r = await snapshot({ source: job.db, url, sourceCheck: how === 'then' ? 'none' : kind });
    if (r.chunksNew > 1) throw new Error(`the database changed between snapshots: ${r.chunksNew} new chunks`);
    if (r.sourceCheck && (!r.sourceCheck.ok || !r.sourceCheck.sameState)) throw new Error(`source check: ${JSON.stringify(r.sourceCheck)}`);
    checkMs = r.sourceCheck?.durationMs ?? 0;
    if (how === 'then') {
      const t = performance.now();
      check(job.db, pragmaOf[kind as 'quick' | 'full']);
      checkMs = performance.now() - t;
    }
  }
  const wallMs = performance.now() - started;
  await childrenReaped();
  return { wallMs, cpuMs: cpuMs() - cpu, checkMs };
}

async function seed(job: Extract<Job, { kind: 'seed' }>): Promise<Sample> {
  const { snapshot } = (await import(new URL('../dist/index.js', import.meta.url).href)) as typeof import('../src/index.ts');
  await snapshot({ source: job.db, url: `file://${job.vault}`, sourceCheck: 'none' });
  return { wallMs: 0, cpuMs: 0, checkMs: 0 };
}

async function main(): Promise<void> {
  const job = childJob<Job>();
  if (job) {
    reportFromChild(job.kind === 'seed' ? await seed(job) : await measure(job));
    return;
  }
  const sizes = numbers('--sizes', '1024');
  const runs = Number(arg('--runs', '3'));
  console.log(`runs: ${runs} per path (medians), incremental snapshots of an unchanged database into file://, warm page cache, each in its own process`);
  // The check is meant to run on a core the snapshot leaves idle: other work on the machine takes that core.
  const load = () => loadavg()[0]!.toFixed(2);
  console.log(`cores: ${availableParallelism()}; load average before: ${load()}`);
  for (const sizeMiB of sizes) {
    const db = cachedDatabase(`snapshot-realistic-${sizeMiB}MiB.db`, (p) => createRealisticDatabase(p, sizeMiB * MiB));
    const gib = statSync(db).size / GiB;
    const vault = mkdtempSync(join(benchDir, 'source-check-vault-'));
    try {
      runInChild<Sample>(import.meta.url, { kind: 'seed', db, vault } satisfies Job, `seed ${db}`);
      const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]));
      for (let i = 0; i < runs; i++) {
        for (const variant of variants) samples.get(variant)!.push(runInChild<Sample>(import.meta.url, { kind: 'measure', variant, db, vault } satisfies Job, `${variant} of ${db}`));
      }
      const med = (v: Variant, k: keyof Sample) => median(samples.get(v)!.map((s) => s[k]));
      const baseWall = med('none', 'wallMs');
      const baseCpu = med('none', 'cpuMs');
      const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      const rows = variants.map((v) => {
        const alone = v.endsWith('alone');
        const wall = med(v, 'wallMs');
        const cpu = med(v, 'cpuMs');
        const addedWall = alone ? wall : wall - baseWall;
        const addedCpu = alone ? cpu : cpu - baseCpu;
        return [
          v,
          s(wall),
          alone ? '-' : `${(wall / baseWall).toFixed(2)}x`,
          s(cpu),
          alone ? '-' : `${(cpu / baseCpu).toFixed(2)}x`,
          v === 'none' ? '-' : s(med(v, 'checkMs')),
          v === 'none' ? '-' : `${(addedCpu / 1000 / gib).toFixed(2)} s`,
          v === 'none' ? '-' : `${(addedWall / 1000 / gib).toFixed(2)} s`,
        ];
      });
      console.log(`\n${sizeMiB} MiB database (${gib.toFixed(2)} GiB file, realistic mix: orders, customers, JSON, text, photos, receipts, event log, 5 indexes)`);
      console.log(
        formatTable(['path', 'wall', 'wall vs none', 'CPU', 'CPU vs none', 'check took', 'added CPU per GiB', 'added wall per GiB'], rows),
      );
      console.log(`("alone" rows: the check by itself, so its "added" figures are its whole cost; load average after: ${load()})`);
    } finally {
      rmSync(vault, { recursive: true, force: true });
    }
  }
}

await main();
