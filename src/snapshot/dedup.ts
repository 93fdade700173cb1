// The dedup index of one snapshot: every content the vault is known to hold (the parent's stored extents, then
// this snapshot's own uploads), found by digest and raw length, with the packs they live in; and, per fixed
// chunk, where the parent stored that chunk, so that an unchanged chunk is only digested, not compressed again.
import type { Extent, Manifest, PackRecord } from '../vault/model.ts';
import { fixedChunkCount } from '../vault/manifest.ts';
import { FixedChunks, Locations, UNSET, type Location } from './locations.ts';

export class DedupIndex {
  readonly locations: Locations;
  readonly #packs: PackRecord[] = [];
  readonly #packIndex = new Map<string, number>();
  readonly #parentAt: FixedChunks;
  /** The parent's packs not reused because too little of them is live (repackBelow). */
  repacked: string[] = [];

  /**
   * An index seeded with `parent`'s stored extents (none for a full snapshot). A parent chunk is a hint for
   * this snapshot's chunk of the same index only when both have the same page size and chunk size.
   */
  constructor(options: {
    pageSize: number;
    chunkPages: number;
    /** Chunks this snapshot is expected to have: sizes the tables, which grow past it. */
    chunksEstimated: number;
    parent?: { manifest: Manifest; extents: Iterable<Extent> };
    /**
     * Repack on write: the parent's chunks in a pack of which the parent uses less than this fraction are not
     * reused (they are uploaded again), so that the mostly dead pack stops being referenced. 0 reuses all.
     */
    repackBelow?: number;
  }) {
    const { pageSize, chunkPages, parent } = options;
    this.locations = new Locations((parent?.manifest.extents.stored ?? 0) + options.chunksEstimated);
    this.#parentAt = new FixedChunks(parent ? fixedChunkCount(parent.manifest.pageCount, chunkPages) : 16);
    if (!parent) return;
    const m = parent.manifest;
    const packs = m.packs.map((p) => this.pack(p.key, p.size));
    const repackBelow = options.repackBelow ?? 0;
    const skip = m.packs.map((p) => p.used < p.size * repackBelow);
    this.repacked = m.packs.filter((_, i) => skip[i]).map((p) => p.key);
    for (const e of parent.extents) {
      if (e.kind !== 'stored' || skip[e.pack]) continue;
      const at = this.locations.add({ pack: packs[e.pack]!, offset: e.offset, length: e.length, rawLength: e.pageCount * m.pageSize, codec: e.codec, digest: e.digest });
      const index = (e.firstPage - 1) / chunkPages;
      if (m.pageSize === pageSize && Number.isInteger(index) && this.#parentAt.location(index) === UNSET) this.#parentAt.set(index, at, e.pageCount, false);
    }
  }

  /** The index of pack `key`, added when new; `size`, when given, is its object's length once complete. */
  pack(key: string, size?: number): number {
    let i = this.#packIndex.get(key);
    if (i === undefined) this.#packIndex.set(key, (i = this.#packs.push({ key, size: size ?? 0, used: 0 }) - 1));
    else if (size !== undefined) this.#packs[i]!.size = size;
    return i;
  }

  /** The pack with index `i`: its key and size (`used` is the manifest's to fill). */
  packRecord(i: number): { key: string; size: number } {
    return this.#packs[i]!;
  }

  /** Where the parent stored fixed chunk `index`, and its digest, when its raw length matches; else undefined. */
  parentChunk(index: number, rawLength: number): { at: number; digest: Uint8Array } | undefined {
    const at = this.#parentAt.location(index);
    if (at < 0 || this.locations.rawLength(at) !== rawLength) return undefined;
    return { at, digest: this.locations.digest(at) };
  }

  /** A location holding this content, or a negative number. */
  find(digest: Uint8Array, rawLength: number): number {
    return this.locations.find(digest, rawLength);
  }

  /** Records content this snapshot uploaded; returns its location. */
  add(l: Location): number {
    return this.locations.add(l);
  }
}
