// The snapshot's side of lock-free garbage collection (docs/FORMAT.md, "Garbage collection"): just before its
// manifest is written, a snapshot makes sure that nothing it references can have been deleted, or be deleted
// before the manifest is visible. Two listings of a few keys each, however large the vault:
//
// - it must still be within its window: half the grace period from its start, less a margin (safeWindowMs).
//   A prune deletes an object only after every mark on it has aged a whole grace period, and the mark that
//   forgets the parent is written at most half a grace period before the parent's manifest goes; so a
//   snapshot inside its window can trust that whatever it read from its parent is still there, or marked;
// - the marks on its parent's forgetting (gc/marks/<parent>/, kind forget) and on its own objects
//   (gc/marks/<own id>/, which a prune writes when it finds packs without a manifest) give the earliest
//   time, by the store's clock, at which any of them may go; the snapshot publishes only if that is further
//   off than the margin. Otherwise it publishes nothing (ConflictError), and the next snapshot, whose parent
//   is then another one, uploads what it needs again.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { gcDefaults } from '../config/defaults.ts';
import { ConflictError, StorageError } from '../errors.ts';
import { listObjects, type StorageClient } from '../storage/client.ts';
import { safeWindowMs } from '../lifecycle/gc.ts';
import { extentTableKey, markPrefix } from '../vault/layout.ts';
import { decodeMark } from '../vault/mark.ts';
import { formatDuration } from '../util/format.ts';

export interface PublishCheck {
  storage: StorageClient;
  id: string;
  parent: string | null;
  /** performance.now() when the snapshot began, before it read its parent. */
  startedAt: number;
  graceMs: number;
  signal: AbortSignal;
  log: Logger;
}

/** Resolves when the manifest may be written; rejects with ConflictError SNAPSHOT_EXPIRED otherwise. */
export async function checkPublishable(c: PublishCheck): Promise<void> {
  const window = safeWindowMs(c.graceMs);
  const elapsed = performance.now() - c.startedAt;
  const hint = 'raise --grace (on every snapshot and prune of this vault) above twice the longest snapshot';
  if (elapsed > window) {
    throw new ConflictError(
      'SNAPSHOT_EXPIRED',
      `snapshot ${c.id} took ${formatDuration(elapsed)}, more than the ${formatDuration(window)} its grace period of ${formatDuration(c.graceMs)} allows: ` +
        'a prune may have deleted objects it reuses, so nothing was published; the next snapshot uploads them again',
      { hint },
    );
  }
  const marks = [];
  for (const [id, kinds] of [[c.id, ['forget', 'unreferenced']], ...(c.parent ? [[c.parent, ['forget']]] : [])] as [string, string[]][]) {
    for await (const o of listObjects(c.storage, markPrefix(id), { signal: c.signal })) {
      try {
        const mark = decodeMark(await c.storage.getObject(o.key, { signal: c.signal }), o.key);
        if (kinds.includes(mark.kind)) marks.push({ key: o.key, at: o.lastModified?.getTime() ?? 0, graceMs: mark.graceMs, kind: mark.kind });
      } catch (err) {
        if (err instanceof StorageError && err.code === 'NOT_FOUND') continue;
        throw err;
      }
    }
  }
  if (marks.length === 0) return;
  // The store's time now, at the latest: the extent table was written just before, and this much time has passed since.
  const sent = performance.now();
  const table = await c.storage.head(extentTableKey(c.id), { signal: c.signal });
  const storeNow = (table.lastModified?.getTime() ?? Date.now()) + (performance.now() - sent) + 1000;
  const margin = Math.min(c.graceMs * gcDefaults.publishMarginFraction, gcDefaults.publishMarginMaxMs);
  for (const m of marks) {
    const deletableAt = m.at + m.graceMs;
    if (deletableAt - storeNow > margin) continue;
    throw new ConflictError(
      'SNAPSHOT_EXPIRED',
      `snapshot ${c.id}: a prune marked ${m.kind === 'forget' ? `its parent ${c.parent} forgotten` : 'its uploads unreferenced'} (${m.key}) ` +
        `and may delete what it reuses from ${new Date(deletableAt).toISOString()}; nothing was published: the next snapshot uploads it again`,
      { hint },
    );
  }
  c.log.info({ id: c.id, marks: marks.map((m) => m.key) }, 'a prune marked objects this snapshot uses; their grace period leaves time to publish');
}
