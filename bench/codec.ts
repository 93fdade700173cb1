// `npm run bench -- codec`: the chunk codec through CodecPool (1 and 2 workers) on a real SQLite database of
// mixed content, at chunk sizes of 64 KiB, 256 KiB and 1 MiB: encode and decode throughput (MiB/s of raw
// bytes), compression ratio, and the main thread's event-loop delay while encoding. The peer, in the same
// run: node:crypto SHA-256 plus zstd-napi's compress() on the main thread, yielding between chunks.
//
// Options: --size 256 (MiB of database), --level 1. The database is kept in .bench/ between runs.
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { compress, decompress } from 'zstd-napi';
import { maxEncodedSize } from '../src/chunk/codec.ts';
import { CodecPool, allocTransferable } from '../src/chunk/pool.ts';
import { KiB, MiB, codecDefaults } from '../src/config/defaults.ts';
import type { ExtentCodec } from '../src/vault/model.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const words = 'page chunk pack vault snapshot manifest restore digest the of and to in order customer invoice status shipped pending total amount note address city street region product quantity price discount'.split(' ');

/**
 * A database of about `bytes` with the content mix of an application database: prose-like text, JSON
 * documents, integers and reals, and blobs (a third random, the rest structured), with two indexes.
 */
function createMixedDatabase(path: string, bytes: number): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = off');
    db.pragma('synchronous = off');
    db.exec(`CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, note TEXT, doc TEXT, qty INTEGER, total REAL, payload BLOB);
             CREATE INDEX orders_customer ON orders(customer);
             CREATE INDEX orders_total ON orders(total);`);
    const insert = db.prepare('INSERT INTO orders(customer, note, doc, qty, total, payload) VALUES (?, ?, ?, ?, ?, ?)');
    // mulberry32: deterministic, and in 32-bit integer arithmetic (a float LCG loses its low bits and cycles).
    let seed = 12345;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = () => words[Math.floor(rand() * words.length)]!;
    const batch = db.transaction((rows: number) => {
      for (let r = 0; r < rows; r++) {
        const note = Array.from({ length: 20 + Math.floor(rand() * 80) }, pick).join(' ');
        const doc = JSON.stringify({ status: pick(), city: pick(), items: Array.from({ length: 1 + Math.floor(rand() * 5) }, () => ({ sku: Math.floor(rand() * 1e6), qty: Math.floor(rand() * 9) })) });
        let payload: Buffer | null = null;
        const kind = rand();
        if (kind < 0.33) payload = randomBytes(100 + Math.floor(rand() * 900));
        else if (kind < 0.66) payload = Buffer.alloc(200 + Math.floor(rand() * 800), `${pick()}:${Math.floor(rand() * 1000)};`);
        insert.run(`${pick()}-${Math.floor(rand() * 50_000)}`, note, doc, Math.floor(rand() * 1000), Math.round(rand() * 1e6) / 100, payload);
      }
    });
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    while ((db.pragma('page_count', { simple: true }) as number) * pageSize < bytes) batch(10_000);
  } finally {
    db.close();
  }
}

function database(sizeMiB: number): string {
  const dir = fileURLToPath(new URL('../.bench/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `codec-mixed-${sizeMiB}MiB.db`);
  if (!existsSync(path)) {
    const partial = `${path}.partial`;
    rmSync(partial, { force: true });
    process.stderr.write(`creating a ${sizeMiB} MiB database of mixed content...\n`);
    createMixedDatabase(partial, sizeMiB * MiB);
    renameSync(partial, path);
  }
  return path;
}

interface Encoded {
  /** Encoded chunks, chunk i at i * stride. */
  store: Buffer;
  stride: number;
  codecs: ExtentCodec[];
  lengths: number[];
  digests: Buffer[];
}

interface Run {
  ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  encodedBytes: number;
}

/** Runs `body` with the event-loop delay monitored; returns its duration and the delay's p99 and max. */
async function timed(body: () => Promise<void>): Promise<Omit<Run, 'encodedBytes'>> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const start = performance.now();
  await body();
  const ms = performance.now() - start;
  histogram.disable();
  return { ms, loopP99Ms: histogram.percentile(99) / 1e6, loopMaxMs: histogram.max / 1e6 };
}

/**
 * Feeds `count` jobs through the pool from a ring of reused buffers, as the snapshot and restore pipelines
 * will: a job starts when a buffer pair comes back.
 */
async function pipeline(
  count: number,
  buffers: number,
  inputSize: number,
  outputSize: number,
  start: (i: number, input: Buffer, output: Buffer) => Promise<{ input: Buffer; output: Buffer }>,
): Promise<void> {
  const free = Array.from({ length: buffers }, () => ({ input: allocTransferable(inputSize), output: allocTransferable(outputSize) }));
  let next = 0;
  let inFlight = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (free.length > 0 && next < count) {
        const pair = free.pop()!;
        inFlight++;
        start(next++, pair.input, pair.output).then((r) => {
          free.push({ input: Buffer.from(r.input.buffer), output: Buffer.from(r.output.buffer) });
          inFlight--;
          if (next === count && inFlight === 0) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
}

async function poolRun(file: Buffer, chunkSize: number, workers: number, level: number, encoded: Encoded): Promise<{ encode: Run; decodeMs: number }> {
  const pool = CodecPool.create({ workers, level });
  try {
    await pool.ready();
    const count = Math.ceil(file.length / chunkSize);
    const buffers = workers * codecDefaults.jobsPerWorker + 2;
    let encodedBytes = 0;
    const encode = await timed(() =>
      pipeline(count, buffers, chunkSize, encoded.stride, async (i, input, output) => {
        const raw = file.subarray(i * chunkSize, (i + 1) * chunkSize);
        raw.copy(input);
        const r = await pool.encode({ input: input.subarray(0, raw.length), output });
        encodedBytes += r.length;
        r.output.copy(encoded.store, i * encoded.stride, 0, r.length);
        encoded.codecs[i] = r.codec;
        encoded.lengths[i] = r.length;
        encoded.digests[i] = r.digest;
        return r;
      }),
    );
    const decode = await timed(() =>
      pipeline(count, buffers, encoded.stride, chunkSize, async (i, input, output) => {
        const length = encoded.lengths[i]!;
        const rawLength = Math.min(chunkSize, file.length - i * chunkSize);
        if (length === 0) return { input, output }; // a zero chunk: nothing stored, nothing to decode
        encoded.store.copy(input, 0, i * encoded.stride, i * encoded.stride + length);
        const r = await pool.decode({ encoded: input.subarray(0, length), codec: encoded.codecs[i]!, output: output.subarray(0, rawLength), digest: encoded.digests[i]! });
        return { input: r.encoded, output: r.output };
      }),
    );
    return { encode: { ...encode, encodedBytes }, decodeMs: decode.ms };
  } finally {
    await pool.close();
  }
}

/** The peer: digest and compress on the main thread with zstd-napi's one-call API, yielding between chunks. */
async function mainThreadRun(file: Buffer, chunkSize: number, level: number): Promise<{ encode: Run; decodeMs: number }> {
  const frames: Buffer[] = [];
  let encodedBytes = 0;
  const encode = await timed(async () => {
    for (let offset = 0; offset < file.length; offset += chunkSize) {
      const raw = file.subarray(offset, offset + chunkSize);
      createHash('sha256').update(raw).digest();
      const frame = compress(raw, { compressionLevel: level });
      encodedBytes += Math.min(frame.length, raw.length);
      frames.push(frame);
      await yieldToLoop();
    }
  });
  const decode = await timed(async () => {
    for (const frame of frames) {
      createHash('sha256').update(decompress(frame)).digest();
      await yieldToLoop();
    }
  });
  return { encode: { ...encode, encodedBytes }, decodeMs: decode.ms };
}

async function main(): Promise<void> {
  const sizeMiB = Number(arg('--size', '256'));
  const level = Number(arg('--level', String(codecDefaults.level)));
  const path = database(sizeMiB);
  const file = readFileSync(path);
  const fileMiB = file.length / MiB;
  const rows: string[][] = [];
  for (const chunkSize of [64 * KiB, 256 * KiB, 1 * MiB]) {
    const count = Math.ceil(file.length / chunkSize);
    const stride = maxEncodedSize(chunkSize);
    // Allocated and touched before any timing: page faults belong to no measurement.
    const encoded: Encoded = { store: Buffer.alloc(count * stride), stride, codecs: [], lengths: [], digests: [] };
    const peer = await mainThreadRun(file, chunkSize, level);
    const results: [string, { encode: Run; decodeMs: number }][] = [];
    for (const workers of [1, 2]) results.push([`pool, ${workers} worker${workers > 1 ? 's' : ''}`, await poolRun(file, chunkSize, workers, level, encoded)]);
    results.push(['main thread (peer)', peer]);
    for (const [name, r] of results) {
      rows.push([
        `${chunkSize / KiB} KiB`,
        name,
        `${(fileMiB / (r.encode.ms / 1000)).toFixed(0)} MiB/s`,
        `${(peer.encode.ms / r.encode.ms).toFixed(2)}x`,
        (file.length / r.encode.encodedBytes).toFixed(2),
        `${(fileMiB / (r.decodeMs / 1000)).toFixed(0)} MiB/s`,
        `${r.encode.loopP99Ms.toFixed(1)} ms`,
        `${r.encode.loopMaxMs.toFixed(1)} ms`,
      ]);
    }
  }
  const header = ['chunk', 'path', 'encode', 'encode vs peer', 'ratio', 'decode+verify', 'loop delay p99', 'loop delay max'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(`database: ${fileMiB.toFixed(0)} MiB of mixed content, warm in memory; zstd level ${level}; one run each`);
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log('encode = SHA-256 + zero check + zstd (raw if not < 97%), MiB/s of raw bytes; loop delay while encoding (goal: p99 < 20 ms)');
}

await main();
