// The restore planner on hand-made manifests and extents.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planRestore as planOf, type PlanOptions } from '../../src/restore/plan.ts';
import type { Extent } from '../../src/vault/model.ts';

const digest = new Uint8Array(32);

interface Snapshot {
  manifest: { pageSize: number; packs: { key: string; size: number; used: number }[] };
  extents: Extent[];
}

function manifest(extents: Extent[], packs = ['packs/a', 'packs/b']): Snapshot {
  return { manifest: { pageSize: 4096, packs: packs.map((key) => ({ key, size: 1 << 30, used: 1 })) }, extents };
}

function planRestore(s: Snapshot, options: PlanOptions) {
  return planOf(s.manifest, s.extents, options);
}

function stored(firstPage: number, pack: number, offset: number, length: number, pageCount = 4): Extent {
  return { kind: 'stored', firstPage, pageCount, pack, offset, length, codec: 'zstd', digest };
}

test('neighbouring extents of a pack share one read up to the read size; gaps split reads', () => {
  const plan = planRestore(
    manifest([stored(1, 0, 0, 100), stored(5, 0, 100, 100), stored(9, 0, 250, 100), stored(13, 0, 10_000, 100), stored(17, 1, 0, 50)]),
    { readSize: 1000, maxRawBytes: 1 << 30, maxGap: 64 },
  );
  const reads = plan.parallel.map((r) => [r.pack, r.offset, r.length, r.extents.map((e) => [e.index, e.at])]);
  assert.deepEqual(reads, [
    ['packs/a', 0, 350, [[0, 0], [1, 100], [2, 250]]],
    ['packs/a', 10_000, 100, [[3, 0]]],
    ['packs/b', 0, 50, [[4, 0]]],
  ]);
  assert.equal(plan.bytes, 500);
  assert.equal(plan.largestRead, 350);
  assert.deepEqual(plan.ordered, []);
});

test('a read stops growing when its extents would decode to more than maxRawBytes', () => {
  const plan = planRestore(manifest([stored(1, 0, 0, 10), stored(5, 0, 10, 10), stored(9, 0, 20, 10)]), { readSize: 1000, maxRawBytes: 2 * 4 * 4096, maxGap: 0 });
  assert.deepEqual(plan.parallel.map((r) => [r.offset, r.length, r.rawLength, r.extents.map((e) => e.outAt)]), [[0, 20, 32768, [0, 16384]], [20, 10, 16384, [0]]]);
  assert.equal(plan.largestRaw, 32768);
});

test('a read stops growing at the read size', () => {
  const plan = planRestore(manifest([stored(1, 0, 0, 600), stored(5, 0, 600, 600), stored(9, 0, 1200, 600)]), { readSize: 1300, maxRawBytes: 1 << 30, maxGap: 0 });
  assert.deepEqual(plan.parallel.map((r) => [r.offset, r.length]), [[0, 1200], [1200, 600]]);
});

test('extents that override earlier pages (patches, zero runs) are applied in order after the rest', () => {
  const plan = planRestore(
    manifest([stored(1, 0, 0, 100), { kind: 'zero', firstPage: 5, pageCount: 4 }, stored(9, 0, 100, 100), stored(2, 1, 0, 10, 1), { kind: 'zero', firstPage: 10, pageCount: 1 }]),
    { readSize: 1000, maxRawBytes: 1 << 30, maxGap: 64 },
  );
  assert.deepEqual(plan.parallel.flatMap((r) => r.extents.map((e) => e.index)), [0, 2], 'zero extents of the lead need no read');
  assert.deepEqual(plan.ordered.map((s) => (s.kind === 'read' ? ['read', s.read.extents[0]!.index] : ['zero', s.extent.firstPage])), [
    ['read', 3],
    ['zero', 10],
  ]);
});

test('one chunk reused twice in a snapshot is read once', () => {
  const plan = planRestore(manifest([stored(1, 0, 0, 100), stored(5, 0, 0, 100)]), { readSize: 1000, maxRawBytes: 1 << 30, maxGap: 0 });
  assert.deepEqual(plan.parallel.map((r) => [r.offset, r.length, r.extents.length]), [[0, 100, 2]]);
});
