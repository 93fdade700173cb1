// The builder's restart rule on its own: what a restart supersedes, and that a store begun before it is not
// recorded. pipeline.test.ts drives the same rule through the real pipeline.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SnapshotBuilder } from '../../src/snapshot/builder.ts';
import { DedupIndex } from '../../src/snapshot/dedup.ts';
import { ZERO } from '../../src/snapshot/locations.ts';
import { packKey } from '../../src/vault/layout.ts';
import { databaseDigest } from '../../src/vault/manifest.ts';

const ID = '20261202T030405678Z-0123456789';
const pageSize = 4096;
const chunkPages = 4;

function setup() {
  const index = new DedupIndex({ pageSize, chunkPages, chunksEstimated: 8 });
  const pack = index.pack(packKey(ID, 1, 1000), 10_000);
  const at = (n: number) => index.add({ pack, offset: n * 100, length: 100, rawLength: chunkPages * pageSize, codec: 'zstd', digest: createHash('sha256').update(String(n)).digest() });
  return { index, builder: new SnapshotBuilder({ pageSize, chunkPages, chunksEstimated: 8 }), at };
}

const chunk = (index: number) => ({ kind: 'chunk' as const, index, firstPage: index * chunkPages + 1, pageCount: chunkPages });

test('a store begun before a restart is not recorded, even if it finishes after it', () => {
  const { index, builder, at } = setup();
  const before = builder.epoch;
  builder.restart();
  assert.equal(builder.record(chunk(0), at(1), true, before), false, 'a stale epoch is refused');
  assert.equal(builder.record(chunk(0), at(2), true, builder.epoch), true);
  const map = builder.pageMap(index, chunkPages);
  const extents = [...map.extents];
  assert.equal(extents.length, 1);
  assert.deepEqual(extents[0]!.kind === 'stored' && Buffer.from(extents[0]!.digest), createHash('sha256').update('2').digest(), 'the current copy, not the stale one');
});

test('a restart forgets the fixed chunks and the patches recorded before it', () => {
  const { index, builder, at } = setup();
  for (let i = 0; i < 6; i++) builder.record(chunk(i), at(i), true, builder.epoch);
  builder.record({ kind: 'patch', index: 0, firstPage: 2, pageCount: 1 }, at(9), true, builder.epoch);
  assert.equal(builder.pageMap(index, 6 * chunkPages).patches, 1);
  builder.restart();
  // The database shrank to two chunks in the new copy, which has no patch.
  builder.record(chunk(0), at(10), true, builder.epoch);
  builder.record(chunk(1), ZERO, false, builder.epoch);
  const map = builder.pageMap(index, 2 * chunkPages);
  assert.equal(map.patches, 0);
  assert.deepEqual(
    [...map.extents].map((e) => [e.kind, e.firstPage, e.pageCount]),
    [
      ['stored', 1, 4],
      ['zero', 5, 4],
    ],
  );
  assert.deepEqual(map.counts, { chunksNew: 1, chunksReused: 0, chunksZero: 1 });
  const zero = createHash('sha256').update(Buffer.alloc(chunkPages * pageSize)).digest();
  assert.equal(map.databaseDigest, databaseDigest([createHash('sha256').update('10').digest(), zero]));
});

test("the page map's packs: in order of first use, each distinct location's bytes counted once", () => {
  const index = new DedupIndex({ pageSize, chunkPages, chunksEstimated: 8 });
  const a = index.pack(packKey(ID, 1, 8), 500);
  const b = index.pack(packKey(ID, 9, 16), 700);
  const loc = (pack: number, offset: number, length: number) => index.add({ pack, offset, length, rawLength: chunkPages * pageSize, codec: 'zstd', digest: randomBytes(32) });
  const inB = loc(b, 0, 300);
  const inA = loc(a, 0, 200);
  const builder = new SnapshotBuilder({ pageSize, chunkPages, chunksEstimated: 8 });
  builder.record(chunk(0), inB, true, 0);
  builder.record(chunk(1), inA, true, 0);
  builder.record(chunk(2), inB, false, 0); // the same content twice: its bytes count once
  const map = builder.pageMap(index, 3 * chunkPages);
  assert.deepEqual(map.packs, [
    { key: packKey(ID, 9, 16), size: 700, used: 300 },
    { key: packKey(ID, 1, 8), size: 500, used: 200 },
  ]);
  assert.deepEqual(map.counts, { chunksNew: 2, chunksReused: 1, chunksZero: 0 });
  assert.deepEqual(
    [...map.extents].map((e) => (e.kind === 'stored' ? e.pack : -1)),
    [0, 1, 0],
  );
});
