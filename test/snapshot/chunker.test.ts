// The chunker on hand-made page streams: when chunks are emitted, what they hold, and what becomes a patch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GiB } from '../../src/config/defaults.ts';
import { Chunker, type Emission } from '../../src/snapshot/chunker.ts';
import { BufferPool } from '../../src/util/buffer-pool.ts';

const PS = 512;

function page(pgno: number, version = 0): Buffer {
  const b = Buffer.alloc(PS, (pgno * 7 + version) & 0xff);
  b.writeUInt32BE(pgno, 0);
  b.writeUInt32BE(version, 4);
  return b;
}

function harness(chunkPages: number, buffers = 12) {
  const pool = new BufferPool(buffers, chunkPages * PS);
  const seen: { kind: string; index: number; firstPage: number; pageCount: number; pages: Buffer[] }[] = [];
  const chunker = new Chunker({
    pageSize: PS,
    chunkPages,
    pool,
    emit: async (e: Emission) => {
      const pages = Array.from({ length: e.pageCount }, (_, i) => Buffer.from(e.buffer.subarray(i * PS, (i + 1) * PS)));
      seen.push({ kind: e.kind, index: e.index, firstPage: e.firstPage, pageCount: e.pageCount, pages });
      pool.release(e.buffer);
    },
  });
  return { chunker, seen, pool };
}

test('chunks are emitted once complete; chunk 0 waits for page 1, which SQLite writes last', async () => {
  const { chunker, seen, pool } = harness(4);
  for (let p = 2; p <= 10; p++) await chunker.add(p, page(p));
  assert.deepEqual(seen.map((s) => s.index), [1], 'chunk 1 (pages 5-8) is complete; chunk 0 lacks page 1, chunk 2 is open');
  await chunker.add(1, page(1));
  assert.deepEqual(seen.map((s) => s.index), [1, 0]);
  await chunker.finish(10);
  assert.deepEqual(seen.map((s) => [s.index, s.pageCount]), [[1, 4], [0, 4], [2, 2]], 'the tail chunk is cut to the page count');
  for (const s of seen) s.pages.forEach((b, i) => assert.ok(b.equals(page(s.firstPage + i)), `page ${s.firstPage + i}`));
  assert.equal(chunker.patchCount, 0);
  assert.equal(pool.available, pool.count, 'every buffer is back');
});

test('a page for a chunk already emitted becomes a patch; consecutive ones share it', async () => {
  const { chunker, seen } = harness(4);
  for (let p = 1; p <= 12; p++) await chunker.add(p, page(p));
  await chunker.add(6, page(6, 1));
  await chunker.add(7, page(7, 1));
  await chunker.add(2, page(2, 1));
  await chunker.finish(12);
  const patches = seen.filter((s) => s.kind === 'patch');
  assert.deepEqual(patches.map((s) => [s.firstPage, s.pageCount]), [[6, 2], [2, 1]]);
  assert.ok(patches[0]!.pages[0]!.equals(page(6, 1)) && patches[0]!.pages[1]!.equals(page(7, 1)));
  assert.equal(chunker.patchCount, 2);
});

test('the lock page never arrives: its chunk is complete without it and holds zeros there', async () => {
  const pageSize = 65536;
  const chunkPages = 4;
  const lockPage = GiB / pageSize + 1; // 16385
  const pool = new BufferPool(8, chunkPages * pageSize);
  const emitted: Emission[] = [];
  const chunker = new Chunker({
    pageSize,
    chunkPages,
    pool,
    emit: async (e) => {
      emitted.push({ ...e, buffer: Buffer.from(e.buffer.subarray(0, e.pageCount * pageSize)) });
      pool.release(e.buffer);
    },
  });
  const first = Math.floor((lockPage - 1) / chunkPages) * chunkPages + 1;
  const filler = Buffer.alloc(pageSize, 0xab);
  // Dirty the pool buffer first so that zeros in the lock page prove the chunker cleared it.
  const dirty = await pool.acquire();
  dirty.fill(0xee);
  pool.release(dirty);
  for (let p = first; p < first + chunkPages; p++) if (p !== lockPage) await chunker.add(p, filler);
  assert.equal(emitted.length, 1, 'the chunk holding the lock page is complete without it');
  const at = (lockPage - first) * pageSize;
  assert.ok(emitted[0]!.buffer.subarray(at, at + pageSize).every((b) => b === 0));
});

test('restart() forgets emitted chunks: every page comes again as a chunk, not a patch', async () => {
  const { chunker, seen, pool } = harness(4);
  for (let p = 2; p <= 8; p++) await chunker.add(p, page(p));
  chunker.restart();
  assert.equal(pool.available, pool.count);
  for (let p = 2; p <= 8; p++) await chunker.add(p, page(p, 2));
  await chunker.add(1, page(1, 2));
  await chunker.finish(8);
  const after = seen.slice(1);
  assert.deepEqual(after.map((s) => [s.kind, s.index]), [['chunk', 1], ['chunk', 0]]);
  assert.ok(after[0]!.pages[0]!.equals(page(5, 2)));
});

test('restart() drops open chunks: a half-filled chunk of the first copy never completes with its old pages', async () => {
  const { chunker, seen } = harness(4);
  await chunker.add(1, page(1));
  await chunker.add(2, page(2));
  chunker.restart();
  for (const p of [3, 4, 1, 2]) await chunker.add(p, page(p, 2));
  await chunker.finish(4);
  assert.deepEqual(seen.map((s) => [s.kind, s.index]), [['chunk', 0]]);
  seen[0]!.pages.forEach((b, i) => assert.ok(b.equals(page(i + 1, 2)), `page ${i + 1} is the second copy's`));
});

test('restart() starts the patches over: numbered from 0 again, and a patch of the first copy does not make a shrink fatal', async () => {
  const { chunker, seen } = harness(4);
  for (let p = 1; p <= 8; p++) await chunker.add(p, page(p));
  await chunker.add(7, page(7, 1)); // a patch of chunk 1
  assert.equal(chunker.patchCount, 0, 'the patch is still open');
  await chunker.add(2, page(2, 1)); // another chunk: the first patch is emitted
  assert.equal(chunker.patchCount, 1);
  chunker.restart();
  assert.equal(chunker.patchCount, 0);
  for (let p = 1; p <= 4; p++) await chunker.add(p, page(p, 2));
  await chunker.add(3, page(3, 3));
  await chunker.finish(4); // the database shrank to 4 pages in the second copy: no SOURCE_SHRANK from page 7's old patch
  const after = seen.slice(seen.findIndex((s) => s.kind === 'chunk' && s.pages[0]!.equals(page(1, 2))));
  assert.deepEqual(after.map((s) => [s.kind, s.index, s.firstPage]), [['chunk', 0, 1], ['patch', 0, 3]]);
  assert.equal(chunker.patchCount, 1);
});

test('a database that shrank below a chunk uploaded whole fails with SOURCE_SHRANK', async () => {
  const { chunker } = harness(4);
  for (let p = 1; p <= 8; p++) await chunker.add(p, page(p));
  await assert.rejects(chunker.finish(6), { code: 'SOURCE_SHRANK' });
});

test('an empty database emits nothing', async () => {
  const { chunker, seen } = harness(4);
  await chunker.finish(0);
  assert.deepEqual(seen, []);
});

test('addPages emits exactly what add() page by page does, for batches with re-sent pages, patches and the lock page', async () => {
  // A page stream like SQLite's: ascending from page 2, pages of open chunks written twice, page 1 late, pages of
  // emitted chunks again (patches), across the lock page (GiB / PS + 1).
  const lock = GiB / PS + 1;
  const numbers: number[] = [];
  for (let p = lock - 10; p <= lock + 9; p++) if (p !== lock) numbers.push(p);
  numbers.splice(5, 0, lock - 8, lock - 7); // re-sent while their chunk is open
  numbers.push(1, lock - 9, lock - 6, lock - 5); // page 1, then pages of chunks already emitted
  for (let p = 2; p <= 5; p++) numbers.push(p);
  const versions = new Map<number, number>();
  const pages = numbers.map((p) => {
    const v = versions.get(p) ?? 0;
    versions.set(p, v + 1);
    return page(p, v);
  });
  const byAdd = harness(4);
  for (const [i, p] of numbers.entries()) await byAdd.chunker.add(p, pages[i]!);
  await byAdd.chunker.finish(lock + 9);
  const byBatch = harness(4);
  for (let at = 0; at < numbers.length; at += 7) {
    const count = Math.min(7, numbers.length - at);
    const data = Buffer.alloc(9 * PS, 0xaa); // larger than the batch: only `count` pages are read
    pages.slice(at, at + count).forEach((b, i) => b.copy(data, i * PS));
    await byBatch.chunker.addPages(Uint32Array.from(numbers.slice(at, at + count)), data, count);
  }
  await byBatch.chunker.finish(lock + 9);
  assert.ok(byAdd.seen.some((s) => s.kind === 'patch'), 'the stream makes patches');
  assert.deepEqual(byBatch.seen, byAdd.seen);
  assert.equal(byBatch.chunker.patchCount, byAdd.chunker.patchCount);
  assert.equal(byBatch.pool.available, byBatch.pool.count, 'every buffer is back');
});
