// What a snapshot keeps per chunk, in growable typed arrays: a snapshot of 131,072 chunks (the most the chunk
// size allows, see chunk-size.ts) then holds a few megabytes of it, where a JavaScript object, a Map entry and a
// 32-byte ArrayBuffer per chunk took more than a kilobyte each: the memory bound must not grow with the database.
//
// - Locations: content the vault holds (the parent's stored extents, then this snapshot's uploads): pack, offset,
//   encoded length, codec, raw length and SHA-256, found by digest and raw length.
// - FixedChunks: for each fixed chunk of the snapshot being made, the location of its content (or zero), and
//   how many pages it holds, and whether this snapshot uploaded it.
import type { ExtentCodec } from '../vault/model.ts';

const DIGEST = 32;

function grown<T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(a: T, needed: number, fill?: number): T {
  if (needed <= a.length) return a;
  const next = new (a.constructor as new (n: number) => T)(Math.max(needed, a.length * 2));
  next.set(a);
  if (fill !== undefined) next.fill(fill, a.length);
  return next;
}

export interface Location {
  /** Index into the snapshot's list of pack keys. */
  pack: number;
  offset: number;
  length: number;
  rawLength: number;
  codec: ExtentCodec;
  digest: Uint8Array;
}

export class Locations {
  #count = 0;
  #pack = new Uint32Array(1024);
  #offset = new Float64Array(1024);
  #length = new Uint32Array(1024);
  #rawLength = new Uint32Array(1024);
  #zstd = new Uint8Array(1024);
  #digests = new Uint8Array(1024 * DIGEST);
  /** Digest (latin1, 32 characters) and raw length -> index. */
  readonly #byContent = new Map<string, number>();

  get count(): number {
    return this.#count;
  }

  /** Records a location and returns its index; content already recorded keeps its first location for find(). */
  add(l: Location): number {
    const i = this.#count++;
    this.#pack = grown(this.#pack, i + 1);
    this.#offset = grown(this.#offset, i + 1);
    this.#length = grown(this.#length, i + 1);
    this.#rawLength = grown(this.#rawLength, i + 1);
    this.#zstd = grown(this.#zstd, i + 1);
    this.#digests = grown(this.#digests, (i + 1) * DIGEST);
    this.#pack[i] = l.pack;
    this.#offset[i] = l.offset;
    this.#length[i] = l.length;
    this.#rawLength[i] = l.rawLength;
    this.#zstd[i] = l.codec === 'zstd' ? 1 : 0;
    this.#digests.set(l.digest, i * DIGEST);
    const key = contentKey(l.digest, l.rawLength);
    if (!this.#byContent.has(key)) this.#byContent.set(key, i);
    return i;
  }

  /** The location of content with this digest and raw length, or -1. */
  find(digest: Uint8Array, rawLength: number): number {
    return this.#byContent.get(contentKey(digest, rawLength)) ?? -1;
  }

  rawLength(i: number): number {
    return this.#rawLength[i]!;
  }

  /** A view of location i's digest (valid until the next add()). */
  digest(i: number): Uint8Array {
    return this.#digests.subarray(i * DIGEST, (i + 1) * DIGEST);
  }

  get(i: number): Location {
    return {
      pack: this.#pack[i]!,
      offset: this.#offset[i]!,
      length: this.#length[i]!,
      rawLength: this.#rawLength[i]!,
      codec: this.#zstd[i] ? 'zstd' : 'raw',
      digest: this.digest(i),
    };
  }
}

function contentKey(digest: Uint8Array, rawLength: number): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('latin1') + rawLength;
}

/** A fixed chunk's content: a location index, or one of these. */
export const UNSET = -1;
export const ZERO = -2;

export class FixedChunks {
  #location = new Int32Array(1024).fill(UNSET);
  #pageCount = new Uint32Array(1024);
  #uploaded = new Uint8Array(1024);
  #end = 0;

  /** One past the highest chunk index set. */
  get end(): number {
    return this.#end;
  }

  set(index: number, location: number, pageCount: number, uploaded: boolean): void {
    this.#location = grown(this.#location, index + 1, UNSET);
    this.#pageCount = grown(this.#pageCount, index + 1);
    this.#uploaded = grown(this.#uploaded, index + 1);
    this.#location[index] = location;
    this.#pageCount[index] = pageCount;
    this.#uploaded[index] = uploaded ? 1 : 0;
    this.#end = Math.max(this.#end, index + 1);
  }

  /** The chunk's location index, ZERO, or UNSET. */
  location(index: number): number {
    return index < this.#end ? this.#location[index]! : UNSET;
  }

  /** The pages the chunk holds (fewer than the chunk size for the last one). */
  pageCount(index: number): number {
    return this.#pageCount[index]!;
  }

  uploaded(index: number): boolean {
    return this.#uploaded[index] === 1;
  }

  clear(): void {
    this.#location.fill(UNSET);
    this.#uploaded.fill(0);
    this.#end = 0;
  }
}
