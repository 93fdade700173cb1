// The pipeline's restart rule through its real parts (chunker, codec workers, pack writer on a file:// vault),
// fed page batches made here: a copy that restarts, shrinks and changes content must come out as exactly the
// copy after the restart, with no patch, however late the stores of the first copy finish.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import type { PageBatch } from '../../src/source/page-source.ts';
import { openStorage } from '../../src/storage/registry.ts';
import { SnapshotBuilder } from '../../src/snapshot/builder.ts';
import { DedupIndex } from '../../src/snapshot/dedup.ts';
import { SnapshotPipeline } from '../../src/snapshot/pipeline.ts';
import { databaseDigest } from '../../src/vault/manifest.ts';
import { tempDir } from '../helpers/sqlite.ts';

const ID = '20261202T030405678Z-0123456789';
const pageSize = 4096;
const chunkPages = 4;
const chunkBytes = pageSize * chunkPages;

/** Batches of the pages in `db` (page i at (i - 1) * pageSize), `perBatch` at a time; the first marked restarted. */
function* batches(db: Buffer, perBatch: number, restarted: boolean): Generator<PageBatch> {
  const pages = db.length / pageSize;
  for (let first = 1; first <= pages; first += perBatch) {
    const count = Math.min(perBatch, pages - first + 1);
    const pageNumbers = Uint32Array.from({ length: count }, (_, i) => first + i);
    yield { count, pageNumbers, data: db.subarray((first - 1) * pageSize, (first - 1 + count) * pageSize), resent: new Uint8Array(count), restarted: restarted && first === 1 };
  }
}

function expectedDigest(db: Buffer): string {
  const digests = [];
  for (let at = 0; at < db.length; at += chunkBytes) digests.push(createHash('sha256').update(db.subarray(at, at + chunkBytes)).digest());
  return databaseDigest(digests);
}

test('a restart that shrinks and changes the database: the page map is the second copy alone, with no patch', async (t) => {
  const dir = tempDir(t);
  const storage = openStorage(`file://${join(dir, 'vault')}`);
  t.after(() => storage.close());
  const first = randomBytes(24 * chunkBytes); // 24 chunks
  const second = Buffer.concat([randomBytes(3 * chunkBytes), first.subarray(3 * chunkBytes, 6 * chunkBytes)]); // 6 chunks, half of them unchanged
  const index = new DedupIndex({ pageSize, chunkPages, chunksEstimated: 24 });
  const builder = new SnapshotBuilder({ pageSize, chunkPages, chunksEstimated: 24 });
  const controller = new AbortController();
  const pipeline = new SnapshotPipeline({
    storage,
    snapshotId: ID,
    pageSize,
    chunkPages,
    index,
    builder,
    workers: 2,
    compressionLevel: 3,
    uploadConcurrency: 2,
    partSize: 5 * 2 ** 20,
    maxBytesInFlight: 10 * 2 ** 20,
    signal: controller.signal,
    fail: (err) => controller.abort(err),
    log: pino({ level: 'silent' }),
  });
  try {
    // The second copy's first batch comes at once, while the codec workers still hold the first copy's chunks.
    await pipeline.copy(
      (async function* () {
        yield* batches(first, 96, false);
        yield* batches(second, 8, true);
      })(),
    );
    await pipeline.finish(second.length / pageSize);
    const map = builder.pageMap(index, second.length / pageSize);
    assert.equal(map.patches, 0, 'pages sent again after a restart are chunks, not patches');
    assert.deepEqual(
      [...map.extents].map((e) => [e.firstPage, e.pageCount]),
      Array.from({ length: 6 }, (_, i) => [i * chunkPages + 1, chunkPages]),
    );
    assert.equal(map.databaseDigest, expectedDigest(second), 'the content is the second copy');
    assert.equal(map.counts.chunksNew + map.counts.chunksReused, 6);
  } finally {
    await pipeline.close();
  }
});
