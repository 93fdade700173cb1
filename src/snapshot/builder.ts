// The builder of one snapshot's page map: where each fixed chunk's content is (or that it is zero), and the
// patches, as the pipeline stores them. It owns the restart rule: a restart of the backup supersedes whatever
// was recorded before it, and a chunk stored for an earlier copy (an epoch) that finishes after the restart is
// not recorded (its pages come again). When the copy is done, it gives the manifest's packs, extents, counts
// and whole-database digest.
import type { Extent, PackRecord } from '../vault/model.ts';
import { chunkRange, databaseDigest, fixedChunkCount, zeroDigest } from '../vault/manifest.ts';
import type { Emission } from './chunker.ts';
import type { DedupIndex } from './dedup.ts';
import { FixedChunks, UNSET, ZERO } from './locations.ts';

/** The chunk counts of a snapshot (a part of SnapshotStats). */
export interface ChunkCounts {
  /** Stored extents whose bytes this snapshot uploaded. */
  chunksNew: number;
  /** Stored extents whose bytes were already in the vault. */
  chunksReused: number;
  chunksZero: number;
}

/** What the page map comes to: the manifest's parts. */
export interface PageMap {
  /** The packs the extents use, in order of first use, with the bytes of each that they use. */
  packs: PackRecord[];
  /** The extents, made from the tables each time they are walked (fixed chunks in page order, then patches). */
  extents: Iterable<Extent>;
  counts: ChunkCounts;
  patches: number;
  /** databaseDigest (see docs/FORMAT.md), or null when patches left some chunk's final content unknown. */
  databaseDigest: string | null;
}

interface Entry {
  firstPage: number;
  pageCount: number;
  /** A location in the dedup index, or ZERO. */
  at: number;
  upload: boolean;
}

export class SnapshotBuilder {
  readonly #pageSize: number;
  readonly #chunkPages: number;
  readonly #fixed: FixedChunks;
  #patches: Entry[] = [];
  #epoch = 0;

  constructor(options: { pageSize: number; chunkPages: number; chunksEstimated: number }) {
    this.#pageSize = options.pageSize;
    this.#chunkPages = options.chunkPages;
    this.#fixed = new FixedChunks(options.chunksEstimated);
  }

  /** The copy now being recorded: a store begun under one epoch is recorded only if it is still current. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The backup restarted: everything recorded so far is superseded, and stores still running are stale. */
  restart(): void {
    this.#epoch++;
    this.#fixed.clear();
    this.#patches = [];
  }

  /**
   * Records where emission `e`'s content is (`at`: a location, or ZERO) and whether this snapshot uploaded it.
   * Returns false, recording nothing, when `epoch` is no longer current (a restart came since it began).
   */
  record(e: Pick<Emission, 'kind' | 'index' | 'firstPage' | 'pageCount'>, at: number, upload: boolean, epoch: number): boolean {
    if (epoch !== this.#epoch) return false;
    if (e.kind === 'chunk') this.#fixed.set(e.index, at, e.pageCount, upload);
    else this.#patches[e.index] = { firstPage: e.firstPage, pageCount: e.pageCount, at, upload };
    return true;
  }

  /** The page map of a database of `pageCount` pages, from what was recorded and where `index` says it is. */
  pageMap(index: DedupIndex, pageCount: number): PageMap {
    const fixed = this.#fixed;
    const chunkPages = this.#chunkPages;
    const patches = this.#patches.filter((p): p is Entry => p !== undefined);
    const entries = function* (): Generator<Entry> {
      for (let i = 0; i < fixed.end; i++) {
        const at = fixed.location(i);
        if (at !== UNSET) yield { firstPage: i * chunkPages + 1, pageCount: fixed.pageCount(i), at, upload: fixed.uploaded(i) };
      }
      yield* patches;
    };
    // Packs in order of first use, each distinct location's bytes counted once towards its pack's `used`.
    const { locations } = index;
    const packs: PackRecord[] = [];
    const packOf = new Map<number, number>();
    const counted = new Set<number>();
    const counts: ChunkCounts = { chunksNew: 0, chunksReused: 0, chunksZero: 0 };
    for (const { at, upload } of entries()) {
      if (at === ZERO) {
        counts.chunksZero++;
        continue;
      }
      if (upload) counts.chunksNew++;
      else counts.chunksReused++;
      const pack = locations.pack(at);
      let p = packOf.get(pack);
      if (p === undefined) packOf.set(pack, (p = packs.push({ ...index.packRecord(pack), used: 0 }) - 1));
      if (!counted.has(at)) {
        counted.add(at);
        packs[p]!.used += locations.get(at).length;
      }
    }
    const extents: Iterable<Extent> = {
      *[Symbol.iterator]() {
        for (const { firstPage, pageCount: count, at } of entries()) {
          if (at === ZERO) yield { kind: 'zero', firstPage, pageCount: count };
          else {
            const l = locations.get(at);
            yield { kind: 'stored', firstPage, pageCount: count, pack: packOf.get(l.pack)!, offset: l.offset, length: l.length, codec: l.codec, digest: l.digest };
          }
        }
      },
    };
    return { packs, extents, counts, patches: patches.length, databaseDigest: patches.length === 0 ? this.#databaseDigest(index, pageCount) : null };
  }

  #databaseDigest(index: DedupIndex, pageCount: number): string {
    const fixed = this.#fixed;
    const chunkPages = this.#chunkPages;
    const pageSize = this.#pageSize;
    return databaseDigest(
      (function* () {
        for (let i = 0; i < fixedChunkCount(pageCount, chunkPages); i++) {
          const at = fixed.location(i);
          yield at >= 0 ? index.locations.digest(at) : zeroDigest(chunkRange(i, pageCount, chunkPages).pageCount * pageSize);
        }
      })(),
    );
  }
}
