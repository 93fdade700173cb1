// restore(): a snapshot from a vault back into a database file, verified before it is put in place, in parts:
//
//   the target's rules (target.ts) -> the snapshot chosen, its manifest and extent table -> the plan (plan.ts:
//   ranged reads of ~8 MiB) -> assemble (assemble.ts: parallel GETs, decode + verify each extent in the codec
//   workers, positional writes into a temp file beside the target) -> verify (verify.ts: fsync, the
//   whole-database digest read back, PRAGMA integrity_check) -> install (target.ts: rename, fsync the directory)
//
// Until the rename, the target is untouched; on any failure the temp file is removed. What happens to the
// target itself (symlinks, -wal/-shm beside it, other processes holding it, owner and mode) is target.ts.
import { constants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { restoreDefaults } from '../config/defaults.ts';
import { AbortedError, IntegrityError, StorageError, throwIfAborted, UsageError } from '../errors.ts';
import type { StorageClient } from '../storage/client.ts';
import { openStorage, parseStorageUrl, type StorageOptions } from '../storage/registry.ts';
import { componentLogger } from '../util/logger.ts';
import { runAll } from '../util/run-all.ts';
import { parseSnapshotId } from '../vault/ids.ts';
import { extentsPrefix, packsPrefix } from '../vault/layout.ts';
import { anyKey, listSnapshotIds, readExtentTable, readManifest, readRepository } from '../vault/repository.ts';
import { assemble, PackMissingError } from './assemble.ts';
import { planRestore } from './plan.ts';
import {
  applyOwnership,
  checkFreeSpace,
  createMode,
  inspectTarget,
  putInPlace,
  refuseIfHeld,
  removeStaleTemps,
  SIDECARS,
  targetWriteFailure,
  tempPathFor,
  type MovedAside,
} from './target.ts';
import { verifyRestored, writeCheckReport } from './verify.ts';

export interface RestoreOptions {
  url?: string;
  storage?: StorageClient;
  storageOptions?: Omit<StorageOptions, 'concurrency' | 'onEvent'>;
  /** Where the database goes. */
  path: string;
  /** A snapshot id; default the newest. */
  snapshot?: string;
  /** The newest snapshot created at or before this time. */
  at?: Date;
  /** Replace an existing target (its -wal and -shm go too). */
  force?: boolean;
  /**
   * Replace or create the target even while another process holds it (SQLite's locks, or an open file):
   * that process's later commits are lost. Without it such a restore fails with TargetInUseError.
   */
  evenIfOpen?: boolean;
  /** An existing target is left alone and the restore reports `skipped`. */
  ifNotExists?: boolean;
  /**
   * A vault that holds nothing of pagevault's (no snapshot was ever published there) is not an error: the
   * restore reports `skipped`. A vault with manifests or packs is never empty (see readRepository).
   */
  ifReplicaExists?: boolean;
  /** PRAGMA quick_check instead of integrity_check. */
  quickCheck?: boolean;
  /**
   * Put in place a database whose every digest verifies but which fails the integrity check: the vault
   * holds exactly what the source had, and the source was damaged when the snapshot was taken. The check's
   * report is written beside the target (RestoreResult.damaged). Without it that is IntegrityError
   * INTEGRITY_CHECK.
   */
  acceptDamaged?: boolean;
  /** Processes the integrity check is split across (see checkDatabase); 1 runs PRAGMA integrity_check whole. */
  checkThreads?: number;
  /** Ranged reads at once. */
  concurrency?: number;
  workers?: number;
  signal?: AbortSignal;
  logger?: Logger;
  onProgress?: (p: { bytesDownloaded: number; bytesTotal: number }) => void;
}

export interface RestoreResult {
  /** Absolute path of the restored database (where a symlink at the given path points). */
  path: string;
  /** undefined when skipped. */
  id?: string;
  /** When the restored snapshot was taken (ISO 8601 UTC). */
  createdAt?: string;
  /** -wal, -shm or -journal files that were beside the target, and where they went (see target.ts). */
  movedAside?: MovedAside[];
  skipped?: 'target-exists' | 'no-snapshot';
  pageSize?: number;
  pageCount?: number;
  bytesDownloaded?: number;
  databaseDigest?: string | null;
  check?: 'integrity_check' | 'quick_check';
  /** With acceptDamaged, a database that failed its check: where its report is, and the check's first lines. */
  damaged?: { report: string; lines: string[] };
  durationMs: number;
}

/** The options' numbers, and the usage errors that need neither the target nor the vault. */
function settingsOf(options: RestoreOptions): { concurrency: number; checkThreads: number } {
  if (!options.storage && !options.url) throw new UsageError('BAD_OPTION', 'restore needs a vault url (or a storage client)');
  if (typeof options.path !== 'string' || options.path === '') throw new UsageError('BAD_OPTION', 'restore needs a target path');
  if (options.snapshot && options.at) throw new UsageError('BAD_OPTION', 'give either a snapshot id or a time (--at), not both');
  const concurrency = options.concurrency ?? restoreDefaults.concurrency;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new UsageError('BAD_OPTION', `concurrency must be a positive integer, got ${concurrency}`);
  const checkThreads = options.checkThreads ?? restoreDefaults.checkThreads;
  if (!Number.isSafeInteger(checkThreads) || checkThreads < 1) throw new UsageError('BAD_OPTION', `checkThreads must be a positive integer, got ${checkThreads}`);
  // A bad URL or snapshot id is a usage error whatever the state of the target or the vault.
  if (!options.storage) parseStorageUrl(options.url!, options.storageOptions?.cwd);
  if (options.snapshot) parseSnapshotId(options.snapshot);
  return { concurrency, checkThreads };
}

/**
 * The snapshot to restore (see chooseSnapshot), or undefined for a vault that holds nothing of pagevault's when
 * ifReplicaExists allows that. A missing or damaged config with manifests or packs beside it is an integrity
 * error, never "empty"; so are packs or extent tables without any manifest.
 */
async function findSnapshot(storage: StorageClient, options: RestoreOptions): Promise<string | undefined> {
  const signal = options.signal;
  const config = await readRepository(storage, { signal });
  const id = config ? await chooseSnapshot(storage, options) : undefined;
  if (id) return id;
  const orphan = config ? await anyKey(storage, [extentsPrefix, packsPrefix], { signal }) : undefined;
  if (orphan !== undefined) {
    throw new IntegrityError(
      'NO_MANIFEST',
      `vault ${storage.url} holds snapshot data (${orphan}) but no manifest: its manifests were deleted, or its first snapshot never finished; ` +
        'nothing can be restored from it',
    );
  }
  if (options.ifReplicaExists) return undefined;
  throw new StorageError('NOT_FOUND', `no snapshot in ${storage.url}: nothing to restore (pass --if-replica-exists to make that a success)`);
}

/** Picks the snapshot to restore: by id, the newest at or before `at`, or the newest. undefined: none. */
async function chooseSnapshot(storage: StorageClient, options: RestoreOptions): Promise<string | undefined> {
  if (options.snapshot) {
    parseSnapshotId(options.snapshot);
    return options.snapshot;
  }
  const ids = await listSnapshotIds(storage, { signal: options.signal });
  if (options.at) {
    const t = options.at.getTime();
    const eligible = ids.filter((id) => parseSnapshotId(id).createdAt.getTime() <= t);
    if (eligible.length === 0 && ids.length > 0) {
      throw new StorageError('NOT_FOUND', `no snapshot in ${storage.url} was created at or before ${options.at.toISOString()}; the oldest is ${ids[0]}`);
    }
    return eligible.at(-1);
  }
  return ids.at(-1);
}

export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const log = componentLogger(options.logger, 'restore');
  const { concurrency, checkThreads } = settingsOf(options);
  const state = await inspectTarget(options.path, { force: options.force === true, ifNotExists: options.ifNotExists === true });
  if (!state) return { path: resolve(options.path), skipped: 'target-exists', durationMs: Date.now() - started };
  const target = state.path;
  if (!options.evenIfOpen) await refuseIfHeld(state, `cannot restore to ${target}`);

  const storage = options.storage ?? openStorage(options.url!, { ...options.storageOptions, concurrency: Math.max(concurrency, 2), logger: log });
  const ownsStorage = !options.storage;
  const signal = options.signal;
  let temp: string | undefined;
  let fh: FileHandle | undefined;
  let size = 0;
  let id: string | undefined;
  let report: string | undefined;
  try {
    id = await findSnapshot(storage, options);
    if (!id) return { path: target, skipped: 'no-snapshot', durationMs: Date.now() - started };
    const manifest = await readManifest(storage, id, { signal });
    log.info({ id, createdAt: manifest.createdAt, pageCount: manifest.pageCount, pageSize: manifest.pageSize }, 'restore started');

    const table = await readExtentTable(storage, manifest, { signal });
    const plan = planRestore(manifest, [...table.extents()], { readSize: restoreDefaults.readSize, maxRawBytes: restoreDefaults.maxRawBytes, maxGap: restoreDefaults.maxGap });
    size = manifest.pageCount * manifest.pageSize;
    await checkFreeSpace(state, size);
    await removeStaleTemps(state, log);
    temp = tempPathFor(state);
    fh = await open(temp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, createMode(state));
    await applyOwnership(fh, state);
    // Holes read as zeros: zero extents, pages no extent covers and the lock page need no writes.
    await fh.truncate(size);

    const downloaded = await assemble({
      storage,
      manifest,
      plan,
      fh,
      concurrency,
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      signal,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    const check = options.quickCheck ? 'quick_check' : 'integrity_check';
    log.info({ id, bytesDownloaded: downloaded, check }, 'downloaded and written; verifying the restored database');
    const { failedCheck } = await verifyRestored({ fh, path: temp, manifest, check, checkThreads, acceptDamaged: options.acceptDamaged === true, signal });
    let damaged: RestoreResult['damaged'];
    if (failedCheck) {
      damaged = await writeCheckReport(target, manifest, check, failedCheck.lines, storage.url);
      report = damaged.report;
      log.warn({ id, report: damaged.report, errors: damaged.lines.slice(0, 5) }, 'the restored database fails its integrity check, as its source did; restored as asked (--accept-damaged)');
    }
    await fh.close();
    fh = undefined;
    // Checking a WAL-mode file made SQLite create a -shm (and an empty -wal) beside the temp file.
    for (const suffix of SIDECARS) await rm(temp + suffix, { force: true });
    // A restore interrupted is a restore that did not happen; and an application started meanwhile (a
    // supervisor restarting it) holds the target now.
    throwIfAborted(signal, 'restore');
    if (!options.evenIfOpen) await refuseIfHeld(state, `the restore of snapshot ${id} is verified but was not put in place at ${target}`);
    const movedAside = await putInPlace(temp, state, log);
    temp = undefined;
    report = undefined;
    const result: RestoreResult = {
      path: target,
      id,
      createdAt: manifest.createdAt,
      movedAside,
      ...(damaged ? { damaged } : {}),
      pageSize: manifest.pageSize,
      pageCount: manifest.pageCount,
      bytesDownloaded: downloaded,
      databaseDigest: manifest.databaseDigest,
      check,
      durationMs: Date.now() - started,
    };
    log.info(result, 'restore complete');
    return result;
  } catch (err) {
    if (signal?.aborted && !(err instanceof AbortedError)) throw new AbortedError('restore: aborted', { cause: signal.reason });
    if (err instanceof PackMissingError) {
      throw new IntegrityError(err.code, err.message, { cause: err.cause, hint: await restorableWithout(storage, err.key, signal) });
    }
    throw targetWriteFailure('cannot write the restored database beside', target, err, size);
  } finally {
    await fh?.close().catch(() => undefined);
    if (temp) await removeTemp(temp);
    // The report of a restore that did not happen would describe a file that is not there.
    if (report) await rm(report, { force: true });
    if (ownsStorage) await storage.close();
  }
}

async function removeTemp(temp: string): Promise<void> {
  for (const suffix of ['', ...SIDECARS]) await rm(temp + suffix, { force: true });
}

/** The hint for a snapshot that lost pack `key`: which snapshots do not use it (they may still restore). */
async function restorableWithout(storage: StorageClient, key: string, signal: AbortSignal | undefined): Promise<string> {
  try {
    const ids = await listSnapshotIds(storage, { signal });
    const without: string[] = [];
    let users = 0;
    await runAll(
      ids,
      restoreDefaults.concurrency,
      async (other) => {
        const m = await readManifest(storage, other, { signal }).catch(() => undefined);
        if (m && !m.packs.some((p) => p.key === key)) without.push(other);
        else if (m) users++;
      },
      { ...(signal ? { signal } : {}), what: 'find snapshots without a pack' },
    );
    without.sort();
    if (without.length === 0) return `every readable snapshot in the vault (${users}) uses that pack: none of them can be restored in full`;
    const newest = without.slice(-5).reverse();
    return (
      `${users} snapshot(s) use that pack; these do not and may still restore (newest first): ${newest.join(', ')}` +
      `${without.length > newest.length ? ` and ${without.length - newest.length} older` : ''}; e.g. --snapshot ${newest[0]}`
    );
  } catch {
    return 'restore an earlier snapshot with --snapshot <id>, one taken before the damaged pack was written';
  }
}
