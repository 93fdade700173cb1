// `npm run bench -- storage`: 1 GiB up and down through the StorageClient stack (openStorage: retry, throttle,
// limit over S3Store; putObject from a stream of reusable part buffers through the S3 store's own multipart
// engine, Content-MD5 on every part; ranged reads into reusable buffers), and in the same run the same bytes
// with the other engine, a bare @aws-sdk/lib-storage Upload, and bare ranged GETs at the same concurrency and
// part size (docs/DESIGN.md, "Multipart engine", records the figures and the choice they support). Servers: fauxqs and the s3rver fork, each in its own
// process so that its work does not land on this event loop, and each phase in a process of its own so that its
// peak RSS is its own. Prints MiB/s, the ratio to the bare SDK, and the peak RSS above the phase's starting RSS,
// which should stay within concurrency x part size plus a constant.
// PAGEVAULT_BENCH_MIB (default 1024) bytes per phase, PAGEVAULT_BENCH_ROUNDS (default 2) rounds, each with
// one upload and PAGEVAULT_BENCH_DOWNLOADS (default 3) downloads per path.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { openStorage, type StorageClient } from '../src/storage/index.ts';
import { startFauxqs, startS3rver, type S3Server } from '../test/helpers/servers.ts';
import { childJob, peakRss, reportFromChild, runInChild } from './lib/child.ts';
import { median } from './lib/cli.ts';
import { PatternedBytes, bareClient, bareUpload as bareLibStorageUpload } from './lib/s3.ts';

const MiB = 1024 * 1024;
const totalMiB = Number(process.env.PAGEVAULT_BENCH_MIB ?? 1024);
const total = totalMiB * MiB;
const partSize = 8 * MiB; // fauxqs refuses bodies over 11 MiB
const concurrency = 4;
const downloadSamples = Number(process.env.PAGEVAULT_BENCH_DOWNLOADS ?? 3);
const parts = Math.ceil(total / partSize);
// Incompressible parts cut from one random block (made in the phase processes only): no per-part allocation.
let bytes: PatternedBytes | undefined;
const source = (): PatternedBytes => (bytes ??= new PatternedBytes(total, partSize));

async function ourUpload(c: StorageClient, key: string): Promise<void> {
  // The pool the snapshot pipeline would own: `concurrency` part buffers, each reused once the store releases it.
  const free: Buffer[] = Array.from({ length: concurrency }, () => Buffer.allocUnsafe(partSize));
  const waiters: Array<(b: Buffer) => void> = [];
  const owners = new Map<Uint8Array, Buffer>();
  const release = (view: Uint8Array): void => {
    const b = owners.get(view)!;
    owners.delete(view);
    if (waiters.length > 0) waiters.shift()!(b);
    else free.push(b);
  };
  const acquire = (): Promise<Buffer> => (free.length > 0 ? Promise.resolve(free.pop()!) : new Promise((r) => waiters.push(r)));
  async function* body(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < parts; i++) {
      const buf = await acquire();
      const part = source().partAt(i);
      part.copy(buf);
      const view = buf.subarray(0, part.length);
      owners.set(view, buf);
      yield view;
    }
  }
  await c.putObject(key, body(), { partsInFlight: concurrency, release });
}

async function bareUpload(s3: S3Client, bucket: string, key: string): Promise<void> {
  await bareLibStorageUpload(s3, bucket, key, source().stream(), { queueSize: concurrency, partSize });
}

/** `concurrency` workers pulling range indexes from one counter. */
async function workers(fn: (i: number, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = next++; i < parts; i = next++) await fn(i, w);
    }),
  );
}

async function ourDownload(c: StorageClient, key: string): Promise<void> {
  const buffers = Array.from({ length: concurrency }, () => Buffer.allocUnsafe(partSize));
  await workers(async (i, w) => {
    const length = Math.min(partSize, total - i * partSize);
    await c.readRange(key, i * partSize, length, { into: buffers[w]! });
  });
}

async function bareDownload(s3: S3Client, bucket: string, key: string): Promise<void> {
  await workers(async (i) => {
    const end = Math.min(total, (i + 1) * partSize) - 1;
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${i * partSize}-${end}` }));
    const bytes = await out.Body!.transformToByteArray();
    if (bytes.length !== end - i * partSize + 1) throw new Error(`range ${i}: got ${bytes.length} bytes`);
  });
}

interface Phase {
  kind: string;
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  op: 'upload' | 'download';
  path: 'StorageClient' | 'bare SDK';
  key: string;
}

const bucket = 'bench';

/** One phase, in its own process, so that its peak RSS is its own: prints {seconds, baseMiB, peakMiB}. */
async function runPhase(phase: Phase): Promise<void> {
  const credentials = async () => ({ accessKeyId: phase.accessKeyId, secretAccessKey: phase.secretAccessKey });
  const client = openStorage(`s3://${bucket}`, { concurrency, s3: { endpoint: phase.endpoint, credentials } });
  const s3 = bareClient(phase);
  const run = {
    'upload StorageClient': () => ourUpload(client, phase.key),
    'upload bare SDK': () => bareUpload(s3, bucket, phase.key),
    'download StorageClient': () => ourDownload(client, phase.key),
    'download bare SDK': () => bareDownload(s3, bucket, phase.key),
  }[`${phase.op} ${phase.path}`]!;
  source(); // the random block is made before the clock starts
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage.rss();
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  const peakMiB = peakRss() / MiB; // before verify() allocates its own buffers
  if (phase.op === 'upload') await source().verify(client, phase.key);
  await client.close();
  s3.destroy();
  reportFromChild({ seconds, baseMiB: base / MiB, peakMiB });
}

function spawnPhase(phase: Phase): { seconds: number; baseMiB: number; peakMiB: number } {
  return runInChild(import.meta.url, phase, `phase ${phase.op} ${phase.path} on ${phase.kind}`);
}

interface Row {
  server: string;
  op: string;
  path: string;
  mibps: number[];
  rss: number[];
}

async function benchServer(server: S3Server, rows: Row[], rounds: number): Promise<void> {
  await server.createBucket(bucket);
  const admin = openStorage(`s3://${bucket}`, { s3: { endpoint: server.endpoint, credentials: async () => server } });
  const record = (op: string, path: string, r: { seconds: number; baseMiB: number; peakMiB: number }): void => {
    let row = rows.find((x) => x.server === server.kind && x.op === op && x.path === path);
    if (!row) rows.push((row = { server: server.kind, op, path, mibps: [], rss: [] }));
    row.mibps.push(totalMiB / r.seconds);
    row.rss.push(r.peakMiB - r.baseMiB);
    console.error(`  ${server.kind} ${op} ${path}: ${(totalMiB / r.seconds).toFixed(1)} MiB/s, peak RSS ${r.peakMiB.toFixed(0)} MiB (+${(r.peakMiB - r.baseMiB).toFixed(0)} over the phase's start)`);
  };
  const base = { kind: server.kind, endpoint: server.endpoint, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternate which path goes first, so that neither always meets a cold or a warm server.
      const paths = (round % 2 === 0 ? ['bare SDK', 'StorageClient'] : ['StorageClient', 'bare SDK']) as Phase['path'][];
      for (const path of paths) {
        const key = `round${round}/${path === 'bare SDK' ? 'bare' : 'ours'}`;
        record('upload', path, spawnPhase({ ...base, op: 'upload', path, key }));
      }
      // Downloads are short and swing +-20% from one process to the next: several alternating samples each.
      for (let k = 0; k < downloadSamples; k++) {
        for (const path of k % 2 === 0 ? paths : [...paths].reverse()) {
          record('download', path, spawnPhase({ ...base, op: 'download', path, key: `round${round}/ours` }));
        }
      }
      await admin.deleteMany([`round${round}/bare`, `round${round}/ours`]);
    }
  } finally {
    await admin.close();
  }
}

const phase = childJob<Phase>();
if (phase) {
  await runPhase(phase);
} else {
  const rounds = Number(process.env.PAGEVAULT_BENCH_ROUNDS ?? 2);
  const rows: Row[] = [];
  for (const start of [() => startFauxqs({ inProcess: false }), () => startS3rver()]) {
    const server = await start();
    try {
      await benchServer(server, rows, rounds);
    } finally {
      await server.stop();
    }
  }
  console.log(
    `\n${totalMiB} MiB per phase, part size ${partSize / MiB} MiB, concurrency ${concurrency}; median of ${rounds} uploads ` +
      `and ${rounds * downloadSamples} downloads per path, alternating which path goes first`,
  );
  console.log(`peak RSS: the phase process's peak RSS above its RSS when the phase began; bound ${concurrency} x ${partSize / MiB} MiB + constant`);
  console.log('| server | op | path | MiB/s | vs bare SDK | peak RSS above start |');
  console.log('|---|---|---|---:|---:|---:|');
  for (const r of rows) {
    const bare = rows.find((b) => b.server === r.server && b.op === r.op && b.path === 'bare SDK')!;
    const runs = r.mibps.map((x) => x.toFixed(0)).join(', ');
    console.log(`| ${r.server} | ${r.op} | ${r.path} | ${median(r.mibps).toFixed(1)} (${runs}) | ${(median(r.mibps) / median(bare.mibps)).toFixed(2)}x | ${Math.max(...r.rss).toFixed(0)} MiB |`);
  }
}
