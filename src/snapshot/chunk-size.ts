// The chunk size of a snapshot. Small chunks make incremental snapshots small (the benchmark: after 1,000
// random row updates of a 1 GiB database, 64 KiB chunks uploaded 6.8% of it, 256 KiB 21.6%, 1 MiB 43.8%),
// but every chunk costs ~35 bytes of manifest, mostly its digest. So the size starts at 64 KiB and doubles
// as the database grows, keeping the manifest under targetMaxChunks extents (~4.5 MB): 64 KiB up to 8 GiB,
// 1 MiB at 100 GiB. A snapshot keeps its parent's chunk size while that is still within bounds, because
// chunks of another size never match the parent's and everything would be uploaded again.
import { snapshotDefaults } from '../config/defaults.ts';
import { UsageError } from '../errors.ts';

export function chooseChunkPages(options: {
  pageSize: number;
  /** The database's size in pages as far as known before the copy (it may change meanwhile). */
  estimatedPages: number;
  parent?: { pageSize: number; chunkPages: number };
  /** An explicit chunk size in bytes: rounded down to whole pages. */
  chunkSize?: number;
}): number {
  const { pageSize, estimatedPages, parent, chunkSize } = options;
  if (chunkSize !== undefined) {
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 512) throw new UsageError('BAD_OPTION', `chunkSize must be an integer >= 512, got ${chunkSize}`);
    return Math.max(1, Math.floor(chunkSize / pageSize));
  }
  const { minChunkSize, maxChunkSize, targetMaxChunks } = snapshotDefaults;
  let size = Math.max(minChunkSize, pageSize);
  while (size < maxChunkSize && (estimatedPages * pageSize) / size > targetMaxChunks) size *= 2;
  const pages = Math.max(1, Math.floor(size / pageSize));
  if (parent && parent.pageSize === pageSize && parent.chunkPages >= pages && parent.chunkPages <= pages * 4) return parent.chunkPages;
  return pages;
}
