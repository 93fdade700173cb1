// `npm run bench -- snapshot`: pagevault's snapshot and restore, end to end against fauxqs (in a process of its
// own), on an application-like database (bench/lib/realistic-db.ts, built once into .bench/), and in the same run
// the naive peers:
//   - full snapshot vs db.backup() to a temp file, then a lib-storage Upload of it (same concurrency, part size);
//   - full snapshot throughput vs a bare lib-storage Upload, from memory, of as many bytes as pagevault uploaded;
//   - restore vs ranged GETs of that file written into place, then PRAGMA integrity_check;
//   - incremental snapshots after a clustered update of 1% of the rows and after 1,000 random single-row
//     updates: bytes uploaded as a fraction of the database;
//   - the snapshot's peak RSS and its event-loop delay (the library runs in the measuring process).
// pagevault is measured as built (dist/), in plain JavaScript as the CLI runs it (lib/built-job.mjs); the peers
// run in the benchmark's own TypeScript.
// Then the chunk size table: full snapshot, incrementals, manifest size and restore for each chunk size.
// Every measurement runs in a process of its own, into a bucket of its own. Every restore is compared page by
// page with the source (and once per run row by row); the bare upload is read back; a broken pipeline fails
// the benchmark instead of reporting numbers.
//
// Options: --sizes 1024[,4096] (MiB of database), --chunk-sizes 64,256,1024 (KiB; the table is made at the first
// size), --runs 1 (repeats of the head-to-head paths; medians are reported).
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, createReadStream, openSync, readSync, rmSync, statSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { KiB, MiB, restoreDefaults, snapshotDefaults, storageDefaults } from '../src/config/defaults.ts';
import { listObjects, openStorage } from '../src/storage/index.ts';
import { extentTableKey, manifestKey } from '../src/vault/layout.ts';
import { differingPages, fileDigest } from '../test/helpers/sqlite.ts';
import { startFauxqs } from '../test/helpers/servers.ts';
import { childJob, peakRss, reportFromChild, runBuiltJob, runInChild } from './lib/child.ts';
import { median, numbers } from './lib/cli.ts';
import { benchDir, cachedDatabase } from './lib/database.ts';
import { createRealisticDatabase, updateClustered, updateRandom } from './lib/realistic-db.ts';
import { PatternedBytes, bareClient, bareUpload, type Endpoint } from './lib/s3.ts';
import { formatTable } from './lib/table.ts';

const MB = 1e6;
const partSize = storageDefaults.partSize;
const uploadConcurrency = snapshotDefaults.uploadConcurrency;
const goals = { snapshotVsNaive: 0.6, throughputVsBare: 0.8, restoreVsNaive: 0.7, peakRssMB: 200, loopP99Ms: 20, rssGrowth: 1.15 };

type Job =
  | { kind: 'snapshot'; server: Endpoint; bucket: string; db: string; chunkSize: number; full: boolean }
  | { kind: 'naive-snapshot'; server: Endpoint; bucket: string; db: string }
  | { kind: 'bare-upload'; server: Endpoint; bucket: string; bytes: number }
  | { kind: 'restore'; server: Endpoint; bucket: string; snapshot?: string; target: string }
  | { kind: 'naive-restore'; server: Endpoint; bucket: string; target: string };

interface Measured {
  ms: number;
  /** The process's peak RSS (peakRss()), and its RSS when the measured work began. */
  peakMB: number;
  baseMB: number;
  /** The event-loop delay in the measuring process while it worked (timer resolution 1 ms). */
  loopP99Ms: number;
  loopMaxMs: number;
}

interface SnapshotMeasured extends Measured {
  id: string;
  bytesUploaded: number;
  bytesRead: number;
  chunksNew: number;
  chunksReused: number;
}

const naiveKey = 'naive.db';
const fauxqsMaxObject = 4 * 1024 * MiB;
const bareKey = 'bare';

function storageFor(server: Endpoint, bucket: string) {
  const credentials = async () => ({ accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey });
  return { url: `s3://${bucket}`, storageOptions: { s3: { endpoint: server.endpoint, credentials } } };
}

/** Runs in the measuring process: does one peer's job, timed, and returns what it measured. */
async function measure(job: Exclude<Job, { kind: 'snapshot' | 'restore' }>): Promise<Measured> {
  // The bare upload's random block is made before any clock or monitor starts.
  const patterned = job.kind === 'bare-upload' ? new PatternedBytes(job.bytes, partSize) : undefined;
  (globalThis as { gc?: () => void }).gc?.();
  const baseMB = process.memoryUsage.rss() / MB;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const started = performance.now();
  const finish = <T extends object>(extra: T): Measured & T => {
    loop.disable();
    return {
      ms: performance.now() - started,
      peakMB: peakRss() / MB,
      baseMB,
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
      ...extra,
    };
  };
  switch (job.kind) {
    case 'naive-snapshot': {
      const s3 = bareClient(job.server);
      const temp = join(benchDir, `naive-${process.pid}.db`);
      try {
        const db = new Database(job.db, { readonly: true });
        await db.backup(temp);
        db.close();
        await bareUpload(s3, job.bucket, naiveKey, createReadStream(temp, { highWaterMark: MiB }), { queueSize: uploadConcurrency, partSize });
        await rm(temp);
        return finish({});
      } finally {
        rmSync(temp, { force: true });
        s3.destroy();
      }
    }
    case 'bare-upload': {
      const s3 = bareClient(job.server);
      const bytes = patterned!;
      await bareUpload(s3, job.bucket, bareKey, bytes.stream(), { queueSize: uploadConcurrency, partSize });
      const result = finish({});
      s3.destroy();
      const storage = openStorage(storageFor(job.server, job.bucket).url, storageFor(job.server, job.bucket).storageOptions);
      await bytes.verify(storage, bareKey);
      await storage.close();
      return result;
    }
    case 'naive-restore': {
      // The peer: ranged GETs of the file at restore's concurrency and read size, positional writes, fsync, check.
      const s3 = bareClient(job.server);
      const storage = openStorage(storageFor(job.server, job.bucket).url, storageFor(job.server, job.bucket).storageOptions);
      const size = (await storage.head(naiveKey)).size;
      await storage.close();
      const fh = await open(job.target, 'wx');
      try {
        const readSize = restoreDefaults.readSize;
        let next = 0;
        const reads = Math.ceil(size / readSize);
        await Promise.all(
          Array.from({ length: restoreDefaults.concurrency }, async () => {
            for (let i = next++; i < reads; i = next++) {
              const end = Math.min(size, (i + 1) * readSize) - 1;
              const out = await s3.send(new GetObjectCommand({ Bucket: job.bucket, Key: naiveKey, Range: `bytes=${i * readSize}-${end}` }));
              const body = await out.Body!.transformToByteArray();
              if (body.length !== end - i * readSize + 1) throw new Error(`range ${i}: got ${body.length} bytes`);
              await fh.write(body, 0, body.length, i * readSize);
            }
          }),
        );
        await fh.sync();
      } finally {
        await fh.close();
        s3.destroy();
      }
      const db = new Database(job.target, { readonly: true });
      const check = db.pragma('integrity_check', { simple: true });
      db.close();
      if (check !== 'ok') throw new Error(`naive restore: integrity_check says ${String(check)}`);
      return finish({});
    }
  }
}

// ---- the parent: databases, workloads, verification, tables ----

function removeDatabase(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}

/** A SHA-1 per page: comparing two of these counts the pages a workload changed. */
function pageHashes(path: string, pageSize: number): string[] {
  const fd = openSync(path, 'r');
  const buffer = Buffer.allocUnsafe(256 * pageSize);
  const out: string[] = [];
  try {
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) {
      for (let p = 0; p < n; p += pageSize) out.push(createHash('sha1').update(buffer.subarray(p, p + pageSize)).digest('base64'));
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function changedPages(before: string[], after: string[]): number {
  let n = Math.abs(after.length - before.length);
  for (let i = 0; i < Math.min(before.length, after.length); i++) if (before[i] !== after[i]) n++;
  return n;
}

const pageSizeOf = (path: string): number => {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('page_size', { simple: true }) as number;
  } finally {
    db.close();
  }
};

/** The restored file must hold the source's pages (bar the header counters a backup rewrites). */
function verifyRestored(label: string, source: string, restored: string, rows: boolean): void {
  const pageSize = pageSizeOf(source);
  const differ = differingPages(source, restored, pageSize);
  if (differ.length > 0) throw new Error(`${label}: ${differ.length} pages differ from the source, the first ${differ.slice(0, 5).join(', ')}`);
  if (rows) {
    const started = performance.now();
    const [a, b] = [fileDigest(source), fileDigest(restored)];
    if (a !== b) throw new Error(`${label}: the restored rows differ from the source's (content digest ${b} vs ${a})`);
    process.stderr.write(`  ${label}: rows equal the source's (content digest ${a.slice(0, 16)}, ${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
}

const fmtS = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fmtMiB = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const fmtPct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(2)}%`;

interface ChunkRow {
  chunkSize: number;
  full: SnapshotMeasured;
  manifestBytes: number;
  clustered: SnapshotMeasured;
  clusteredPages: number;
  random: SnapshotMeasured;
  randomPages: number;
  restoreMs: number;
}

interface SizeResult {
  sizeMiB: number;
  fileBytes: number;
  pageSize: number;
  naive: Measured[];
  full: SnapshotMeasured[];
  bare: Measured[];
  /** A bare Upload of as many bytes as the database file (when fauxqs can hold such an object). */
  bareDb: Measured[];
  naiveRestore: Measured[];
  restore: Measured[];
  chunks: ChunkRow[];
}

async function main(): Promise<void> {
  const sizes = numbers('--sizes', '1024');
  const chunkSizes = numbers('--chunk-sizes', '64,256,1024').map((k) => k * KiB);
  const runs = numbers('--runs', '1')[0]!;
  const server = await startFauxqs({ inProcess: false });
  const endpoint: Endpoint = { endpoint: server.endpoint, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
  let buckets = 0;
  const freshBucket = async (what: string): Promise<string> => {
    const name = `b${++buckets}-${what}`;
    await server.createBucket(name);
    return name;
  };
  // fauxqs keeps objects in memory: each bucket is emptied as soon as its measurement is verified.
  const emptyBucket = async (bucket: string): Promise<void> => {
    const { url, storageOptions } = storageFor(endpoint, bucket);
    const storage = openStorage(url, storageOptions);
    try {
      const keys: string[] = [];
      for await (const o of listObjects(storage, '')) keys.push(o.key);
      await storage.deleteMany(keys);
    } finally {
      await storage.close();
    }
  };
  // What a snapshot's page map costs in the vault: its manifest and its extent table (format 2 has both).
  const manifestSize = async (bucket: string, id: string): Promise<number> => {
    const { url, storageOptions } = storageFor(endpoint, bucket);
    const storage = openStorage(url, storageOptions);
    try {
      return (await storage.head(manifestKey(id))).size + (await storage.head(extentTableKey(id))).size;
    } finally {
      await storage.close();
    }
  };
  const child = <R extends Measured>(job: Job, label: string): R => {
    const r = job.kind === 'snapshot' || job.kind === 'restore' ? runBuiltJob<R>(job, label) : runInChild<R>(import.meta.url, job, label);
    process.stderr.write(`  ${label}: ${fmtS(r.ms)}, peak RSS ${r.peakMB.toFixed(0)} MB\n`);
    return r;
  };

  const work = join(benchDir, 'snapshot-work.db');
  const target = join(benchDir, 'snapshot-restored.db');
  const results: SizeResult[] = [];
  let rowsCompared = false;
  try {
    for (const [sizeIndex, sizeMiB] of sizes.entries()) {
      const base = cachedDatabase(`snapshot-realistic-${sizeMiB}MiB.db`, (p) => createRealisticDatabase(p, sizeMiB * MiB));
      const resetWork = () => {
        removeDatabase(work);
        copyFileSync(base, work);
      };
      resetWork();
      const fileBytes = statSync(work).size;
      const pageSize = pageSizeOf(work);
      process.stderr.write(`database: ${fmtMiB(fileBytes)}, ${pageSize}-byte pages\n`);
      const r: SizeResult = { sizeMiB, fileBytes, pageSize, naive: [], full: [], bare: [], bareDb: [], naiveRestore: [], restore: [], chunks: [] };
      let defaultBucket = '';
      // The naive peers store the database file as one object, which fauxqs cannot assemble from 4 GiB on (a
      // Node 20 Buffer's limit; it answers 500): at such sizes only pagevault (1 GiB packs) is measured.
      const peers = fileBytes < fauxqsMaxObject;
      if (!peers) process.stderr.write(`  the naive peers are left out: fauxqs cannot hold a ${fmtMiB(fileBytes)} object\n`);
      for (let run = 0; run < runs; run++) {
        const naiveBucket = await freshBucket('naive');
        if (peers) r.naive.push(child({ kind: 'naive-snapshot', server: endpoint, bucket: naiveBucket, db: work }, 'naive snapshot (db.backup + Upload)'));
        const pvBucket = await freshBucket('full');
        const full = child<SnapshotMeasured>({ kind: 'snapshot', server: endpoint, bucket: pvBucket, db: work, chunkSize: snapshotDefaults.minChunkSize, full: true }, 'pagevault full snapshot');
        r.full.push(full);
        const bareBucket = await freshBucket('bare');
        r.bare.push(child({ kind: 'bare-upload', server: endpoint, bucket: bareBucket, bytes: full.bytesUploaded }, `bare Upload of ${fmtMiB(full.bytesUploaded)}`));
        await emptyBucket(bareBucket);
        if (peers) {
          r.bareDb.push(child({ kind: 'bare-upload', server: endpoint, bucket: bareBucket, bytes: fileBytes }, `bare Upload of ${fmtMiB(fileBytes)} (the file's size)`));
          await emptyBucket(bareBucket);
        }
        removeDatabase(target);
        if (peers) {
          r.naiveRestore.push(child({ kind: 'naive-restore', server: endpoint, bucket: naiveBucket, target }, 'naive restore (ranged GETs + integrity_check)'));
          verifyRestored('naive restore', work, target, false);
          removeDatabase(target);
          await emptyBucket(naiveBucket);
        }
        r.restore.push(child({ kind: 'restore', server: endpoint, bucket: pvBucket, snapshot: full.id, target }, 'pagevault restore'));
        verifyRestored('pagevault restore', work, target, false);
        removeDatabase(target);
        if (run === 0) defaultBucket = pvBucket;
        else await emptyBucket(pvBucket);
      }

      // Incrementals for the default chunk size at every size; the whole chunk size table at the first size.
      const tableSizes = sizeIndex === 0 ? [...new Set([snapshotDefaults.minChunkSize, ...chunkSizes])] : [snapshotDefaults.minChunkSize];
      for (const chunkSize of tableSizes) {
        const label = `${chunkSize / KiB} KiB chunks`;
        let bucket = defaultBucket;
        let full = r.full[0]!;
        if (chunkSize !== snapshotDefaults.minChunkSize) {
          bucket = await freshBucket(`c${chunkSize / KiB}`);
          full = child<SnapshotMeasured>({ kind: 'snapshot', server: endpoint, bucket, db: work, chunkSize, full: true }, `${label}: full snapshot`);
        }
        const manifestBytes = await manifestSize(bucket, full.id);
        const h0 = pageHashes(work, pageSize);
        updateClustered(work);
        const h1 = pageHashes(work, pageSize);
        const clustered = child<SnapshotMeasured>({ kind: 'snapshot', server: endpoint, bucket, db: work, chunkSize, full: false }, `${label}: after 1% clustered`);
        updateRandom(work);
        const h2 = pageHashes(work, pageSize);
        const random = child<SnapshotMeasured>({ kind: 'snapshot', server: endpoint, bucket, db: work, chunkSize, full: false }, `${label}: after 1,000 random`);
        removeDatabase(target);
        const restored = child({ kind: 'restore', server: endpoint, bucket, target }, `${label}: restore of the last incremental`);
        // Rows compared once per run, on the restore that went through the whole chain of incrementals.
        verifyRestored(`${label}: restore of the last incremental`, work, target, !rowsCompared);
        rowsCompared = true;
        removeDatabase(target);
        await emptyBucket(bucket);
        r.chunks.push({ chunkSize, full, manifestBytes, clustered, clusteredPages: changedPages(h0, h1), random, randomPages: changedPages(h1, h2), restoreMs: restored.ms });
        resetWork();
      }
      results.push(r);
    }
  } finally {
    removeDatabase(work);
    removeDatabase(target);
    await server.stop();
  }
  report(results, runs);
}

function report(results: SizeResult[], runs: number): void {
  const verdicts: string[] = [];
  const verdict = (name: string, met: boolean, detail: string) => verdicts.push(`${met ? 'met    ' : 'NOT MET'}  ${name}: ${detail}`);
  console.log(`\nfauxqs 1.9.2 in its own process; ${uploadConcurrency} parts of ${partSize / MiB} MiB in flight on both sides; restore ${restoreDefaults.concurrency} ranged GETs of ${restoreDefaults.readSize / MiB} MiB on both sides`);
  console.log(`default chunk size ${snapshotDefaults.minChunkSize / KiB} KiB; ${runs} run(s) per head-to-head path, medians; every path in its own process`);
  for (const r of results) {
    const t = (xs: Measured[]) => median(xs.map((x) => x.ms));
    const full = t(r.full);
    const naive = t(r.naive);
    const bare = t(r.bare);
    const uploaded = median(r.full.map((x) => x.bytesUploaded));
    const restoreMs = t(r.restore);
    const naiveRestoreMs = t(r.naiveRestore);
    const d = r.chunks.find((c) => c.chunkSize === snapshotDefaults.minChunkSize)!;
    const rss = Math.max(...r.full.map((x) => x.peakMB), d.clustered.peakMB, d.random.peakMB);
    const baseRss = median(r.full.map((x) => x.baseMB));
    const loopP99 = Math.max(...r.full.map((x) => x.loopP99Ms));
    const loopMax = Math.max(...r.full.map((x) => x.loopMaxMs));
    const pvMiBps = uploaded / MiB / (full / 1000);
    const bareMiBps = uploaded / MiB / (bare / 1000);
    const dbMiBps = r.fileBytes / MiB / (full / 1000);
    const bareDbMiBps = r.fileBytes / MiB / (t(r.bareDb) / 1000);
    const peers = r.naive.length > 0;
    const vs = (ours: number, theirs: number) => (peers ? `${(ours / theirs).toFixed(2)}x` : 'n/a');
    const rows = [
      ['full snapshot, wall time', fmtS(full), peers ? `${fmtS(naive)} db.backup + Upload` : 'no peer at this size', vs(full, naive), `<= ${goals.snapshotVsNaive}x`],
      ['full snapshot, upload throughput', `${pvMiBps.toFixed(1)} MiB/s (${fmtMiB(uploaded)})`, `${bareMiBps.toFixed(1)} MiB/s bare Upload`, `${(pvMiBps / bareMiBps).toFixed(2)}x`, `>= ${goals.throughputVsBare}x`],
      // The same ratio counted in database bytes: backing the file up against uploading as many bytes raw.
      ['full snapshot, database throughput', `${dbMiBps.toFixed(1)} MiB/s (${fmtMiB(r.fileBytes)})`, peers ? `${bareDbMiBps.toFixed(1)} MiB/s bare Upload of the file's size` : 'no peer at this size', vs(dbMiBps, bareDbMiBps), 'report'],
      ['incremental after 1% clustered rows', `${fmtMiB(d.clustered.bytesUploaded)} = ${fmtPct(d.clustered.bytesUploaded, r.fileBytes)} of db`, `${d.clusteredPages} pages changed (${fmtPct(d.clusteredPages * r.pageSize, r.fileBytes)})`, '', 'report'],
      ['incremental after 1,000 random rows', `${fmtMiB(d.random.bytesUploaded)} = ${fmtPct(d.random.bytesUploaded, r.fileBytes)} of db`, `${d.randomPages} pages changed (${fmtPct(d.randomPages * r.pageSize, r.fileBytes)})`, '', 'report'],
      ['restore, wall time', fmtS(restoreMs), peers ? `${fmtS(naiveRestoreMs)} ranged GETs + check` : 'no peer at this size', vs(restoreMs, naiveRestoreMs), `<= ${goals.restoreVsNaive}x`],
      ['snapshot peak RSS', `${rss.toFixed(0)} MB (${baseRss.toFixed(0)} MB at start)`, `${peers ? `${Math.max(...r.naive.map((x) => x.peakMB)).toFixed(0)} MB naive, ` : ''}${Math.max(...r.bare.map((x) => x.peakMB)).toFixed(0)} MB bare Upload`, '', `< ${goals.peakRssMB} MB`],
      ['event-loop delay while snapshotting', `p99 ${loopP99.toFixed(1)} ms, max ${loopMax.toFixed(0)} ms`, `p99 ${Math.max(...r.bare.map((x) => x.loopP99Ms)).toFixed(1)} ms during the bare Upload`, '', `p99 < ${goals.loopP99Ms} ms`],
    ];
    console.log(`\n${r.sizeMiB} MiB database: ${fmtMiB(r.fileBytes)} file, realistic mix (orders, customers, JSON, text, photos, receipts, event log, 5 indexes)`);
    console.log(formatTable(['measurement', 'pagevault', 'peer / context', 'ratio', 'goal'], rows));
    const at = `(${r.sizeMiB} MiB)`;
    if (peers) verdict(`full snapshot <= ${goals.snapshotVsNaive}x the naive peer ${at}`, full / naive <= goals.snapshotVsNaive, `${(full / naive).toFixed(2)}x`);
    verdict(`full snapshot throughput >= ${goals.throughputVsBare}x a bare Upload ${at}`, pvMiBps / bareMiBps >= goals.throughputVsBare, `${(pvMiBps / bareMiBps).toFixed(2)}x`);
    if (peers) verdict(`restore <= ${goals.restoreVsNaive}x the naive peer ${at}`, restoreMs / naiveRestoreMs <= goals.restoreVsNaive, `${(restoreMs / naiveRestoreMs).toFixed(2)}x`);
    verdict(`snapshot peak RSS < ${goals.peakRssMB} MB ${at}`, rss < goals.peakRssMB, `${rss.toFixed(0)} MB`);
    verdict(`event-loop delay p99 < ${goals.loopP99Ms} ms ${at}`, loopP99 < goals.loopP99Ms, `${loopP99.toFixed(1)} ms`);
  }
  if (results.length > 1) {
    const rssOf = (r: SizeResult) => {
      const d = r.chunks.find((c) => c.chunkSize === snapshotDefaults.minChunkSize)!;
      return Math.max(...r.full.map((x) => x.peakMB), d.clustered.peakMB, d.random.peakMB);
    };
    const first = results[0]!;
    const last = results.at(-1)!;
    verdict(
      `snapshot peak RSS flat with size (${last.sizeMiB} MiB within ${Math.round((goals.rssGrowth - 1) * 100)}% of ${first.sizeMiB} MiB)`,
      rssOf(last) <= rssOf(first) * goals.rssGrowth,
      results.map((r) => `${r.sizeMiB} MiB: ${rssOf(r).toFixed(0)} MB`).join(', '),
    );
  }
  const first = results[0]!;
  console.log(`\nchunk sizes, ${first.sizeMiB} MiB database (${fmtMiB(first.fileBytes)}); incremental = bytes uploaded (share of the database)`);
  console.log(
    formatTable(
      ['chunk', 'full: time', 'full: uploaded', 'manifest + extents', '+1% clustered', '+1,000 random', 'incr. time', 'restore (chain)', 'peak RSS'],
      first.chunks
        .sort((a, b) => a.chunkSize - b.chunkSize)
        .map((c) => [
          `${c.chunkSize / KiB} KiB${c.chunkSize === snapshotDefaults.minChunkSize ? ' (default)' : ''}`,
          fmtS(c.full.ms),
          fmtMiB(c.full.bytesUploaded),
          `${(c.manifestBytes / KiB).toFixed(1)} KiB`,
          `${fmtMiB(c.clustered.bytesUploaded)} (${fmtPct(c.clustered.bytesUploaded, first.fileBytes)})`,
          `${fmtMiB(c.random.bytesUploaded)} (${fmtPct(c.random.bytesUploaded, first.fileBytes)})`,
          `${fmtS(c.clustered.ms)} / ${fmtS(c.random.ms)}`,
          fmtS(c.restoreMs),
          `${Math.max(c.full.peakMB, c.clustered.peakMB, c.random.peakMB).toFixed(0)} MB`,
        ]),
    ),
  );
  console.log(`pages changed by the workloads: 1% clustered ${first.chunks[0]!.clusteredPages}, 1,000 random ${first.chunks[0]!.randomPages} (of ${Math.round(first.fileBytes / first.pageSize)})`);
  console.log(`\ngoals:\n${verdicts.join('\n')}`);
}

const job = childJob<Exclude<Job, { kind: 'snapshot' | 'restore' }>>();
if (job) reportFromChild(await measure(job));
else await main();
