// One measurement per process: a benchmark re-runs its own file with `--child <json>`, so that the child's peak
// RSS (peakRss()) belongs to that measurement alone and nothing else shares its event loop.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const flag = '--child';

/**
 * This process's peak RSS in bytes. On Linux it is VmHWM, the high-water mark of the address space the process
 * got at exec: getrusage's maxRSS (process.resourceUsage()) survives fork and exec, so a child would report
 * its parent's peak whenever that was higher (a parent that has just built a 1 GiB database, say).
 */
export function peakRss(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** The job this process was started for, or undefined in the parent. */
export function childJob<T>(): T | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? (JSON.parse(process.argv[i + 1]!) as T) : undefined;
}

/** Called by the child with its result: the last line of stdout is the result as JSON. */
export function reportFromChild(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * Runs the benchmark file `moduleUrl` (pass import.meta.url) in a new process with `job`, waits for it, and
 * returns what it reported. Its stderr goes to ours; a non-zero exit throws.
 */
export function runInChild<R>(moduleUrl: string, job: unknown, label: string = JSON.stringify(job)): R {
  return runProcess<R>(['--import', 'tsx', fileURLToPath(moduleUrl), flag, JSON.stringify(job)], label);
}

/** Runs a snapshot or restore job by the built package in plain JavaScript (see built-job.mjs). */
export function runBuiltJob<R>(job: unknown, label: string = JSON.stringify(job)): R {
  return runProcess<R>([fileURLToPath(new URL('./built-job.mjs', import.meta.url)), JSON.stringify(job)], label);
}

function runProcess<R>(args: string[], label: string): R {
  const r = spawnSync(process.execPath, ['--expose-gc', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  if (r.status !== 0) throw new Error(`${label}: the measuring process failed (exit ${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as R;
}
