// Cleaning up after snapshots that died (kill -9, a lost host): their pack writes were never completed nor
// aborted (S3 multipart uploads, the file store's temp files), and they cost storage until someone removes
// them. A later snapshot (and a prune, past its grace period) sweeps those older than any snapshot could still
// be running, through the store's sweepIncomplete capability; the bucket lifecycle rule in docs/OPERATIONS.md does the same on the server side.
// Completed packs that no manifest references are left to pruning (two-phase, with a grace period: see
// docs/DESIGN.md, invariant 7, safe deletion).
import type { Logger } from 'pino';
import { StorageError } from '../errors.ts';
import type { StorageClient } from '../storage/client.ts';
import { packsPrefix } from '../vault/layout.ts';

/** Sweeps unfinished pack writes older than `olderThanMs`; returns how many. Best effort: never throws. */
export async function abortStaleUploads(
  storage: StorageClient,
  options: { olderThanMs: number; signal?: AbortSignal; logger?: Logger },
): Promise<number> {
  if (!storage.sweepIncomplete) return 0;
  try {
    const swept = await storage.sweepIncomplete(packsPrefix, options.olderThanMs, { ...(options.signal ? { signal: options.signal } : {}) });
    for (const write of swept) {
      options.logger?.info({ key: write.key, initiated: write.started }, 'aborted a stale upload left by an earlier snapshot');
    }
    return swept.length;
  } catch (err) {
    if (err instanceof StorageError && err.code === 'NOT_SUPPORTED') {
      options.logger?.debug({ url: storage.url }, 'this server cannot list multipart uploads: rely on the bucket lifecycle rule');
    } else {
      options.logger?.warn({ err: (err as Error).message }, 'could not clean up stale uploads');
    }
    return 0;
  }
}
