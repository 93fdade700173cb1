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
  #pack: Uint32Array;
  #offset: Float64Array;
  #length: Uint32Array;
  #rawLength: Uint32Array;
  #zstd: Uint8Array;
  #digests: Uint8Array;
  /**
   * A hash table over the content, in typed arrays too: a bucket (chosen by the digest's first 31 bits) holds
   * the newest location in it and #next chains to older ones; find() compares whole digests along the chain.
   * Only a content's first location is linked (#next NOT_LINKED otherwise). Buckets number at least twice the
   * linked locations, doubling as they come.
   */
  #heads: Int32Array;
  #linked = 0;
  #next: Int32Array;

  /** `capacity`: the locations expected (a parent's extent count and the chunks to come); it grows past it. */
  constructor(capacity = 1024) {
    const n = Math.max(16, capacity);
    this.#pack = new Uint32Array(n);
    this.#offset = new Float64Array(n);
    this.#length = new Uint32Array(n);
    this.#rawLength = new Uint32Array(n);
    this.#zstd = new Uint8Array(n);
    this.#digests = new Uint8Array(n * DIGEST);
    this.#next = new Int32Array(n);
    this.#heads = new Int32Array(2 ** Math.ceil(Math.log2(2 * n))).fill(-1);
  }

  get count(): number {
    return this.#count;
  }

  /** Records a location and returns its index; content already recorded keeps its first location for find(). */
  add(l: Location): number {
    const known = this.find(l.digest, l.rawLength) >= 0;
    const i = this.#count++;
    this.#pack = grown(this.#pack, i + 1);
    this.#offset = grown(this.#offset, i + 1);
    this.#length = grown(this.#length, i + 1);
    this.#rawLength = grown(this.#rawLength, i + 1);
    this.#zstd = grown(this.#zstd, i + 1);
    this.#digests = grown(this.#digests, (i + 1) * DIGEST);
    this.#next = grown(this.#next, i + 1);
    this.#pack[i] = l.pack;
    this.#offset[i] = l.offset;
    this.#length[i] = l.length;
    this.#rawLength[i] = l.rawLength;
    this.#zstd[i] = l.codec === 'zstd' ? 1 : 0;
    this.#digests.set(l.digest, i * DIGEST);
    this.#next[i] = NOT_LINKED;
    if (!known) {
      if (2 * (this.#linked + 1) > this.#heads.length) this.#rehash(2 * this.#heads.length);
      this.#link(i);
    }
    return i;
  }

  #link(i: number): void {
    const bucket = prefixOf(this.#digests, i * DIGEST) & (this.#heads.length - 1);
    this.#next[i] = this.#heads[bucket]!;
    this.#heads[bucket] = i;
    this.#linked++;
  }

  #rehash(buckets: number): void {
    this.#heads = new Int32Array(buckets).fill(-1);
    this.#linked = 0;
    for (let i = 0; i < this.#count; i++) if (this.#next[i] !== NOT_LINKED) this.#link(i);
  }

  /** The location of content with this digest and raw length, or -1. */
  find(digest: Uint8Array, rawLength: number): number {
    for (let i = this.#heads[prefixOf(digest, 0) & (this.#heads.length - 1)]!; i >= 0; i = this.#next[i]!) {
      if (this.#rawLength[i] === rawLength && this.#sameDigest(i, digest)) return i;
    }
    return -1;
  }

  #sameDigest(i: number, digest: Uint8Array): boolean {
    const d = this.#digests;
    const at = i * DIGEST;
    for (let k = 0; k < DIGEST; k++) if (d[at + k] !== digest[k]) return false;
    return true;
  }

  /** Location i's index into the snapshot's pack keys. */
  pack(i: number): number {
    return this.#pack[i]!;
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

/** The first 31 bits of the digest at `at`. */
function prefixOf(d: Uint8Array, at: number): number {
  return ((d[at]! << 23) | (d[at + 1]! << 15) | (d[at + 2]! << 7) | (d[at + 3]! >>> 1)) >>> 0;
}

const NOT_LINKED = -2;

/** A fixed chunk's content: a location index, or one of these. */
export const UNSET = -1;
export const ZERO = -2;

export class FixedChunks {
  #location: Int32Array;
  #pageCount: Uint32Array;
  #uploaded: Uint8Array;
  #end = 0;

  /** `capacity`: the chunks expected; it grows past it. */
  constructor(capacity = 1024) {
    const n = Math.max(16, capacity);
    this.#location = new Int32Array(n).fill(UNSET);
    this.#pageCount = new Uint32Array(n);
    this.#uploaded = new Uint8Array(n);
  }

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
