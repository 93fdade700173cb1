// listSnapshots(): the snapshots in a vault with what their manifests say, oldest first.
import type { StorageClient } from './storage/client.ts';
import { openStorage, type StorageOptions } from './storage/registry.ts';
import { storageDefaults } from './config/defaults.ts';
import { UsageError } from './errors.ts';
import { runAll } from './util/run-all.ts';
import { listSnapshotIds, readManifestView } from './vault/repository.ts';

export interface ListOptions {
  url?: string;
  storage?: StorageClient;
  storageOptions?: Omit<StorageOptions, 'onEvent'>;
  signal?: AbortSignal;
}

export interface SnapshotSummary {
  id: string;
  createdAt: string;
  completedAt: string;
  parent: string | null;
  pageSize: number;
  pageCount: number;
  /** Database size in bytes (pageCount x pageSize). */
  size: number;
  /** Bytes the snapshot wrote: its packs and its manifest (as its SnapshotResult said). */
  bytesUploaded: number;
  chunksNew: number;
  chunksReused: number;
  chunksZero: number;
  source: string | null;
  hostname: string;
}

export async function listSnapshots(options: ListOptions): Promise<SnapshotSummary[]> {
  if (!options.storage && !options.url) throw new UsageError('BAD_OPTION', 'listSnapshots needs a vault url (or a storage client)');
  const storage = options.storage ?? openStorage(options.url!, options.storageOptions ?? {});
  try {
    const ids = await listSnapshotIds(storage, { signal: options.signal });
    // One GET per manifest, several at once: a vault of a cron job's snapshots holds thousands.
    const out: SnapshotSummary[] = new Array(ids.length);
    await runAll(
      ids,
      storageDefaults.concurrency,
      async (id, i) => {
        const m = await readManifestView(storage, id, { signal: options.signal });
        out[i] = {
          id,
          createdAt: m.createdAt,
          completedAt: m.completedAt,
          parent: m.parent,
          pageSize: m.pageSize,
          pageCount: m.pageCount,
          size: m.pageSize * m.pageCount,
          bytesUploaded: m.stats.bytesUploaded + m.byteLength,
          chunksNew: m.stats.chunksNew,
          chunksReused: m.stats.chunksReused,
          chunksZero: m.stats.chunksZero,
          source: m.source.fileName,
          hostname: m.source.hostname,
        };
      },
      { ...(options.signal ? { signal: options.signal } : {}), what: 'list snapshots' },
    );
    return out;
  } finally {
    if (!options.storage) await storage.close();
  }
}
