// Reading and writing the vault's small objects through a StorageClient: the repository config, the list of
// snapshots, manifests and extent tables. Snapshot and restore share these; they hold no state.
import type { Logger } from 'pino';
import { IntegrityError, StorageError } from '../errors.ts';
import { listObjects, type StorageClient } from '../storage/client.ts';
import { decodeConfig, encodeConfig, newRepositoryConfig } from './config.ts';
import { isSnapshotId } from './ids.ts';
import { openExtentTable, type ExtentTable } from './extent-table.ts';
import { configKey, extentTableKey, extentsPrefix, manifestKey, manifestPrefix, packsPrefix, snapshotIdFromManifestKey } from './layout.ts';
import { decodeManifest } from './manifest.ts';
import type { Manifest, RepositoryConfig } from './model.ts';

interface Options {
  signal?: AbortSignal;
}

function isCode(err: unknown, code: string): boolean {
  return err instanceof StorageError && err.code === code;
}

/**
 * The repository config, or undefined when the vault holds nothing of pagevault's at all (no config, no
 * manifest, no pack: a vault no snapshot was ever written into). A vault that has manifests or packs but no
 * config was damaged by something else (a deleted object, a lifecycle rule, a wrong prefix copy): that is
 * IntegrityError CONFIG_MISSING, never "empty", so that a restore does not report "no snapshot" and a
 * snapshot does not quietly write a new config over the evidence. A damaged config is CONFIG_DAMAGED.
 */
export async function readRepository(storage: StorageClient, options: Options = {}): Promise<RepositoryConfig | undefined> {
  let bytes: Buffer;
  try {
    bytes = await storage.getObject(configKey, options);
  } catch (err) {
    if (!isCode(err, 'NOT_FOUND')) throw err;
    const found = await anyKey(storage, [manifestPrefix, extentsPrefix, packsPrefix], options);
    if (found === undefined) return undefined;
    throw new IntegrityError(
      'CONFIG_MISSING',
      `vault ${storage.url} holds ${found} but its repository config ${configKey} is missing: ` +
        `something other than pagevault deleted it; put back a copy (bucket versioning, another replica) before using this vault`,
      { cause: err },
    );
  }
  return decodeConfig(bytes, `${storage.url}/${configKey}`);
}

/** The first key found under any of `prefixes`, or undefined when none holds one. */
export async function anyKey(storage: StorageClient, prefixes: string[], options: Options): Promise<string | undefined> {
  for (const prefix of prefixes) {
    for await (const object of listObjects(storage, prefix, options)) return object.key;
  }
  return undefined;
}

/**
 * The repository config, written first (conditionally) if the vault is empty. Refuses a vault written by a
 * newer pagevault (IntegrityError CONFIG_VERSION), and one whose config is missing or damaged (see
 * readRepository), before anything else is written into it.
 */
export async function ensureRepository(storage: StorageClient, options: Options = {}): Promise<RepositoryConfig> {
  const existing = await readRepository(storage, options);
  if (existing) return existing;
  const config = newRepositoryConfig(new Date());
  try {
    await storage.putIfAbsent(configKey, encodeConfig(config), options);
    return config;
  } catch (err) {
    // Another host created it between our read and our write: use theirs.
    if (isCode(err, 'ALREADY_EXISTS')) return (await readRepository(storage, options))!;
    throw err;
  }
}

/** Ids of the published snapshots, oldest first (ids sort by creation time). Foreign keys are ignored. */
export async function listSnapshotIds(storage: StorageClient, options: Options = {}): Promise<string[]> {
  const ids: string[] = [];
  for await (const object of listObjects(storage, manifestPrefix, options)) {
    const id = object.key.slice(manifestPrefix.length);
    if (!id.includes('/') && isSnapshotId(id)) ids.push(snapshotIdFromManifestKey(object.key));
  }
  return ids.sort();
}

/** A manifest as read from the vault, with its object's size. */
export type StoredManifest = Manifest & { byteLength: number };

/**
 * The manifest of snapshot `id`, verified (its digest, its own id). Rejects with StorageError NOT_FOUND if
 * there is no such snapshot, IntegrityError MANIFEST_DAMAGED / MANIFEST_VERSION otherwise.
 */
export async function readManifest(storage: StorageClient, id: string, options: Options = {}): Promise<StoredManifest> {
  const bytes = await manifestBytes(storage, id, options);
  return { ...decodeManifest(bytes, id), byteLength: bytes.length };
}

/**
 * The extent table of a snapshot whose manifest has been read, verified against it. A table that is gone
 * while its manifest is there is damage (IntegrityError EXTENTS_MISSING), as is one that does not decode or
 * is not the one the manifest names (EXTENTS_DAMAGED).
 */
export async function readExtentTable(storage: StorageClient, manifest: Manifest, options: Options = {}): Promise<ExtentTable> {
  return openExtentTable(await extentTableBytes(storage, manifest, options), manifest);
}

/** The bytes of a snapshot's extent table, not yet checked; IntegrityError EXTENTS_MISSING when it is gone. */
export async function extentTableBytes(storage: StorageClient, manifest: Pick<Manifest, 'id'>, options: Options = {}): Promise<Buffer> {
  const key = extentTableKey(manifest.id);
  let bytes: Buffer;
  try {
    bytes = await storage.getObject(key, options);
  } catch (err) {
    if (isCode(err, 'NOT_FOUND')) {
      throw new IntegrityError('EXTENTS_MISSING', `snapshot ${manifest.id}: its extent table ${storage.url}/${key} is missing; the snapshot cannot be restored`, {
        cause: err,
      });
    }
    throw err;
  }
  return bytes;
}

async function manifestBytes(storage: StorageClient, id: string, options: Options): Promise<Buffer> {
  try {
    return await storage.getObject(manifestKey(id), options);
  } catch (err) {
    if (isCode(err, 'NOT_FOUND')) {
      throw new StorageError('NOT_FOUND', `no snapshot ${id} in ${storage.url}: run \`pagevault ls\` to see the snapshots`, { cause: err });
    }
    throw err;
  }
}

/**
 * The newest snapshot whose manifest reads back intact, or undefined for an empty vault. A damaged newer
 * manifest is skipped with a warning (an incremental snapshot then builds on an older one).
 */
export async function latestManifest(storage: StorageClient, options: Options & { logger?: Logger } = {}): Promise<StoredManifest | undefined> {
  const ids = await listSnapshotIds(storage, options);
  for (let i = ids.length - 1; i >= 0; i--) {
    try {
      return await readManifest(storage, ids[i]!, options);
    } catch (err) {
      if (!(err instanceof IntegrityError) || err.code === 'MANIFEST_VERSION') throw err;
      options.logger?.warn({ snapshot: ids[i], err: err.message }, 'skipping a damaged manifest');
    }
  }
  return undefined;
}
