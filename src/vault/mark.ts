// A mark: garbage collection's record that some objects may be deleted once a grace period has passed
// (docs/FORMAT.md, "Garbage collection"). A prune writes one per snapshot id whose objects it condemns, at
// gc/marks/<snapshot id>/<prune id>, before it forgets anything; the store's LastModified of the mark is when
// the grace period began. Marks are enveloped like manifests, so a damaged one is seen as damaged, never misread.
import { BugError, IntegrityError } from '../errors.ts';
import { Malformed } from './bytes.ts';
import { decoding, objectKinds, seal, unseal } from './envelope.ts';
import { isSnapshotId, isUtcTimestamp } from './ids.ts';
import { parseMarkKey, snapshotIdOfKey } from './layout.ts';
import { MAX_OBJECT_SIZE } from './manifest.ts';

/**
 * - forget: the snapshot's manifest is being forgotten; `objects` are every object it referenced (its extent
 *   table, the packs it lists, its own packs), so that none of them is deleted within the grace period after
 *   the last manifest that could lead a running snapshot to them went away;
 * - unreferenced: objects no manifest referenced when the prune listed the vault (a killed snapshot's, a
 *   forgotten snapshot's leftovers).
 */
export type MarkKind = 'forget' | 'unreferenced';

export interface Mark {
  snapshot: string;
  prune: string;
  kind: MarkKind;
  /** The grace period the prune that wrote it was run with, in ms. */
  graceMs: number;
  hostname: string;
  /** The writer's clock when it wrote the mark (for people; the grace period runs from the store's time). */
  createdAt: string;
  objects: { key: string; size: number }[];
}

const FIELDS = ['snapshot', 'prune', 'kind', 'graceMs', 'hostname', 'createdAt', 'objects'];

function check(m: unknown, fail: (message: string) => never): Mark {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) fail('it is not a JSON object');
  const r = m as Record<string, unknown>;
  const keys = Object.keys(r);
  if (keys.length !== FIELDS.length || !FIELDS.every((f) => f in r)) fail(`it must have exactly the fields ${FIELDS.join(', ')}`);
  if (!isSnapshotId(r.snapshot) || !isSnapshotId(r.prune)) fail('snapshot and prune must be snapshot ids');
  if (r.kind !== 'forget' && r.kind !== 'unreferenced') fail('kind must be "forget" or "unreferenced"');
  if (!Number.isSafeInteger(r.graceMs) || (r.graceMs as number) < 0) fail('graceMs must be an integer >= 0');
  if (typeof r.hostname !== 'string' || !isUtcTimestamp(r.createdAt)) fail('hostname must be a string and createdAt a UTC time');
  if (!Array.isArray(r.objects)) fail('objects must be an array');
  const objects = (r.objects as unknown[]).map((o, i) => {
    const e = o as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || typeof e.key !== 'string' || snapshotIdOfKey(e.key) === undefined) {
      fail(`objects[${i}] must name an extent table or a pack`);
    }
    if (!Number.isSafeInteger(e.size) || (e.size as number) < 0 || (e.size as number) > MAX_OBJECT_SIZE) fail(`objects[${i}].size is not an object size`);
    return { key: e.key as string, size: e.size as number };
  });
  return { snapshot: r.snapshot as string, prune: r.prune as string, kind: r.kind as MarkKind, graceMs: r.graceMs as number, hostname: r.hostname as string, createdAt: r.createdAt as string, objects };
}

export function encodeMark(m: Mark): Buffer {
  const mark = check(m, (message) => {
    throw new BugError(`encode mark ${String(m?.snapshot)}/${String(m?.prune)}: ${message}`);
  });
  return seal(objectKinds.mark, Buffer.from(JSON.stringify(mark), 'utf8'));
}

/** The mark stored at `key`; IntegrityError MARK_DAMAGED (or MANIFEST_VERSION from a newer pagevault) otherwise. */
export function decodeMark(bytes: Buffer, key: string): Mark {
  const damaged = (detail: string, cause: unknown) => new IntegrityError('MARK_DAMAGED', `mark ${key} is damaged: ${detail}`, { cause });
  return decoding(damaged, () => {
    const named = parseMarkKey(key);
    if (!named) throw new Malformed('its key is not a mark key');
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(unseal(objectKinds.mark, bytes, `mark ${key}`)));
    } catch (err) {
      if (err instanceof IntegrityError || err instanceof Malformed) throw err;
      throw new Malformed(`its JSON does not parse (${(err as Error).message})`);
    }
    const mark = check(parsed, (message) => {
      throw new Malformed(message);
    });
    if (mark.snapshot !== named.snapshotId || mark.prune !== named.pruneId) throw new Malformed('it holds another snapshot or prune id than its key names');
    return mark;
  });
}
