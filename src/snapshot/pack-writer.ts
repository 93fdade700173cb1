// The pack writer: appends encoded chunks to pack objects, each written with one putObject from a stream of
// part buffers taken from a bounded pool of reusable buffers (the store hands each back once it is stored). A
// pack holds the chunks of one span of pages (packSpanBytes of the database), so its key can name that range
// before the first byte is sent; a chunk arriving for a span whose pack is already complete (page 1's chunk,
// patches, chunks after a restart) opens a second pack for the span, with a sequence suffix. When every part
// buffer is in flight, append() waits: that wait is what throttles the backup steps upstream. A pack that never
// fills a part is written with a single PUT when it completes.
import type { StorageClient, StorageEventListener } from '../storage/client.ts';
import type { BufferPool } from '../util/buffer-pool.ts';
import { packKey } from '../vault/layout.ts';

interface OpenPack {
  key: string;
  span: number;
  /** The parts handed to the store, once the first part is full. */
  queue: PartQueue | undefined;
  part: Buffer | undefined;
  fill: number;
  size: number;
}

export interface PackWriterOptions {
  storage: StorageClient;
  snapshotId: string;
  spanPages: number;
  /** Part buffers; their size is the part size. */
  parts: BufferPool;
  partsInFlight: number;
  signal?: AbortSignal;
  onEvent?: StorageEventListener;
}

/** Packs open at once; opening another completes the least recently appended one. */
const MAX_OPEN_PACKS = 2;

export class PackWriter {
  readonly #o: PackWriterOptions;
  readonly #open = new Map<number, OpenPack>();
  readonly #seq = new Map<number, number>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #queues = new Set<PartQueue>();
  /** The pool buffer behind each part handed to the store (the last part of a pack is a view of one). */
  readonly #owners = new Map<Uint8Array, Buffer>();
  /** Stops every pack write: fired by abort() and by the caller's signal. */
  readonly #cancel = new AbortController();
  #failure: Error | undefined;
  #completedBytes = 0;
  /** Keys of every pack this writer created, in creation order. */
  readonly keys: string[] = [];
  /** The size of each pack completed so far, by key. */
  readonly sizes = new Map<string, number>();

  constructor(options: PackWriterOptions) {
    this.#o = options;
    const signal = options.signal;
    if (signal?.aborted) this.#cancel.abort(signal.reason);
    else signal?.addEventListener('abort', () => this.#cancel.abort(signal.reason), { once: true });
  }

  /** Bytes in packs completed so far. */
  get bytesUploaded(): number {
    return this.#completedBytes;
  }

  /**
   * Appends `data` (copied) to the pack of the span holding `firstPage`; returns where it landed. Calls are
   * serialised: one append may wait for a part buffer, and another must not write into the pack meanwhile.
   */
  append(firstPage: number, data: Uint8Array): Promise<{ key: string; offset: number }> {
    const run = this.#appending.then(() => this.#append(firstPage, data));
    this.#appending = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  #appending: Promise<void> = Promise.resolve();

  async #append(firstPage: number, data: Uint8Array): Promise<{ key: string; offset: number }> {
    this.#throwIfFailed();
    const span = Math.floor((firstPage - 1) / this.#o.spanPages);
    let pack = this.#open.get(span);
    if (!pack) pack = this.#openPack(span);
    else {
      // Most recently used last, so the first entry is the one to complete when too many are open.
      this.#open.delete(span);
      this.#open.set(span, pack);
    }
    const offset = pack.size;
    let done = 0;
    while (done < data.length) {
      pack.part ??= await this.#o.parts.acquire(this.#cancel.signal);
      const n = Math.min(data.length - done, pack.part.length - pack.fill);
      pack.part.set(data.subarray(done, done + n), pack.fill);
      pack.fill += n;
      done += n;
      if (pack.fill === pack.part.length) this.#sendPart(pack);
    }
    pack.size += data.length;
    return { key: pack.key, offset };
  }

  /** Completes every open pack and waits for all of them. */
  async finish(): Promise<void> {
    for (const pack of [...this.#open.values()]) this.#complete(pack);
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    this.#throwIfFailed();
  }

  /** Aborts every pack write not yet complete (nothing of it stays visible) and waits for that. Never rejects. */
  async abort(reason: unknown): Promise<void> {
    this.#failure ??= reason instanceof Error ? reason : new Error(String(reason));
    this.#cancel.abort(reason);
    for (const pack of this.#open.values()) {
      if (pack.part) this.#o.parts.release(pack.part);
      pack.part = undefined;
    }
    this.#open.clear();
    for (const queue of this.#queues) queue.close();
    await Promise.allSettled([...this.#pending]);
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  #openPack(span: number): OpenPack {
    if (this.#open.size >= MAX_OPEN_PACKS) this.#complete(this.#open.values().next().value!);
    const seq = (this.#seq.get(span) ?? -1) + 1;
    this.#seq.set(span, seq);
    const first = span * this.#o.spanPages + 1;
    const key = packKey(this.#o.snapshotId, first, first + this.#o.spanPages - 1, seq);
    this.keys.push(key);
    const pack: OpenPack = { key, span, queue: undefined, part: undefined, fill: 0, size: 0 };
    this.#open.set(span, pack);
    return pack;
  }

  /** Writes `body` at `key`; the writer fails with the first error of any pack. */
  #write(key: string, body: Uint8Array | PartQueue, done: () => void): void {
    const written = this.#o.storage
      .putObject(key, body, {
        signal: this.#cancel.signal,
        partsInFlight: this.#o.partsInFlight,
        release: (view) => this.#releasePart(view),
        ...(this.#o.onEvent ? { onEvent: this.#o.onEvent } : {}),
      })
      .then(
        (size) => {
          this.#completedBytes += size;
          this.sizes.set(key, size);
        },
        (err: Error) => {
          this.#failure ??= err;
        },
      )
      .finally(done);
    this.#pending.add(written);
    void written.then(() => this.#pending.delete(written));
  }

  #releasePart(view: Uint8Array): void {
    const buffer = this.#owners.get(view);
    if (!buffer) return;
    this.#owners.delete(view);
    this.#o.parts.release(buffer);
  }

  /** Hands the filled part buffer to the pack's write; the buffer returns to the pool once the part is stored. */
  #sendPart(pack: OpenPack): void {
    const part = pack.part!;
    const data = pack.fill === part.length ? part : part.subarray(0, pack.fill);
    pack.part = undefined;
    pack.fill = 0;
    this.#owners.set(data, part);
    if (!pack.queue) {
      const queue = new PartQueue((view) => this.#releasePart(view));
      pack.queue = queue;
      this.#queues.add(queue);
      this.#write(pack.key, queue, () => this.#queues.delete(queue));
    }
    pack.queue.push(data);
  }

  #complete(pack: OpenPack): void {
    this.#open.delete(pack.span);
    if (pack.queue) {
      if (pack.fill > 0) this.#sendPart(pack);
      else if (pack.part) this.#o.parts.release(pack.part);
      pack.queue.end();
      return;
    }
    // Never filled a part: one PUT of what there is.
    const part = pack.part ?? Buffer.alloc(0);
    const data = part.subarray(0, pack.fill);
    pack.part = undefined;
    this.#write(pack.key, data, () => {
      if (part.length > 0) this.#o.parts.release(part);
    });
  }
}

/**
 * The parts of one pack, in order, as the async iterable putObject reads: pushed as they fill, pulled by the
 * store as it has room. Parts the store never took go back to the pool when it stops early or on close().
 */
class PartQueue implements AsyncIterableIterator<Uint8Array> {
  readonly #items: Uint8Array[] = [];
  readonly #release: (part: Uint8Array) => void;
  #waiter: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  #ended = false;
  #closed = false;

  constructor(release: (part: Uint8Array) => void) {
    this.#release = release;
  }

  push(part: Uint8Array): void {
    if (this.#closed) return this.#release(part);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter({ value: part, done: false });
    else this.#items.push(part);
  }

  /** No more parts: the store completes the object once it has taken the ones queued. */
  end(): void {
    this.#ended = true;
    this.#wake();
  }

  /** Releases the parts not yet taken and ends the stream. */
  close(): void {
    this.#closed = true;
    this.#ended = true;
    for (const part of this.#items.splice(0)) this.#release(part);
    this.#wake();
  }

  #wake(): void {
    if (this.#items.length > 0 || !this.#waiter) return;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const part = this.#items.shift();
    if (part) return Promise.resolve({ value: part, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
