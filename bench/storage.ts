// `npm run bench -- storage`: 1 GiB up and down through the StorageClient stack (openStorage: retry, throttle,
// limit over S3Store; MultipartUpload from a pool of reusable part buffers, Content-MD5 on every part; ranged
// reads into reusable buffers), and in the same run the same bytes with a bare @aws-sdk/lib-storage Upload and
// bare ranged GETs at the same concurrency and part size. Servers: fauxqs and the s3rver fork, each in its own
// process so that its work does not land on this event loop, and each phase in a process of its own so that its
// peak RSS is its own. Prints MiB/s, the ratio to the bare SDK, and the peak RSS above the phase's starting RSS,
// which should stay within concurrency x part size plus a constant.
// PAGEVAULT_BENCH_MIB (default 1024) bytes per phase, PAGEVAULT_BENCH_ROUNDS (default 2) rounds.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { fileURLToPath } from 'node:url';
import { MultipartUpload, openStorage, type StorageClient } from '../src/storage/index.ts';
import { startFauxqs, startS3rver, type S3Server } from '../test/helpers/servers.ts';

const MiB = 1024 * 1024;
const totalMiB = Number(process.env.PAGEVAULT_BENCH_MIB ?? 1024);
const total = totalMiB * MiB;
const partSize = 8 * MiB; // fauxqs refuses bodies over 11 MiB
const concurrency = 4;
const parts = Math.ceil(total / partSize);
// A 64 MiB random block the parts are cut from: incompressible, and no per-part allocation on either path.
const source = randomBytes(64 * MiB);
const partAt = (i: number): Buffer => {
  const size = Math.min(partSize, total - i * partSize);
  const start = (i * partSize) % source.length;
  return source.subarray(start, start + size);
};

async function ourUpload(c: StorageClient, key: string): Promise<void> {
  // The pool the snapshot pipeline would own: `concurrency` part buffers, each reused once its part is stored.
  const free: Buffer[] = Array.from({ length: concurrency }, () => Buffer.allocUnsafe(partSize));
  const waiters: Array<(b: Buffer) => void> = [];
  const release = (b: Buffer): void => (waiters.length > 0 ? waiters.shift()!(b) : void free.push(b));
  const acquire = (): Promise<Buffer> => (free.length > 0 ? Promise.resolve(free.pop()!) : new Promise((r) => waiters.push(r)));
  const upload = new MultipartUpload(c, key, { partsInFlight: concurrency });
  const writes: Promise<void>[] = [];
  for (let i = 0; i < parts; i++) {
    const buf = await acquire();
    const part = partAt(i);
    part.copy(buf);
    const w = upload.writePart(buf.subarray(0, part.length));
    w.then(
      () => release(buf),
      () => release(buf),
    );
    writes.push(w);
  }
  await Promise.all(writes);
  await upload.complete();
}

async function bareUpload(s3: S3Client, bucket: string, key: string): Promise<void> {
  const body = Readable.from(
    (function* () {
      for (let i = 0; i < parts; i++) yield partAt(i);
    })(),
  );
  await new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: body }, queueSize: concurrency, partSize }).done();
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

/** Reads a few ranges back and compares them with the source: the benchmark must move the right bytes. */
async function verify(c: StorageClient, key: string): Promise<void> {
  const info = await c.head(key);
  if (info.size !== total) throw new Error(`${key}: size ${info.size}, expected ${total}`);
  for (let k = 0; k < 16; k++) {
    const offset = Math.floor((k * (total - MiB)) / 15);
    const got = await c.readRange(key, offset, MiB);
    let expected = Buffer.alloc(0);
    for (let i = Math.floor(offset / partSize); expected.length < offset + MiB - Math.floor(offset / partSize) * partSize; i++) {
      expected = Buffer.concat([expected, partAt(i)]);
    }
    const skip = offset - Math.floor(offset / partSize) * partSize;
    if (!got.equals(expected.subarray(skip, skip + MiB))) throw new Error(`${key}: bytes differ at ${offset}`);
  }
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
  const s3 = new S3Client({
    endpoint: phase.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials,
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
  });
  const run = {
    'upload StorageClient': () => ourUpload(client, phase.key),
    'upload bare SDK': () => bareUpload(s3, bucket, phase.key),
    'download StorageClient': () => ourDownload(client, phase.key),
    'download bare SDK': () => bareDownload(s3, bucket, phase.key),
  }[`${phase.op} ${phase.path}`]!;
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage.rss();
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  const peakMiB = process.resourceUsage().maxRSS / 1024; // before verify() allocates its own buffers
  if (phase.op === 'upload') await verify(client, phase.key);
  await client.close();
  s3.destroy();
  process.stdout.write(`${JSON.stringify({ seconds, baseMiB: base / MiB, peakMiB })}\n`);
}

function spawnPhase(phase: Phase): { seconds: number; baseMiB: number; peakMiB: number } {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--phase', JSON.stringify(phase)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  if (r.status !== 0) throw new Error(`phase ${phase.op} ${phase.path} on ${phase.kind} failed (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
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
      for (const path of paths) record('download', path, spawnPhase({ ...base, op: 'download', path, key: `round${round}/ours` }));
      await admin.deleteMany([`round${round}/bare`, `round${round}/ours`]);
    }
  } finally {
    await admin.close();
  }
}

const phaseArg = process.argv.indexOf('--phase');
if (phaseArg >= 0) {
  await runPhase(JSON.parse(process.argv[phaseArg + 1]!) as Phase);
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
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`\n${totalMiB} MiB per phase, part size ${partSize / MiB} MiB, concurrency ${concurrency}, mean of ${rounds} rounds`);
  console.log(`peak RSS: the phase process's maxRSS above its RSS when the phase began; bound ${concurrency} x ${partSize / MiB} MiB + constant`);
  console.log('| server | op | path | MiB/s | vs bare SDK | peak RSS above start |');
  console.log('|---|---|---|---:|---:|---:|');
  for (const r of rows) {
    const bare = rows.find((b) => b.server === r.server && b.op === r.op && b.path === 'bare SDK')!;
    const runs = r.mibps.map((x) => x.toFixed(0)).join(', ');
    console.log(`| ${r.server} | ${r.op} | ${r.path} | ${mean(r.mibps).toFixed(1)} (${runs}) | ${(mean(r.mibps) / mean(bare.mibps)).toFixed(2)}x | ${Math.max(...r.rss).toFixed(0)} MiB |`);
  }
}
