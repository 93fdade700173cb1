// prune() and forget(): which snapshots go, by a retention policy or by name; how their objects go is gc.ts.
import { StorageError, UsageError } from '../errors.ts';
import { parseSnapshotId } from '../vault/ids.ts';
import { collect, type CollectOptions, type CollectResult } from './gc.ts';
import { applyPolicy, checkPolicy, type RetentionPolicy } from './policy.ts';

export interface PruneOptions extends CollectOptions {
  policy: RetentionPolicy;
}

export interface PruneResult extends CollectResult {
  /** Every readable snapshot with the policy's verdict and the rules that keep it, newest first. */
  decisions: { id: string; keep: boolean; reasons: string[] }[];
}

/**
 * Forgets the snapshots the policy does not keep, and deletes what no kept snapshot references once it has been
 * marked for longer than the grace period. A snapshot whose manifest cannot be read is kept (its time and tags
 * are unknown) and stops every deletion until it is forgotten by name or mended.
 */
export async function prune(options: PruneOptions): Promise<PruneResult> {
  const policy = checkPolicy(options.policy);
  let decisions: PruneResult['decisions'] = [];
  const result = await collect(options, (manifests) => {
    const decided = applyPolicy(
      manifests.map((m) => ({ id: m.id, time: new Date(m.createdAt), tags: m.tags })),
      policy,
    );
    decisions = decided.map((d) => ({ id: d.snapshot.id, keep: d.keep, reasons: d.reasons }));
    return new Set(decisions.filter((d) => !d.keep).map((d) => d.id));
  });
  return { ...result, decisions };
}

export interface ForgetOptions extends CollectOptions {
  /** The snapshots to forget (at least one). */
  ids: readonly string[];
}

/**
 * Forgets the named snapshots (any of them, the newest and damaged ones too); their objects go the way a
 * prune's do. A name that is not a snapshot id is UsageError BAD_SNAPSHOT_ID, one not in the vault StorageError
 * NOT_FOUND, both before anything is written.
 */
export async function forget(options: ForgetOptions): Promise<CollectResult> {
  if (options.ids.length === 0) throw new UsageError('BAD_OPTION', 'forget needs at least one snapshot id');
  for (const id of options.ids) parseSnapshotId(id);
  return collect(options, (manifests, damaged) => {
    const present = new Set([...manifests.map((m) => m.id), ...damaged]);
    const missing = options.ids.filter((id) => !present.has(id));
    if (missing.length > 0) {
      throw new StorageError('NOT_FOUND', `no snapshot ${missing.join(', ')} in the vault: run \`pagevault ls\` to see the snapshots; nothing was forgotten`);
    }
    return new Set(options.ids);
  });
}
