// CodecPool: the chunk codec (codec.ts) in a few worker threads, so that digesting and compressing never
// delay the main thread, which steps the backup and drives the uploads. Buffers are lent, not copied: a
// job's ArrayBuffers are transferred to a worker and back, and the caller reuses them for the next job.
// Jobs wait in one queue on the main thread; each worker holds at most codecDefaults.jobsPerWorker
// messages, and the least busy worker gets the next. Encode jobs queued behind each other go in one message,
// up to codecDefaults.batchBytes of input: a round trip per 64 KiB chunk would cost more than its digest.
// The queue is as long as the caller makes it: a caller bounds its jobs by the buffers it owns, and lets
// the queue grow to batchBytes per message to get batches at all (see encodesInFlight).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as workerThreads from 'node:worker_threads';
import { Worker } from 'node:worker_threads';
import { codecDefaults } from '../config/defaults.ts';
import { AbortedError, BugError, IntegrityError, PagevaultError, UsageError } from '../errors.ts';
import type { ExtentCodec } from '../vault/model.ts';
import { DIGEST_BYTES, checkLevel, maxEncodedSize } from './codec.ts';
import type { CodecMessage, CodecReply, CodecRequest, CodecResult, CodecWorkerData, DecodeItem, SerializedError, TransferredView } from './worker.ts';

export interface CodecPoolOptions {
  /** Worker threads. Default codecDefaults.workers (the cores but one, from 1 to 4). */
  workers?: number;
  /** zstd compression level. Default codecDefaults.level. */
  level?: number;
}

/**
 * A chunk to encode. Both buffers are lent to the pool until the promise settles: their ArrayBuffers are
 * transferred to a worker (detached here) and come back in the result. The caller must not touch them,
 * or any other view of the same ArrayBuffers, while lent. Each must be a standalone ArrayBuffer (see
 * allocTransferable; not a view of Buffer's shared pool) and the two must be different ArrayBuffers.
 */
export interface EncodeJob {
  /** The raw chunk, non-empty. */
  input: Uint8Array;
  /** Receives the encoded bytes; at least maxEncodedSize(input.length) bytes. */
  output: Uint8Array;
  /** The digest of what the vault already holds for this chunk, if anything: a chunk with it is not compressed. */
  knownDigest?: Uint8Array;
}

export interface EncodeResult {
  /** The job's buffers, handed back: same offsets and lengths, over the returned ArrayBuffers. */
  input: Buffer;
  output: Buffer;
  /** SHA-256 of the raw chunk, 32 bytes of its own. */
  digest: Buffer;
  /** All zero: nothing was written to output (length 0), nothing is to be stored. */
  zero: boolean;
  /** The digest is the job's knownDigest: nothing was written to output (length 0), nothing is to be stored. */
  known: boolean;
  codec: ExtentCodec;
  /** Encoded bytes at the start of output. */
  length: number;
}

/** A stored chunk to decode and verify. Buffers are lent as in EncodeJob. */
export interface DecodeJob {
  /** Exactly the stored bytes of the chunk. */
  encoded: Uint8Array;
  codec: ExtentCodec;
  /** Receives the raw chunk; its length must be the chunk's raw length. */
  output: Uint8Array;
  /** The manifest's SHA-256 of the raw chunk (copied, not lent). */
  digest: Uint8Array;
}

export interface DecodeManyJob {
  /** The buffer holding every item's encoded bytes (lent whole). */
  encoded: Uint8Array;
  /** Where the items decode to (lent whole). */
  output: Uint8Array;
  items: DecodeItem[];
}

const failedItemKey = Symbol('pagevault.codecPool.failedItem');

/** decodeMany: the index of the item whose failure the error reports. */
export function failedItem(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null ? (error as { [failedItemKey]?: number })[failedItemKey] : undefined;
}

export interface DecodeResult {
  encoded: Buffer;
  output: Buffer;
}

/** The buffers of a job that failed in a worker (e.g. CHUNK_DIGEST), handed back on its error. */
export interface ReturnedBuffers {
  input: Buffer;
  output: Buffer;
}

/**
 * A Buffer over an ArrayBuffer of its own, which can be lent to a CodecPool (Buffer.allocUnsafe may hand
 * out a slice of a shared pool, which cannot be transferred). Zero-filled; allocate once, reuse.
 */
export function allocTransferable(size: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new UsageError('BAD_OPTION', `buffer size must be a non-negative integer, got ${size}`);
  return Buffer.from(new ArrayBuffer(size));
}

const returned = Symbol('pagevault.codec.returnedBuffers');

/**
 * The buffers a failed encode/decode hands back, read from its rejection (input is the decode job's
 * `encoded`). Undefined when the buffers are lost: the worker crashed or the pool closed while lent.
 */
export function returnedBuffers(error: unknown): ReturnedBuffers | undefined {
  return typeof error === 'object' && error !== null ? (error as { [returned]?: ReturnedBuffers })[returned] : undefined;
}

/** Test hook: the live Worker objects, so a test can terminate one as if it had crashed. */
export const testHooks: unique symbol = Symbol('pagevault.codecPool.testHooks');

interface Job {
  id: number;
  request: CodecRequest;
  resolve: (result: CodecResult) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Ids of the jobs posted to this worker and not yet answered. */
  jobs: Set<number>;
  /** Messages posted to this worker and not yet answered (each carries one job or a batch of encodes). */
  messages: number;
  started: boolean;
  lastError?: unknown;
}

// Node >= 21 can tell whether an ArrayBuffer can be transferred; on Node 20 a pooled one is copied silently.
const isMarkedAsUntransferable = (workerThreads as { isMarkedAsUntransferable?: (o: object) => boolean }).isMarkedAsUntransferable;

export class CodecPool {
  readonly workers: number;
  readonly level: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  readonly #jobs = new Map<number, Job>();
  readonly #lent = new WeakSet<ArrayBuffer>();
  readonly #started: Promise<void>;
  #markStarted!: () => void;
  #markFailed!: (error: Error) => void;
  #nextId = 1;
  #next = 0;
  #failure: Error | undefined;

  static create(options: CodecPoolOptions = {}): CodecPool {
    const workers = options.workers ?? codecDefaults.workers;
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError('BAD_OPTION', `workers must be an integer from 1 to 64, got ${workers}`);
    const level = options.level ?? codecDefaults.level;
    checkLevel(level);
    return new CodecPool(workers, level);
  }

  private constructor(workers: number, level: number) {
    this.workers = workers;
    this.level = level;
    this.#started = new Promise<void>((resolve, reject) => {
      this.#markStarted = resolve;
      this.#markFailed = reject;
    });
    this.#started.catch(() => {});
    for (let i = 0; i < workers; i++) this.#slots.push(this.#spawn(i));
  }

  /** Resolves once every worker has loaded (jobs may be submitted before); rejects if one failed to start. */
  ready(): Promise<void> {
    return this.#started;
  }

  /**
   * Digests and encodes a chunk in a worker (see encodeChunk). Resolves with the job's buffers handed back;
   * rejects with the worker's error rebuilt (same class and code, buffers on returnedBuffers(error)), with
   * PagevaultError CODEC_WORKER_EXIT if the worker died, or AbortedError if the pool was closed.
   */
  async encode(job: EncodeJob): Promise<EncodeResult> {
    const { input, output, knownDigest } = job;
    checkLendable(input, 'input', 1);
    checkLendable(output, 'output', maxEncodedSize(input.length));
    if (knownDigest !== undefined && (!(knownDigest instanceof Uint8Array) || knownDigest.length !== DIGEST_BYTES)) {
      throw new BugError(`known digest must be ${DIGEST_BYTES} bytes`);
    }
    const request: CodecRequest = {
      id: 0,
      kind: 'encode',
      input: viewOf(input),
      output: viewOf(output),
      // A copy of its own: cloning a view would clone all of the ArrayBuffer under it.
      ...(knownDigest ? { knownDigest: new Uint8Array(knownDigest) } : {}),
    };
    const reply = await this.#submit(request);
    const encoded = reply.encoded!;
    return {
      input: bufferOf(request.input, reply.input),
      output: bufferOf(request.output, reply.output),
      digest: Buffer.from(encoded.digest),
      zero: encoded.zero,
      known: encoded.known,
      codec: encoded.codec,
      length: encoded.length,
    };
  }

  /**
   * Decodes a stored chunk into job.output in a worker and verifies its digest (see decodeChunk). Rejects
   * with IntegrityError CHUNK_DAMAGED or CHUNK_DIGEST (buffers on returnedBuffers(error)), and otherwise
   * as encode().
   */
  async decode(job: DecodeJob): Promise<DecodeResult> {
    const { encoded, output, codec } = job;
    if (codec !== 'zstd' && codec !== 'raw') throw new BugError(`unknown chunk codec ${JSON.stringify(codec)}`);
    if (!(job.digest instanceof Uint8Array) || job.digest.length !== DIGEST_BYTES) {
      throw new BugError(`expected digest must be ${DIGEST_BYTES} bytes`);
    }
    checkLendable(encoded, 'encoded', 1);
    checkLendable(output, 'output', 1);
    // A copy of its own: cloning a view would clone all of the ArrayBuffer under it.
    const digest = new Uint8Array(job.digest);
    const request: CodecRequest = { id: 0, kind: 'decode', input: viewOf(encoded), output: viewOf(output), codec, digest };
    const reply = await this.#submit(request);
    return { encoded: bufferOf(request.input, reply.input), output: bufferOf(request.output, reply.output) };
  }

  /**
   * Decodes several stored chunks that lie in one buffer (a coalesced ranged read) in one worker round trip:
   * item i's bytes at encoded[at, at + length) decode into output[outAt, outAt + rawLength) and are verified
   * against its digest. Stops at the first bad chunk: IntegrityError CHUNK_DAMAGED or CHUNK_DIGEST with the
   * failing item's index on failedItem(error) (buffers on returnedBuffers(error)); otherwise as encode().
   */
  async decodeMany(job: DecodeManyJob): Promise<DecodeResult> {
    const { encoded, output, items } = job;
    checkLendable(encoded, 'encoded', 1);
    checkLendable(output, 'output', 1);
    for (const item of items) {
      if (item.codec !== 'zstd' && item.codec !== 'raw') throw new BugError(`unknown chunk codec ${JSON.stringify(item.codec)}`);
      if (!(item.digest instanceof Uint8Array) || item.digest.length !== DIGEST_BYTES) {
        throw new BugError(`expected digest must be ${DIGEST_BYTES} bytes`);
      }
      if (item.at < 0 || item.at + item.length > encoded.length || item.outAt < 0 || item.outAt + item.rawLength > output.length) {
        throw new BugError('a decodeMany item lies outside its buffers');
      }
    }
    // Digests get buffers of their own: cloning a view would clone all of the ArrayBuffer under it.
    const copies = items.map((item) => ({ ...item, digest: new Uint8Array(item.digest) }));
    const request: CodecRequest = { id: 0, kind: 'decodeMany', input: viewOf(encoded), output: viewOf(output), items: copies };
    const reply = await this.#submit(request);
    return { encoded: bufferOf(request.input, reply.input), output: bufferOf(request.output, reply.output) };
  }

  /**
   * Terminates the workers. Jobs not yet finished reject with AbortedError: queued ones still own their
   * buffers (never lent out); buffers lent to a worker are lost. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#failure === undefined) this.#fail(new AbortedError('codec pool closed'));
    await Promise.all(this.#slots.map((slot) => slot.worker.terminate()));
  }

  [testHooks](): { workers: Worker[] } {
    return { workers: this.#slots.map((slot) => slot.worker) };
  }

  #submit(request: CodecRequest): Promise<CodecResult> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const buffers = [request.input.buffer, request.output.buffer];
    if (buffers[0] === buffers[1]) return Promise.reject(new BugError('a job needs two different ArrayBuffers for its input and output'));
    if (buffers.some((b) => this.#lent.has(b))) return Promise.reject(new BugError('buffer is already lent to the codec pool'));
    for (const b of buffers) this.#lent.add(b);
    return new Promise((resolve, reject) => {
      request.id = this.#nextId++;
      const job: Job = {
        id: request.id,
        request,
        resolve: (reply) => {
          for (const b of buffers) this.#lent.delete(b);
          resolve(reply);
        },
        reject: (error) => {
          for (const b of buffers) this.#lent.delete(b);
          reject(error);
        },
      };
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      // Least busy worker; ties go round-robin.
      let best: Slot | undefined;
      for (let k = 0; k < this.#slots.length; k++) {
        const slot = this.#slots[(this.#next + k) % this.#slots.length]!;
        if (slot.messages < codecDefaults.jobsPerWorker && (best === undefined || slot.messages < best.messages)) best = slot;
      }
      if (best === undefined) return;
      this.#next = (this.#slots.indexOf(best) + 1) % this.#slots.length;
      const batch = [this.#queue.shift()!];
      if (batch[0]!.request.kind === 'encode') {
        let bytes = batch[0]!.request.input.length;
        for (let next = this.#queue[0]; next?.request.kind === 'encode' && bytes + next.request.input.length <= codecDefaults.batchBytes; next = this.#queue[0]) {
          bytes += next.request.input.length;
          batch.push(this.#queue.shift()!);
        }
      }
      const transfer: ArrayBuffer[] = [];
      for (const job of batch) {
        this.#jobs.set(job.id, job);
        best.jobs.add(job.id);
        transfer.push(job.request.input.buffer, job.request.output.buffer);
      }
      best.messages++;
      best.worker.ref();
      try {
        best.worker.postMessage({ requests: batch.map((job) => job.request) } satisfies CodecMessage, transfer);
      } catch (error) {
        best.messages--;
        for (const job of batch) {
          best.jobs.delete(job.id);
          this.#jobs.delete(job.id);
          job.reject(new BugError(`cannot lend buffers to a codec worker: ${(error as Error).message}`, { cause: error }));
        }
      }
    }
  }

  #spawn(index: number): Slot {
    const workerData: CodecWorkerData = { level: this.level };
    const entry = workerEntry();
    const resourceLimits = { maxYoungGenerationSizeMb: codecDefaults.workerYoungGenerationMb };
    // Node 20 does not apply --import hooks given in a worker's execArgv, so a worker.ts is loaded by a
    // bootstrap that registers tsx in the worker itself.
    const worker = entry.pathname.endsWith('.ts')
      ? new Worker(`import(${JSON.stringify(tsxApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`, { eval: true, workerData, resourceLimits })
      : new Worker(entry, { workerData, resourceLimits });
    worker.unref();
    const slot: Slot = { worker, jobs: new Set(), messages: 0, started: false };
    worker.on('message', (reply: CodecReply) => this.#onReply(slot, reply));
    worker.on('error', (error) => {
      slot.lastError = error;
    });
    worker.on('exit', (code) => this.#onExit(slot, index, code));
    return slot;
  }

  #onReply(slot: Slot, reply: CodecReply): void {
    if (reply.type === 'ready') {
      slot.started = true;
      if (this.#slots.every((s) => s.started)) this.#markStarted();
      return;
    }
    // After close() or a failure every job is settled already, and terminate() still needs the worker's ref.
    if (this.#failure !== undefined) return;
    slot.messages--;
    for (const result of reply.results) {
      const job = this.#jobs.get(result.id);
      if (job === undefined) continue;
      this.#jobs.delete(result.id);
      slot.jobs.delete(result.id);
      if (result.error === undefined) {
        job.resolve(result);
      } else {
        const error = rebuildError(result.error);
        if (result.error.item !== undefined) Object.defineProperty(error, failedItemKey, { value: result.error.item });
        const buffers: ReturnedBuffers = { input: bufferOf(job.request.input, result.input), output: bufferOf(job.request.output, result.output) };
        Object.defineProperty(error, returned, { value: buffers });
        job.reject(error);
      }
    }
    if (slot.messages === 0) slot.worker.unref();
    this.#dispatch();
  }

  #onExit(slot: Slot, index: number, code: number): void {
    if (this.#failure !== undefined) return;
    const cause = slot.lastError;
    const detail = cause instanceof Error ? `: ${cause.message}` : '';
    if (!slot.started) {
      // A worker that cannot load would fail again if replaced: the pool is broken.
      this.#fail(new PagevaultError('CODEC_WORKER_START', `codec worker failed to start (exit code ${code})${detail}`, { cause }));
      void this.close();
      return;
    }
    for (const id of slot.jobs) {
      const job = this.#jobs.get(id)!;
      this.#jobs.delete(id);
      job.reject(new PagevaultError('CODEC_WORKER_EXIT', `codec worker exited with code ${code} while holding this job; its buffers are lost${detail}`, { cause }));
    }
    this.#slots[index] = this.#spawn(index);
    this.#dispatch();
  }

  /** Rejects every job, queued or lent, and every later one, with `error`. */
  #fail(error: Error): void {
    this.#failure = error;
    this.#markFailed(error);
    for (const job of [...this.#queue, ...this.#jobs.values()]) job.reject(error);
    this.#queue.length = 0;
    this.#jobs.clear();
    for (const slot of this.#slots) {
      slot.jobs.clear();
      slot.messages = 0;
    }
  }
}

function checkLendable(view: Uint8Array, name: string, minLength: number): void {
  if (!(view instanceof Uint8Array)) throw new BugError(`${name} must be a Uint8Array or Buffer`);
  if (!(view.buffer instanceof ArrayBuffer)) throw new BugError(`${name} must be backed by an ArrayBuffer, not a SharedArrayBuffer`);
  if (view.length < minLength) {
    // A lent (detached) buffer's views have length 0.
    throw new BugError(`${name} has ${view.length} bytes, needs at least ${minLength}${view.buffer.byteLength === 0 ? ' (is it still lent to the pool?)' : ''}`);
  }
  if (isMarkedAsUntransferable?.(view.buffer)) throw new BugError(`${name} is a view of Buffer's shared pool; allocate it with allocTransferable()`);
}

function viewOf(view: Uint8Array): TransferredView {
  return { buffer: view.buffer as ArrayBuffer, offset: view.byteOffset, length: view.length };
}

function bufferOf(view: TransferredView, buffer: ArrayBuffer): Buffer {
  return Buffer.from(buffer, view.offset, view.length);
}

/** Rebuilds a worker's error as the same class and code on this thread. */
function rebuildError(e: SerializedError): Error {
  const code = e.code ?? 'CODEC_FAILED';
  switch (e.name) {
    case 'IntegrityError':
      return new IntegrityError(code, e.message);
    case 'UsageError':
      return new UsageError(code, e.message);
    case 'BugError':
      return new BugError(e.message);
    default:
      return new PagevaultError(code, `codec worker: ${e.name}: ${e.message}`);
  }
}

let entryUrl: URL | undefined;

/** worker.js next to the compiled pool, or worker.ts when running from source under tsx. */
function workerEntry(): URL {
  if (entryUrl === undefined) {
    const own = import.meta.url.endsWith('.ts') ? ['worker.ts', 'worker.js'] : ['worker.js', 'worker.ts'];
    const found = own.map((name) => new URL(`./${name}`, import.meta.url)).find((url) => existsSync(fileURLToPath(url)));
    if (found === undefined) throw new PagevaultError('CODEC_WORKER_START', `codec worker not found next to ${fileURLToPath(import.meta.url)}`);
    entryUrl = found;
  }
  return entryUrl;
}

function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch (error) {
    throw new PagevaultError('CODEC_WORKER_START', 'running from TypeScript sources needs tsx to load the codec worker', { cause: error });
  }
}
