// The snapshot pipeline: page batches -> chunker -> codec workers (digest, zero check, zstd) -> dedup -> pack
// writer, with each chunk's place recorded in the builder.
//
// Memory is bounded by buffer pools (chunk buffers, encode buffers, part buffers); when uploads are slow
// the pools run dry, the chunker waits for a buffer, the next batch is not asked for, and so
// sqlite3_backup_step is not called: the upload pipeline throttles the backup.
import type { Logger } from 'pino';
import { codecDefaults, snapshotDefaults } from '../config/defaults.ts';
import { maxEncodedSize } from '../chunk/codec.ts';
import { CodecPool, returnedBuffers } from '../chunk/pool.ts';
import type { PageBatch } from '../source/page-source.ts';
import type { StorageClient, StorageEventListener } from '../storage/client.ts';
import { BufferPool } from '../util/buffer-pool.ts';
import type { SnapshotBuilder } from './builder.ts';
import { Chunker, type Emission } from './chunker.ts';
import type { DedupIndex } from './dedup.ts';
import { ZERO } from './locations.ts';
import { PackWriter } from './pack-writer.ts';

export interface PipelineOptions {
  storage: StorageClient;
  snapshotId: string;
  pageSize: number;
  chunkPages: number;
  index: DedupIndex;
  builder: SnapshotBuilder;
  workers: number;
  compressionLevel: number;
  /** Multipart parts uploaded at once, part size, and bytes of part buffers (the upload side's memory bound). */
  uploadConcurrency: number;
  partSize: number;
  maxBytesInFlight: number;
  /** Aborted by the caller, or by the pipeline itself on its first failure (see `fail`). */
  signal: AbortSignal;
  /** Called once, with the pipeline's first failure: the caller aborts `signal` with it. */
  fail: (err: Error) => void;
  log: Logger;
  /** Before each batch is chunked (restarted: the backup began again before it). */
  onBatch?: (restarted: boolean) => void;
  onProgress?: (p: { pagesRead: number; bytesUploaded: number }) => void;
}

export class SnapshotPipeline {
  readonly #o: PipelineOptions;
  readonly #codec: CodecPool;
  readonly #chunkPool: BufferPool;
  readonly #encodePool: BufferPool;
  readonly #packer: PackWriter;
  readonly #chunker: Chunker;
  readonly #inFlight = new Set<Promise<void>>();
  #failure: Error | undefined;
  #pagesRead = 0;
  #uploadedParts = 0;

  constructor(options: PipelineOptions) {
    this.#o = options;
    const { pageSize, chunkPages, signal } = options;
    const chunkBytes = chunkPages * pageSize;
    this.#codec = CodecPool.create({ workers: options.workers, level: options.compressionLevel });
    // Enough chunks in flight that encodes queue up into batches of codecDefaults.batchBytes per message.
    const encodesInFlight = this.#codec.workers * codecDefaults.jobsPerWorker * Math.max(1, Math.floor(codecDefaults.batchBytes / chunkBytes)) + 1;
    this.#chunkPool = new BufferPool(encodesInFlight + 6, chunkBytes);
    this.#encodePool = new BufferPool(encodesInFlight, maxEncodedSize(chunkBytes));
    const onEvent: StorageEventListener = (event) => {
      if (event.type === 'part') {
        this.#uploadedParts += event.bytes;
        this.#progress();
      } else if (event.type === 'aborted-upload') {
        options.log.debug({ key: event.key, supported: event.supported }, 'aborted the multipart upload of a pack');
      } else if (event.type === 'abort-failed') {
        options.log.warn({ key: event.key, err: event.error.message }, 'could not abort the multipart upload of a pack');
      }
    };
    this.#packer = new PackWriter({
      storage: options.storage,
      snapshotId: options.snapshotId,
      // Packs hold whole chunks of about packSpan bytes of the database.
      spanPages: Math.max(chunkPages, Math.floor(snapshotDefaults.packSpan / pageSize / chunkPages) * chunkPages),
      parts: new BufferPool(Math.max(2, Math.floor(options.maxBytesInFlight / options.partSize)), options.partSize),
      partsInFlight: options.uploadConcurrency,
      signal,
      onEvent,
    });
    this.#chunker = new Chunker({
      pageSize,
      chunkPages,
      pool: this.#chunkPool,
      signal,
      emit: async (e) => {
        const out = await this.#encodePool.acquire(signal);
        const job = this.#store(e, out, options.builder.epoch).catch((err: unknown) => this.#fail(err));
        this.#inFlight.add(job);
        void job.then(() => this.#inFlight.delete(job));
      },
    });
  }

  /** Bytes of the packs completed. */
  get bytesUploaded(): number {
    return this.#packer.bytesUploaded;
  }

  /** Keys of the packs this snapshot wrote, in creation order. */
  get packKeys(): string[] {
    return this.#packer.keys;
  }

  /** Chunks every batch of `pages`. A restarted batch supersedes everything chunked and recorded before it. */
  async copy(pages: AsyncIterable<PageBatch>): Promise<void> {
    for await (const batch of pages) {
      this.#throwIfFailed();
      this.#o.onBatch?.(batch.restarted);
      if (batch.restarted) {
        this.#chunker.restart();
        this.#o.builder.restart();
        this.#pagesRead = 0;
        this.#o.log.info({ id: this.#o.snapshotId }, 'the backup restarted; chunks are emitted again (unchanged ones are not uploaded twice)');
      }
      await this.#chunker.addPages(batch.pageNumbers, batch.data, batch.count);
      this.#pagesRead += batch.count;
      this.#progress();
    }
  }

  /** The copy ended with `pageCount` pages: emits what is open, waits for every store, completes the packs. */
  async finish(pageCount: number): Promise<void> {
    await this.#chunker.finish(pageCount);
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    this.#throwIfFailed();
    await this.#packer.finish();
    for (const [key, size] of this.#packer.sizes) this.#o.index.pack(key, size);
  }

  /** Aborts the pack uploads (after a failure or an abort). Never rejects. */
  async abort(reason: unknown): Promise<void> {
    await this.#packer.abort(reason);
  }

  /** Releases the buffers and stops the codec workers. */
  async close(): Promise<void> {
    this.#chunker.dispose();
    await this.#codec.close();
  }

  async #store(e: Emission, encodeBuffer: Buffer, epoch: number): Promise<void> {
    const { index, pageSize } = this.#o;
    const rawLength = e.pageCount * pageSize;
    let raw: Buffer = e.buffer;
    let out: Buffer = encodeBuffer;
    try {
      // A chunk the parent stored with this digest is digested, not compressed again.
      const hint = e.kind === 'chunk' ? index.parentChunk(e.index, rawLength) : undefined;
      const r = await this.#codec.encode({ input: raw.subarray(0, rawLength), output: out, ...(hint ? { knownDigest: hint.digest } : {}) });
      // The buffers travelled to a worker and back: from here on, use (and release) the returned views.
      raw = r.input;
      out = r.output;
      let at = ZERO;
      let upload = false;
      if (!r.zero) {
        at = r.known ? hint!.at : index.find(r.digest, rawLength);
        if (at < 0) {
          const placed = await this.#packer.append(e.firstPage, out.subarray(0, r.length));
          at = index.add({ pack: index.pack(placed.key), offset: placed.offset, length: r.length, rawLength, codec: r.codec, digest: r.digest });
          upload = true;
        }
      }
      // A store begun before a restart is superseded: its chunk comes again.
      this.#o.builder.record(e, at, upload, epoch);
    } catch (err) {
      const back = returnedBuffers(err);
      if (back) {
        raw = back.input;
        out = back.output;
      }
      throw err;
    } finally {
      this.#chunkPool.release(raw);
      this.#encodePool.release(out);
    }
  }

  #fail(err: unknown): void {
    if (this.#failure) return;
    this.#failure = err instanceof Error ? err : new Error(String(err));
    this.#o.fail(this.#failure);
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  /** The first failure of a store, if any. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  #progress(): void {
    this.#o.onProgress?.({ pagesRead: this.#pagesRead, bytesUploaded: this.#uploadedParts });
  }
}
