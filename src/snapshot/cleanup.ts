// Cleaning up after snapshots that died (kill -9, a lost host): their multipart uploads were never completed
// nor aborted, and their parts cost storage until someone aborts them. A later snapshot aborts those that have
// been idle longer than any snapshot could still be running; the bucket lifecycle rule in docs/OPERATIONS.md
// does the same on the server side. Completed packs that no manifest references are left to pruning
// (two-phase, with a grace period: see docs/DESIGN.md, invariant 7, safe deletion).
import type { Logger } from 'pino';
import { StorageError } from '../errors.ts';
import type { StorageClient } from '../storage/client.ts';
import { packsPrefix } from '../vault/layout.ts';

/** Aborts multipart uploads of packs idle for longer than `olderThanMs`. Best effort: never throws. */
export async function abortStaleUploads(
  storage: StorageClient,
  options: { olderThanMs: number; signal?: AbortSignal; logger?: Logger },
): Promise<number> {
  const cutoff = Date.now() - options.olderThanMs;
  let aborted = 0;
  try {
    for await (const upload of storage.listMultipartUploads(packsPrefix, { signal: options.signal })) {
      if (!upload.initiated || upload.initiated.getTime() > cutoff) continue;
      await storage.abortMultipartUpload(upload.key, upload.uploadId, { signal: options.signal });
      aborted++;
      options.logger?.info({ key: upload.key, initiated: upload.initiated }, 'aborted a stale multipart upload left by an earlier snapshot');
    }
  } catch (err) {
    if (err instanceof StorageError && err.code === 'NOT_SUPPORTED') {
      options.logger?.debug({ url: storage.url }, 'this server cannot list multipart uploads: rely on the bucket lifecycle rule');
    } else {
      options.logger?.warn({ err: (err as Error).message }, 'could not clean up stale multipart uploads');
    }
  }
  return aborted;
}
