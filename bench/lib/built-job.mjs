// One snapshot or restore by the built package (dist/), timed, in a process of its own that runs plain
// JavaScript: without the TypeScript loader the benchmarks run under (about 30 MB of RSS, plus one more copy in
// every codec worker thread) this process is what a user's `pagevault` process is. Prints one JSON line:
// { ms, peakMB, baseMB, loopP99Ms, loopMaxMs, ...the result's figures }. bench/snapshot.ts starts it with
// `node --expose-gc bench/lib/built-job.mjs <job json>`.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const { snapshot, restore } = await import(new URL('../../dist/index.js', import.meta.url).href);
const job = JSON.parse(process.argv[2]);
const MB = 1e6;

/** VmHWM: the peak of this exec's address space (getrusage's maxRSS would include the parent's peak). */
function peakRss() {
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

const credentials = async () => ({ accessKeyId: job.server.accessKeyId, secretAccessKey: job.server.secretAccessKey });
const storage = { url: `s3://${job.bucket}`, storageOptions: { s3: { endpoint: job.server.endpoint, credentials } } };
globalThis.gc?.();
const baseMB = process.memoryUsage.rss() / MB;
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const started = performance.now();
let extra = {};
if (job.kind === 'snapshot') {
  const r = await snapshot({ source: job.db, ...storage, chunkSize: job.chunkSize, full: job.full });
  extra = { id: r.id, bytesUploaded: r.bytesUploaded, bytesRead: r.bytesRead, chunksNew: r.chunksNew, chunksReused: r.chunksReused };
} else if (job.kind === 'restore') {
  await restore({ ...storage, path: job.target, ...(job.snapshot ? { snapshot: job.snapshot } : {}) });
} else {
  throw new Error(`built-job: unknown job kind ${job.kind}`);
}
const ms = performance.now() - started;
loop.disable();
const measured = { ms, peakMB: peakRss() / MB, baseMB, loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6, ...extra };
process.stdout.write(`${JSON.stringify(measured)}\n`);
