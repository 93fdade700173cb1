// The pack writer: appends encoded chunks to pack objects, each a multipart upload fed part by part from a
// bounded pool of reusable part buffers. A pack holds the chunks of one span of pages (packSpanBytes of the
// database), so its key can name that range before the first byte is sent; a chunk arriving for a span whose
// pack is already complete (page 1's chunk, patches, chunks after a restart) opens a second pack for the span,
// with a sequence suffix. When every part buffer is in flight, append() waits: that wait is what throttles the
// backup steps upstream.
import { createHash, type Hash } from 'node:crypto';
import type { StorageClient, StorageEventListener } from '../storage/client.ts';
import { MultipartUpload } from '../storage/upload.ts';
import type { BufferPool } from '../util/buffer-pool.ts';
import { packKey } from '../vault/layout.ts';

interface OpenPack {
  key: string;
  span: number;
  upload: MultipartUpload;
  part: Buffer | undefined;
  /** MD5 of the part so far, updated chunk by chunk so that no single step hashes a whole part. */
  md5: Hash;
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
  readonly #uploads: MultipartUpload[] = [];
  #failure: Error | undefined;
  #completedBytes = 0;
  /** Keys of every pack this writer created, in creation order. */
  readonly keys: string[] = [];
  /** The size of each pack completed so far, by key. */
  readonly sizes = new Map<string, number>();

  constructor(options: PackWriterOptions) {
    this.#o = options;
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
    if (!pack) pack = await this.#openPack(span);
    else {
      // Most recently used last, so the first entry is the one to complete when too many are open.
      this.#open.delete(span);
      this.#open.set(span, pack);
    }
    const offset = pack.size;
    let done = 0;
    while (done < data.length) {
      pack.part ??= await this.#o.parts.acquire(this.#o.signal);
      const n = Math.min(data.length - done, pack.part.length - pack.fill);
      const piece = data.subarray(done, done + n);
      pack.part.set(piece, pack.fill);
      pack.md5.update(piece);
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

  /** Aborts every upload not yet complete (their parts are discarded) and waits for that. Never rejects. */
  async abort(reason: unknown): Promise<void> {
    this.#failure ??= reason instanceof Error ? reason : new Error(String(reason));
    for (const pack of this.#open.values()) {
      if (pack.part) this.#o.parts.release(pack.part);
      pack.part = undefined;
    }
    this.#open.clear();
    await Promise.allSettled(this.#uploads.map((u) => u.abort(reason)));
    await Promise.allSettled([...this.#pending]);
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  #track(promise: Promise<unknown>): void {
    const settled = promise.catch((err: Error) => {
      this.#failure ??= err;
    });
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
  }

  async #openPack(span: number): Promise<OpenPack> {
    if (this.#open.size >= MAX_OPEN_PACKS) this.#complete(this.#open.values().next().value!);
    const seq = (this.#seq.get(span) ?? -1) + 1;
    this.#seq.set(span, seq);
    const first = span * this.#o.spanPages + 1;
    const key = packKey(this.#o.snapshotId, first, first + this.#o.spanPages - 1, seq);
    const upload = new MultipartUpload(this.#o.storage, key, {
      partsInFlight: this.#o.partsInFlight,
      ...(this.#o.signal ? { signal: this.#o.signal } : {}),
      ...(this.#o.onEvent ? { onEvent: this.#o.onEvent } : {}),
    });
    this.#uploads.push(upload);
    this.keys.push(key);
    const pack: OpenPack = { key, span, upload, part: undefined, md5: createHash('md5'), fill: 0, size: 0 };
    this.#open.set(span, pack);
    return pack;
  }

  /** Hands the filled part buffer to the upload; the buffer returns to the pool once the part is stored. */
  #sendPart(pack: OpenPack): void {
    const part = pack.part!;
    const data = pack.fill === part.length ? part : part.subarray(0, pack.fill);
    const md5 = pack.md5.digest('base64');
    pack.part = undefined;
    pack.md5 = createHash('md5');
    pack.fill = 0;
    this.#track(pack.upload.writePart(data, md5).finally(() => this.#o.parts.release(part)));
  }

  #complete(pack: OpenPack): void {
    this.#open.delete(pack.span);
    if (pack.fill > 0) this.#sendPart(pack);
    else if (pack.part) {
      this.#o.parts.release(pack.part);
      pack.part = undefined;
    }
    this.#track(
      pack.upload.complete().then((r) => {
        this.#completedBytes += r.size;
        this.sizes.set(pack.key, r.size);
      }),
    );
  }
}
