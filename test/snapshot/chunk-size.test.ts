// The default chunk size: small for small databases, doubling as they grow, stable across snapshots.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GiB, KiB, MiB } from '../../src/config/defaults.ts';
import { chooseChunkPages } from '../../src/snapshot/chunk-size.ts';

const pages = (bytes: number, pageSize = 4096) => bytes / pageSize;

test('64 KiB up to 8 GiB, then doubling so that a manifest stays near 131,072 extents', () => {
  const size = (db: number) => chooseChunkPages({ pageSize: 4096, estimatedPages: pages(db) }) * 4096;
  assert.equal(size(0), 64 * KiB);
  assert.equal(size(GiB), 64 * KiB);
  assert.equal(size(8 * GiB), 64 * KiB);
  assert.equal(size(8 * GiB + 4096), 128 * KiB);
  assert.equal(size(100 * GiB), 1 * MiB);
  assert.equal(size(10_000 * GiB), 4 * MiB, 'capped');
});

test("a page larger than the chunk size makes one-page chunks; an explicit size is rounded down to pages", () => {
  assert.equal(chooseChunkPages({ pageSize: 65536, estimatedPages: 10 }), 1);
  assert.equal(chooseChunkPages({ pageSize: 4096, estimatedPages: 10, chunkSize: 10_000 }), 2);
  assert.equal(chooseChunkPages({ pageSize: 4096, estimatedPages: 10, chunkSize: 1000 }), 1);
  assert.throws(() => chooseChunkPages({ pageSize: 4096, estimatedPages: 10, chunkSize: 100 }), { code: 'BAD_OPTION' });
});

test("the parent's chunk size is kept while it is within bounds, so that unchanged chunks still match", () => {
  const parent = { pageSize: 4096, chunkPages: 64 }; // 256 KiB
  assert.equal(chooseChunkPages({ pageSize: 4096, estimatedPages: pages(GiB), parent }), 64, 'larger than needed, kept');
  assert.equal(chooseChunkPages({ pageSize: 4096, estimatedPages: pages(GiB), parent: { pageSize: 4096, chunkPages: 1024 } }), 16, 'far too large: back to 64 KiB');
  assert.equal(chooseChunkPages({ pageSize: 4096, estimatedPages: pages(64 * GiB), parent: { pageSize: 4096, chunkPages: 16 } }), 128, 'grown past it: 512 KiB');
  assert.equal(chooseChunkPages({ pageSize: 8192, estimatedPages: pages(GiB, 8192), parent }), 8, 'another page size: no match possible anyway');
});
