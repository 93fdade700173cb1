// The chunker: turns the page source's batches into fixed chunks (runs of chunkPages pages) and patches.
//
// SQLite's backup writes pages 2..N in about ascending order and page 1 last, inside the final step. A chunk
// is emitted as soon as all of its pages have arrived (the lock page never arrives and stays zero), so only a
// few chunks are open at once: chunk 0, waiting for page 1, and the one being filled. Whatever is still open
// when the source ends is emitted then, cut to the final page count. A page that arrives for a chunk already
// emitted (an application connection wrote it again) cannot be merged into bytes already uploaded: it goes
// into a patch, a run of consecutive pages emitted as a later, smaller extent that overrides the chunk's copy.
import { GiB } from '../config/defaults.ts';
import type { BufferPool } from '../util/buffer-pool.ts';
import { BugError, SourceError } from '../errors.ts';

export interface Emission {
  kind: 'chunk' | 'patch';
  /** Fixed chunk index for 'chunk'; for 'patch', the sequence number among patches. */
  index: number;
  firstPage: number;
  pageCount: number;
  /** A pool buffer holding pageCount pages from its start; the receiver releases it to the pool. */
  buffer: Buffer;
}

interface OpenChunk {
  index: number;
  buffer: Buffer;
  received: Uint8Array;
  count: number;
}

interface OpenPatch {
  firstPage: number;
  pageCount: number;
  buffer: Buffer;
}

/** Chunks open at once before the oldest is emitted as it is (missing pages zero; they then come as patches). */
const MAX_OPEN_CHUNKS = 4;

export class Chunker {
  readonly pageSize: number;
  readonly chunkPages: number;
  readonly #pool: BufferPool;
  readonly #emit: (e: Emission) => Promise<void>;
  readonly #signal: AbortSignal | undefined;
  readonly #lockPage: number;
  readonly #open = new Map<number, OpenChunk>();
  #emitted = new Uint8Array(1024);
  /** Chunks emitted with all chunkPages pages before the end was known. */
  readonly #wholeEmitted = new Set<number>();
  #patch: OpenPatch | undefined;
  #patches = 0;
  #lastPatchedPage = 0;

  constructor(options: {
    pageSize: number;
    chunkPages: number;
    pool: BufferPool;
    emit: (e: Emission) => Promise<void>;
    signal?: AbortSignal;
  }) {
    this.pageSize = options.pageSize;
    this.chunkPages = options.chunkPages;
    this.#pool = options.pool;
    this.#emit = options.emit;
    this.#signal = options.signal;
    if (this.#pool.size < this.pageSize * this.chunkPages) {
      throw new BugError(`chunk buffers of ${this.#pool.size} bytes cannot hold ${this.chunkPages} pages of ${this.pageSize}`);
    }
    this.#lockPage = Math.floor(GiB / this.pageSize) + 1;
  }

  /** Patches emitted so far: when any, the final content of some chunks is known only as chunk + patches. */
  get patchCount(): number {
    return this.#patches;
  }

  /**
   * Adds the first `count` pages of a page source batch (page i is numbered pageNumbers[i] and is
   * data[i * pageSize, (i + 1) * pageSize)), copied: the caller may reuse the batch once this resolves. A page
   * that only fills a slot of an open chunk is copied at once; only a page that opens, completes or patches a
   * chunk goes through add(), which may wait for a buffer.
   */
  async addPages(pageNumbers: ArrayLike<number>, data: Buffer, count: number): Promise<void> {
    const ps = this.pageSize;
    for (let i = 0; i < count; i++) {
      const pageNumber = pageNumbers[i]!;
      const chunk = this.#open.get(Math.floor((pageNumber - 1) / this.chunkPages));
      const slot = (pageNumber - 1) % this.chunkPages;
      if (chunk !== undefined && (chunk.received[slot] || chunk.count + 1 < this.#expectedPages(chunk.index))) {
        data.copy(chunk.buffer, slot * ps, i * ps, (i + 1) * ps);
        if (!chunk.received[slot]) {
          chunk.received[slot] = 1;
          chunk.count++;
        }
      } else {
        await this.add(pageNumber, data.subarray(i * ps, (i + 1) * ps));
      }
    }
  }

  /** Adds one page (copied; `page` may be reused by the caller as soon as this resolves). */
  async add(pageNumber: number, page: Uint8Array): Promise<void> {
    const index = Math.floor((pageNumber - 1) / this.chunkPages);
    if (index < this.#emitted.length && this.#emitted[index]) return this.#addToPatch(pageNumber, page);
    let chunk = this.#open.get(index);
    if (!chunk) chunk = await this.#openChunk(index);
    const slot = (pageNumber - 1) % this.chunkPages;
    chunk.buffer.set(page, slot * this.pageSize);
    if (!chunk.received[slot]) {
      chunk.received[slot] = 1;
      chunk.count++;
    }
    if (chunk.count === this.#expectedPages(index)) await this.#emitChunk(chunk, this.chunkPages);
  }

  /**
   * The source ended with `pageCount` pages: emits what is still open, cut to that count. Throws if a chunk
   * already emitted whole lies past the end (the database shrank mid-snapshot without a restart).
   */
  async finish(pageCount: number): Promise<void> {
    await this.#flushPatch();
    for (const index of [...this.#open.keys()].sort((a, b) => a - b)) {
      const chunk = this.#open.get(index)!;
      const first = index * this.chunkPages;
      if (first >= pageCount) {
        this.#open.delete(index);
        this.#pool.release(chunk.buffer);
      } else {
        await this.#emitChunk(chunk, Math.min(this.chunkPages, pageCount - first));
      }
    }
    const past = [...this.#wholeEmitted].find((i) => (i + 1) * this.chunkPages > pageCount);
    if (past !== undefined || this.#lastPatchedPage > pageCount) {
      throw new SourceError(
        'SOURCE_SHRANK',
        `the database shrank to ${pageCount} pages after pages past that had been uploaded; run the snapshot again`,
      );
    }
  }

  /** The backup restarted: every page comes again. Drops what is open and forgets what was emitted. */
  restart(): void {
    for (const chunk of this.#open.values()) this.#pool.release(chunk.buffer);
    this.#open.clear();
    if (this.#patch) this.#pool.release(this.#patch.buffer);
    this.#patch = undefined;
    this.#emitted.fill(0);
    this.#wholeEmitted.clear();
    this.#patches = 0;
    this.#lastPatchedPage = 0;
  }

  /** Releases every buffer still held (after a failure). */
  dispose(): void {
    this.restart();
  }

  #expectedPages(index: number): number {
    const first = index * this.chunkPages + 1;
    const last = first + this.chunkPages - 1;
    return this.#lockPage >= first && this.#lockPage <= last ? this.chunkPages - 1 : this.chunkPages;
  }

  async #openChunk(index: number): Promise<OpenChunk> {
    if (this.#open.size >= MAX_OPEN_CHUNKS) {
      // Pages are far out of order: emit the lowest open chunk but chunk 0 (which waits for page 1) as it is.
      const oldest = [...this.#open.keys()].filter((i) => i !== 0).sort((a, b) => a - b)[0];
      if (oldest !== undefined) await this.#emitChunk(this.#open.get(oldest)!, this.chunkPages);
    }
    const buffer = await this.#pool.acquire(this.#signal);
    buffer.fill(0, 0, this.chunkPages * this.pageSize);
    const chunk = { index, buffer, received: new Uint8Array(this.chunkPages), count: 0 };
    this.#open.set(index, chunk);
    return chunk;
  }

  async #emitChunk(chunk: OpenChunk, pageCount: number): Promise<void> {
    this.#open.delete(chunk.index);
    if (chunk.index >= this.#emitted.length) {
      const grown = new Uint8Array(Math.max(chunk.index + 1, this.#emitted.length * 2));
      grown.set(this.#emitted);
      this.#emitted = grown;
    }
    this.#emitted[chunk.index] = 1;
    if (pageCount === this.chunkPages) this.#wholeEmitted.add(chunk.index);
    await this.#emit({
      kind: 'chunk',
      index: chunk.index,
      firstPage: chunk.index * this.chunkPages + 1,
      pageCount,
      buffer: chunk.buffer,
    });
  }

  async #addToPatch(pageNumber: number, page: Uint8Array): Promise<void> {
    const p = this.#patch;
    if (p && pageNumber >= p.firstPage && pageNumber <= p.firstPage + p.pageCount) {
      if (pageNumber === p.firstPage + p.pageCount) {
        if (p.pageCount === this.chunkPages) {
          await this.#flushPatch();
          return this.#addToPatch(pageNumber, page);
        }
        p.pageCount++;
      }
      p.buffer.set(page, (pageNumber - p.firstPage) * this.pageSize);
      return;
    }
    await this.#flushPatch();
    const buffer = await this.#pool.acquire(this.#signal);
    buffer.set(page, 0);
    this.#patch = { firstPage: pageNumber, pageCount: 1, buffer };
  }

  async #flushPatch(): Promise<void> {
    const p = this.#patch;
    if (!p) return;
    this.#patch = undefined;
    this.#lastPatchedPage = Math.max(this.#lastPatchedPage, p.firstPage + p.pageCount - 1);
    await this.#emit({ kind: 'patch', index: this.#patches++, firstPage: p.firstPage, pageCount: p.pageCount, buffer: p.buffer });
  }
}
