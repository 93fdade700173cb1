// listSnapshots(): the snapshots in a vault with what their manifests say, oldest first. A damaged object
// does not hide the rest: a manifest that cannot be read is listed by its id with the reason, and a missing
// or damaged repository config is reported beside the listing, so that what can still be read is seen.
import type { Logger } from 'pino';
import { listObjects, type ObjectInfo, type StorageClient } from './storage/client.ts';
import { referencedKeys } from './lifecycle/gc.ts';
import { openStorage, type StorageOptions } from './storage/registry.ts';
import { storageDefaults } from './config/defaults.ts';
import { IntegrityError, StorageError, UsageError } from './errors.ts';
import { componentLogger } from './util/logger.ts';
import { runAll } from './util/run-all.ts';
import { extentsPrefix, manifestKey, packsPrefix, snapshotIdOfKey } from './vault/layout.ts';
import type { SnapshotStats } from './vault/model.ts';
import { listSnapshotIds, readManifest, readRepository, type StoredManifest } from './vault/repository.ts';

export interface ListOptions {
  url?: string;
  storage?: StorageClient;
  storageOptions?: Omit<StorageOptions, 'onEvent'>;
  signal?: AbortSignal;
  /** Storage retries and throttling are logged here (component "list.storage"). */
  logger?: Logger;
}

/** What ls shows of a snapshot: its manifest's summary (the chunk counts as the manifest's stats hold them). */
export interface SnapshotSummary extends Pick<SnapshotStats, 'chunksNew' | 'chunksReused' | 'chunksZero'> {
  id: string;
  createdAt: string;
  completedAt: string;
  parent: string | null;
  pageSize: number;
  pageCount: number;
  /** Database size in bytes (pageCount x pageSize). */
  size: number;
  /** Bytes the snapshot wrote: its packs, its extent table and its manifest (as its SnapshotResult said). */
  bytesUploaded: number;
  /** The source database's path as the snapshot recorded it, else its file name; null for an in-memory database. */
  source: string | null;
  hostname: string;
  tags: string[];
  damaged?: undefined;
}

/** A snapshot whose manifest is listed but cannot be read: nothing of it is known but its id. */
export interface DamagedSnapshot {
  id: string;
  /** Why: the error's message, naming the object. */
  damaged: string;
  /** The error's code: MANIFEST_DAMAGED, MANIFEST_VERSION (a newer pagevault wrote it) or NOT_FOUND (gone since listed). */
  code: string;
}

export type SnapshotEntry = SnapshotSummary | DamagedSnapshot;

/** Objects and their bytes. */
export interface StoredBytes {
  objects: number;
  bytes: number;
}

export interface SnapshotListing {
  /** Every snapshot in the vault, oldest first; those whose manifest cannot be read have `damaged` set. */
  snapshots: SnapshotEntry[];
  /** What the vault stores: its manifests, extent tables and packs (not its config or prune's bookkeeping). */
  stored: StoredBytes;
  /**
   * Of `stored`, the extent tables and packs no listed snapshot references: a killed snapshot's, or waiting for
   * a prune to delete them (or, while some manifest cannot be read, perhaps referenced by it).
   */
  unreferenced: StoredBytes;
  /**
   * The repository config's problem, when it cannot be read while manifests or packs exist: IntegrityError
   * CONFIG_MISSING, CONFIG_DAMAGED or CONFIG_VERSION (see readRepository). Nothing restores until it is mended.
   */
  configError?: IntegrityError;
}

/**
 * The vault's snapshots. Rejects only when the vault cannot be listed at all (StorageError, AbortedError);
 * damage to single objects is in the result (see SnapshotListing), for the caller to judge.
 */
export async function listSnapshots(options: ListOptions): Promise<SnapshotListing> {
  if (!options.storage && !options.url) throw new UsageError('BAD_OPTION', 'listSnapshots needs a vault url (or a storage client)');
  const storage = options.storage ?? openStorage(options.url!, { ...options.storageOptions, logger: componentLogger(options.logger, 'list') });
  const signal = options.signal;
  try {
    const [configError, ids, objects] = await Promise.all([configProblem(storage, signal), listSnapshotIds(storage, { signal }), snapshotObjects(storage, signal)]);
    const referenced = new Set<string>();
    let manifestBytes = 0;
    // One GET per manifest, several at once: a vault of a cron job's snapshots holds thousands.
    const snapshots: SnapshotEntry[] = new Array(ids.length);
    await runAll(
      ids,
      storageDefaults.concurrency,
      async (id, i) => {
        try {
          const m = await readManifest(storage, id, { signal });
          snapshots[i] = summary(id, m);
          manifestBytes += m.byteLength;
          for (const key of referencedKeys(m)) referenced.add(key);
        } catch (err) {
          snapshots[i] = damaged(storage, id, err);
        }
      },
      { ...(signal ? { signal } : {}), what: 'list snapshots' },
    );
    const unreferenced = objects.filter((o) => !referenced.has(o.key));
    const totals = {
      stored: { objects: objects.length + snapshots.filter((e) => e.damaged === undefined).length, bytes: sum(objects) + manifestBytes },
      unreferenced: { objects: unreferenced.length, bytes: sum(unreferenced) },
    };
    return configError ? { snapshots, ...totals, configError } : { snapshots, ...totals };
  } finally {
    if (!options.storage) await storage.close();
  }
}

/** The extent tables and packs of the vault (one listing of each prefix). */
async function snapshotObjects(storage: StorageClient, signal: AbortSignal | undefined): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  for (const prefix of [extentsPrefix, packsPrefix]) {
    for await (const o of listObjects(storage, prefix, { ...(signal ? { signal } : {}) })) if (snapshotIdOfKey(o.key) !== undefined) objects.push(o);
  }
  return objects;
}

function sum(objects: readonly { size: number }[]): number {
  return objects.reduce((n, o) => n + o.size, 0);
}

async function configProblem(storage: StorageClient, signal: AbortSignal | undefined): Promise<IntegrityError | undefined> {
  try {
    await readRepository(storage, { signal });
    return undefined;
  } catch (err) {
    if (err instanceof IntegrityError) return err;
    throw err;
  }
}

function summary(id: string, m: StoredManifest): SnapshotSummary {
  return {
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
    source: m.source.path ?? m.source.fileName,
    hostname: m.source.hostname,
    tags: m.tags,
  };
}

/** The entry for a manifest that did not read back; rethrows what is not about that one object. */
function damaged(storage: StorageClient, id: string, err: unknown): DamagedSnapshot {
  if (err instanceof IntegrityError) return { id, damaged: err.message, code: err.code };
  if (err instanceof StorageError && err.code === 'NOT_FOUND') {
    return { id, damaged: `manifest ${manifestKey(id)} in ${storage.url} was listed, then could not be found`, code: err.code };
  }
  throw err;
}
