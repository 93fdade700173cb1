// The restore plan: which ranged reads fetch a manifest's stored extents, and in what order they may be
// written. Pure: no I/O, testable on hand-made manifests.
//
// Extents are applied in manifest order, a later one overriding the pages it shares with an earlier one.
// The leading run of extents that never overlap (the fixed chunks, in page order) can be fetched and written
// in any order, in parallel; whatever follows (patches) is written strictly in order, after them.
import type { Extent, Manifest, StoredExtent, ZeroExtent } from '../vault/model.ts';

export interface PlannedExtent {
  /** Index in the snapshot's extents. */
  index: number;
  extent: StoredExtent;
  /** Offset of the extent's bytes within the read's buffer. */
  at: number;
  /** Offset of its decoded bytes within the read's output. */
  outAt: number;
}

export interface PlannedRead {
  pack: string;
  offset: number;
  length: number;
  /** Decoded bytes of all its extents, back to back in extent order. */
  rawLength: number;
  extents: PlannedExtent[];
}

/** An overriding extent: a read of one stored extent, or a run of pages to zero. */
export type OrderedStep = { kind: 'read'; read: PlannedRead } | { kind: 'zero'; extent: ZeroExtent };

export interface RestorePlan {
  /** Reads for the non-overlapping leading extents: any order, in parallel. */
  parallel: PlannedRead[];
  /** The overriding extents, to be applied in this order after every `parallel` read. */
  ordered: OrderedStep[];
  /** Bytes to download in all. */
  bytes: number;
  /** The largest read and the largest decoded size of one, to size buffers. */
  largestRead: number;
  largestRaw: number;
}

export interface PlanOptions {
  /** Coalesced reads stop growing at this size (a single larger extent is read alone). */
  readSize: number;
  /** ...or when their extents would decode to more than this. */
  maxRawBytes: number;
  /** Neighbouring extents in a pack separated by at most this many unneeded bytes share a read. */
  maxGap: number;
}

/** The plan for a snapshot whose manifest is `manifest` and whose extents (its extent table's) are `extents`. */
export function planRestore(manifest: Pick<Manifest, 'pageSize' | 'packs'>, extents: readonly Extent[], options: PlanOptions): RestorePlan {
  // The leading run of non-overlapping extents in ascending page order.
  let lead = 0;
  let end = 0;
  while (lead < extents.length && extents[lead]!.firstPage > end) {
    end = extents[lead]!.firstPage + extents[lead]!.pageCount - 1;
    lead++;
  }
  const byPack = new Map<number, PlannedExtent[]>();
  for (let i = 0; i < lead; i++) {
    const e = extents[i]!;
    if (e.kind !== 'stored') continue;
    let list = byPack.get(e.pack);
    if (!list) byPack.set(e.pack, (list = []));
    list.push({ index: i, extent: e, at: 0, outAt: 0 });
  }
  const parallel: PlannedRead[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.extent.offset - b.extent.offset);
    let read: PlannedRead | undefined;
    for (const p of list) {
      const { offset, length } = p.extent;
      const raw = p.extent.pageCount * manifest.pageSize;
      if (read) {
        const readEnd = read.offset + read.length;
        const newEnd = Math.max(readEnd, offset + length);
        // A negative gap is an extent sharing bytes with the previous one (one chunk reused twice).
        if (offset - readEnd <= options.maxGap && newEnd - read.offset <= options.readSize && read.rawLength + raw <= options.maxRawBytes) {
          read.length = newEnd - read.offset;
          read.extents.push({ ...p, at: offset - read.offset, outAt: read.rawLength });
          read.rawLength += raw;
          continue;
        }
      }
      read = { pack: manifest.packs[pack]!.key, offset, length, rawLength: raw, extents: [{ ...p, at: 0, outAt: 0 }] };
      parallel.push(read);
    }
  }
  const ordered: OrderedStep[] = [];
  for (let i = lead; i < extents.length; i++) {
    const e = extents[i]!;
    if (e.kind === 'zero') ordered.push({ kind: 'zero', extent: e });
    else {
      const rawLength = e.pageCount * manifest.pageSize;
      ordered.push({ kind: 'read', read: { pack: manifest.packs[e.pack]!.key, offset: e.offset, length: e.length, rawLength, extents: [{ index: i, extent: e, at: 0, outAt: 0 }] } });
    }
  }
  const all = [...parallel, ...ordered.flatMap((s) => (s.kind === 'read' ? [s.read] : []))];
  return {
    parallel,
    ordered,
    bytes: all.reduce((n, r) => n + r.length, 0),
    largestRead: all.reduce((n, r) => Math.max(n, r.length), 0),
    largestRaw: all.reduce((n, r) => Math.max(n, r.rawLength), 0),
  };
}
