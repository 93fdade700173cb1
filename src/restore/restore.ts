// restore(): a snapshot from a vault back into a database file, verified before it is put in place.
//
//   manifest -> plan (ranged reads of ~8 MiB) -> parallel GETs into pooled buffers -> decode + verify each
//   extent in the codec workers -> positional writes into a temp file beside the target -> fsync ->
//   whole-database digest read back from the file -> PRAGMA integrity_check -> rename into place -> fsync dir
//
// Until the rename, the target is untouched; on any failure the temp file is removed. What happens to the
// target itself (symlinks, -wal/-shm beside it, other processes holding it, owner and mode) is target.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { codecDefaults, restoreDefaults } from '../config/defaults.ts';
import { CodecPool, failedItem, returnedBuffers } from '../chunk/pool.ts';
import { AbortedError, IntegrityError, StorageError, throwIfAborted, UsageError } from '../errors.ts';
import type { StorageClient } from '../storage/client.ts';
import { openStorage, parseStorageUrl, type StorageOptions } from '../storage/registry.ts';
import { raceAbort } from '../util/abort.ts';
import { BufferPool } from '../util/buffer-pool.ts';
import { componentLogger } from '../util/logger.ts';
import { runAll } from '../util/run-all.ts';
import { parseSnapshotId } from '../vault/ids.ts';
import { databaseDigest } from '../vault/manifest.ts';
import type { Manifest } from '../vault/model.ts';
import { packsPrefix } from '../vault/layout.ts';
import { anyKey, listSnapshotIds, readManifest, readManifestView, readRepository } from '../vault/repository.ts';
import { planRestore, type PlannedRead } from './plan.ts';
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
  const state = await inspectTarget(options.path, { force: options.force === true, ifNotExists: options.ifNotExists === true });
  if (!state) return { path: resolve(options.path), skipped: 'target-exists', durationMs: Date.now() - started };
  const target = state.path;
  if (!options.evenIfOpen) await refuseIfHeld(state, `cannot restore to ${target}`);

  const storage = options.storage ?? openStorage(options.url!, { ...options.storageOptions, concurrency: Math.max(concurrency, 2), logger: log });
  const ownsStorage = !options.storage;
  const signal = options.signal;
  let codec: CodecPool | undefined;
  let temp: string | undefined;
  let fh: FileHandle | undefined;
  let size = 0;
  let id: string | undefined;
  let report: string | undefined;
  try {
    // A missing or damaged config with manifests or packs beside it is an integrity error, never "empty".
    const config = await readRepository(storage, { signal });
    id = config ? await chooseSnapshot(storage, options) : undefined;
    if (!id) {
      const pack = config ? await anyKey(storage, [packsPrefix], { signal }) : undefined;
      if (pack !== undefined) {
        throw new IntegrityError(
          'NO_MANIFEST',
          `vault ${storage.url} holds packs (${pack}) but no manifest: its manifests were deleted, or its first snapshot never finished; ` +
            'nothing can be restored from it',
        );
      }
      if (options.ifReplicaExists) return { path: target, skipped: 'no-snapshot', durationMs: Date.now() - started };
      throw new StorageError('NOT_FOUND', `no snapshot in ${storage.url}: nothing to restore (pass --if-replica-exists to make that a success)`);
    }
    const manifest = await readManifest(storage, id, { signal });
    log.info({ id, createdAt: manifest.createdAt, pageCount: manifest.pageCount, pageSize: manifest.pageSize }, 'restore started');

    const plan = planRestore(manifest, { readSize: restoreDefaults.readSize, maxRawBytes: restoreDefaults.maxRawBytes, maxGap: restoreDefaults.maxGap });
    size = manifest.pageCount * manifest.pageSize;
    await checkFreeSpace(state, size);
    await removeStaleTemps(state, log);
    temp = tempPathFor(state);
    fh = await open(temp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, createMode(state));
    await applyOwnership(fh, state);
    // Holes read as zeros: zero extents, pages no extent covers and the lock page need no writes.
    await fh.truncate(size);

    codec = CodecPool.create({ workers: options.workers ?? codecDefaults.workers });
    const reads = new BufferPool(concurrency, Math.max(plan.largestRead, 1));
    const outputs = new BufferPool(concurrency, Math.max(plan.largestRaw, 1));
    let downloaded = 0;
    const fetchAndWrite = async (read: PlannedRead): Promise<void> => {
      let buffer = await reads.acquire(signal);
      let out = await outputs.acquire(signal);
      try {
        await readPack(storage, id!, read, buffer, signal);
        downloaded += read.length;
        options.onProgress?.({ bytesDownloaded: downloaded, bytesTotal: plan.bytes });
        const items = read.extents.map((p) => ({
          at: p.at,
          length: p.extent.length,
          codec: p.extent.codec,
          digest: p.extent.digest,
          outAt: p.outAt,
          rawLength: p.extent.pageCount * manifest.pageSize,
        }));
        try {
          const r = await codec!.decodeMany({ encoded: buffer.subarray(0, read.length), output: out.subarray(0, read.rawLength), items });
          buffer = Buffer.from(r.encoded.buffer as ArrayBuffer);
          out = Buffer.from(r.output.buffer as ArrayBuffer);
        } catch (err) {
          const back = returnedBuffers(err);
          if (back) {
            buffer = Buffer.from(back.input.buffer as ArrayBuffer);
            out = Buffer.from(back.output.buffer as ArrayBuffer);
          }
          const e = read.extents[failedItem(err) ?? 0]!.extent;
          if (err instanceof IntegrityError) {
            throw new IntegrityError(
              err.code,
              `snapshot ${id}: pack ${read.pack} bytes ${e.offset}+${e.length} (pages ${e.firstPage}-${e.firstPage + e.pageCount - 1}): ${err.message}`,
              { cause: err },
            );
          }
          throw err;
        }
        // One write per run of extents that are contiguous both in the output and in the database.
        const ps = manifest.pageSize;
        for (let i = 0; i < read.extents.length; ) {
          const first = read.extents[i]!;
          let j = i;
          let bytes = first.extent.pageCount * ps;
          while (j + 1 < read.extents.length) {
            const prev = read.extents[j]!;
            const next = read.extents[j + 1]!;
            const contiguous = next.outAt === prev.outAt + prev.extent.pageCount * ps && next.extent.firstPage === prev.extent.firstPage + prev.extent.pageCount;
            if (!contiguous) break;
            bytes += next.extent.pageCount * ps;
            j++;
          }
          await fh!.write(out, first.outAt, bytes, (first.extent.firstPage - 1) * ps);
          i = j + 1;
        }
      } finally {
        outputs.release(out);
        reads.release(buffer);
      }
    };
    await runAll(plan.parallel, concurrency, fetchAndWrite, { ...(signal ? { signal } : {}), what: 'restore' });
    for (const step of plan.ordered) {
      throwIfAborted(signal, 'restore');
      if (step.kind === 'read') await fetchAndWrite(step.read);
      else {
        const zeros = Buffer.alloc(step.extent.pageCount * manifest.pageSize);
        await fh.write(zeros, 0, zeros.length, (step.extent.firstPage - 1) * manifest.pageSize);
      }
    }
    // The flush to disk, the integrity check (processes of its own) and the read-back digest (this thread) are
    // independent, so they run at once; the rename waits for all three. None then blocks the event loop.
    const check = options.quickCheck ? 'quick_check' : 'integrity_check';
    log.info({ id, bytesDownloaded: downloaded, check }, 'downloaded and written; verifying the restored database');
    let failedCheck: CheckFailedError | undefined;
    const checked =
      manifest.pageCount > 0
        ? checkDatabase(temp, check, id, checkThreads, options.acceptDamaged === true, signal).catch((err: unknown) => {
            if (!(err instanceof CheckFailedError)) throw err;
            if (!options.acceptDamaged) throw withDamagedSourceHint(err, id!, manifest);
            failedCheck = err;
          })
        : undefined;
    // A digest that fails is reported before a failed check: then the vault, not the source, is damaged.
    await allOrFirstFailure([manifest.databaseDigest !== null ? verifyDatabaseDigest(fh, manifest, id, signal) : undefined, checked, fh.sync()]);
    let damaged: RestoreResult['damaged'];
    if (failedCheck) {
      damaged = await writeCheckReport(target, id, manifest, check, failedCheck.lines, storage.url);
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
    await codec?.close();
    if (ownsStorage) await storage.close();
  }
}

/**
 * Waits for every one of `work` (so that nothing still uses the file when the caller moves on), then throws
 * the failure of the first that failed, in the order given.
 */
async function allOrFirstFailure(work: (Promise<unknown> | undefined)[]): Promise<void> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Reads the file back chunk by chunk and checks the whole-database digest the snapshot recorded. */
async function verifyDatabaseDigest(fh: FileHandle, manifest: Manifest, id: string, signal: AbortSignal | undefined): Promise<void> {
  // Chunk i is bytes [i * chunkBytes, (i + 1) * chunkBytes) of the file, the last one cut short: read whole
  // chunks a few MiB at a time and digest each.
  const chunkBytes = manifest.chunkPages * manifest.pageSize;
  const size = manifest.pageCount * manifest.pageSize;
  const buffer = Buffer.allocUnsafe(Math.max(1, Math.floor(restoreDefaults.readSize / chunkBytes)) * chunkBytes);
  const digests: Uint8Array[] = [];
  for (let position = 0; position < size; ) {
    throwIfAborted(signal, 'restore');
    const length = Math.min(buffer.length, size - position);
    const { bytesRead } = await fh.read(buffer, 0, length, position);
    if (bytesRead !== length) throw new IntegrityError('DATABASE_DIGEST', `snapshot ${id}: the restored file is shorter than ${manifest.pageCount} pages`);
    for (let at = 0; at < length; at += chunkBytes) digests.push(createHash('sha256').update(buffer.subarray(at, Math.min(length, at + chunkBytes))).digest());
    position += length;
  }
  const actual = databaseDigest(digests);
  if (actual !== manifest.databaseDigest) {
    throw new IntegrityError('DATABASE_DIGEST', `snapshot ${id}: the restored database's digest ${actual} differs from the snapshot's ${manifest.databaseDigest}`);
  }
}

// A check process: plain CommonJS run by `node -e`, so it needs no TypeScript loader. It opens the file
// read-only, then answers every request with one message: the database's tables, or the rows of one PRAGMA,
// or the error. A process, not a worker thread: a thread inside a PRAGMA cannot be stopped, and Node's exit
// waits for it, so a SIGINT during the check of a large restore would wait for the whole check; a process is
// killed at once. Signals are the parent's to act on. The file is not memory-mapped: that made the check ~10%
// faster (its pages are in the page cache), but every mapping counts the file again in RSS (4.6 GB for a
// 4 GiB restore on two threads), which no operator should have to tell apart from memory the restore holds.
const checkProcessSource = `
const [sqlite, path] = process.argv.slice(1);
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));
// A parent that is gone (killed, or done) cannot be answered: exit quietly rather than on an EPIPE.
const send = (m) => process.send(m, (err) => err && process.exit(0));
let db;
let openError;
try {
  db = new (require(sqlite))(path, { readonly: true, fileMustExist: true });
} catch (err) {
  openError = String(err && err.message);
}
process.on('message', (request) => {
  if (!db) return send({ error: openError });
  try {
    if (request.tables) {
      send({ lines: db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY rootpage").pluck().all() });
    } else {
      send({ lines: db.pragma(request.pragma).map((r) => String(Object.values(r)[0])) });
    }
  } catch (err) {
    send({ error: String(err && err.message) });
  }
});`;

/** One check process; its requests are answered in order. */
class CheckProcess {
  readonly #child: ChildProcess;
  readonly #waiting: { resolve: (lines: string[]) => void; reject: (err: Error) => void }[] = [];
  #failure: Error | undefined;

  constructor(path: string) {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#child = spawn(process.execPath, ['-e', checkProcessSource, sqlite, path], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.#child.on('message', (m: { lines?: string[]; error?: string }) => {
      const next = this.#waiting.shift();
      if (m.error !== undefined) this.#fail(new CheckReadError(m.error), next);
      else next?.resolve(m.lines!);
    });
    this.#child.once('error', (err) => this.#fail(err));
    this.#child.once('exit', (code, signal) => this.#fail(new Error(`integrity check process exited (${signal ?? code}) without an answer`)));
  }

  /** The tables, or the rows of `pragma`. */
  run(request: { tables: true } | { pragma: string }): Promise<string[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#child.send(request);
    });
  }

  /** Ends the process: at once (SIGKILL) when `now`, else by closing its channel once it has answered. */
  close(now: boolean): void {
    this.#failure ??= new Error('integrity check process closed');
    if (now) this.#child.kill('SIGKILL');
    else if (this.#child.connected) this.#child.disconnect();
  }

  #fail(err: Error, first?: { reject: (err: Error) => void }): void {
    first?.reject(err);
    if (err instanceof CheckReadError && first) return; // one request failed; the process still answers
    this.#failure ??= err;
    for (const w of this.#waiting.splice(0)) w.reject(err);
  }
}

/** SQLite could not open or read the file (its header, its schema): the restored database is not usable. */
class CheckReadError extends Error {}

/**
 * PRAGMA integrity_check (or quick_check) of the restored file, in check processes. With more than one core
 * and more than one table, integrity_check is split across processes into the checks it is made of, which SQLite
 * also runs apart: quick_check of the whole file (every b-tree's structure, every record, the free list, pages
 * used twice or never) and integrity_check(<table>) for each table (that table and its indexes, with the
 * index-to-table and UNIQUE checks quick_check leaves out). Together they check what integrity_check does.
 */
async function checkDatabase(
  path: string,
  check: 'integrity_check' | 'quick_check',
  id: string,
  maxProcesses: number,
  everything: boolean,
  signal: AbortSignal | undefined,
): Promise<void> {
  const checkers = [new CheckProcess(path)];
  const quote = (name: string) => `'${name.replaceAll("'", "''")}'`;
  try {
    let pragmas: string[] = [check];
    if (check === 'integrity_check' && maxProcesses > 1) {
      const tables = await checkers[0]!.run({ tables: true });
      if (tables.length > 1) pragmas = ['quick_check', ...tables.map((t) => `integrity_check(${quote(t)})`)];
    }
    while (checkers.length < Math.min(maxProcesses, pragmas.length)) checkers.push(new CheckProcess(path));
    const queue = [...pragmas];
    // Pragma, then its lines; the first failure stops the check unless the whole report is wanted.
    const failures: { pragma: string; lines: string[] }[] = [];
    // An abort stops the wait at once; the processes are killed below.
    await raceAbort(
      Promise.all(
        checkers.map(async (checker) => {
          for (let pragma = queue.shift(); pragma !== undefined && (everything || failures.length === 0); pragma = queue.shift()) {
            // SQLite puts "*** in database main ***" and the first error in one row: one line each.
          const lines = (await checker.run({ pragma })).flatMap((l) => l.split('\n'));
            if (lines.length !== 1 || lines[0] !== 'ok') failures.push({ pragma, lines });
          }
        }),
      ),
      signal,
      'restore: integrity check',
    );
    if (failures.length > 0) {
      const first = failures[0]!;
      throw new CheckFailedError(
        `snapshot ${id}: PRAGMA ${first.pragma} of the restored database failed: ${first.lines.slice(0, 5).join('; ')}`,
        failures.flatMap((f) => f.lines.map((l) => `${f.pragma}: ${l}`)),
      );
    }
  } catch (err) {
    if (err instanceof CheckReadError) throw new CheckFailedError(`snapshot ${id}: the restored database cannot be read: ${err.message}`, [err.message]);
    throw err;
  } finally {
    for (const c of checkers) c.close(signal?.aborted === true);
  }
}

/** The restored file fails PRAGMA integrity_check (or cannot be read by SQLite), every digest having verified. */
class CheckFailedError extends IntegrityError {
  constructor(
    message: string,
    readonly lines: string[],
    options?: { hint?: string },
  ) {
    super('INTEGRITY_CHECK', message, options);
    this.name = 'IntegrityError'; // a detail of this file; callers see the kind
  }
}

/**
 * A failed check after every digest verified means the vault holds exactly what the source had: the source
 * was damaged when the snapshot was taken. Says so, and how to get the bytes back anyway.
 */
function withDamagedSourceHint(err: CheckFailedError, id: string, manifest: Manifest): CheckFailedError {
  return new CheckFailedError(err.message, err.lines, {
    hint:
      `every chunk of snapshot ${id} verified against its digest, so the source database was already damaged when it was taken` +
      `${sourceCheckSummary(manifest, ' ')}: restore an earlier snapshot with --snapshot <id>, or pass --accept-damaged to restore ` +
      'this one anyway (a report of the check is left beside it)',
  });
}

/** What the snapshot recorded of its source's own check, as a clause ("" when none ran). */
function sourceCheckSummary(manifest: Manifest, lead: string): string {
  const c = manifest.source.check;
  if (!c) return '';
  if (!c.ok) return `${lead}(its PRAGMA ${c.kind} failed then too: ${c.errors[0] ?? 'no detail'})`;
  return `${lead}(its PRAGMA ${c.kind} passed then, ${c.kind === 'quick_check' ? 'which does not check indexes against their tables' : `${c.sameState ? 'of the same state' : 'of a state that may not be the one copied'}`})`;
}

/** Writes the failed check's report beside the target; its path and the first lines. */
async function writeCheckReport(
  target: string,
  id: string,
  manifest: Manifest,
  check: string,
  lines: string[],
  url: string,
): Promise<{ report: string; lines: string[] }> {
  const report = `${target}.pagevault-${check}-${id}.txt`;
  const text = [
    `pagevault restored snapshot ${id} (taken ${manifest.createdAt}) from ${url} to ${target} at ${new Date().toISOString()}`,
    `with --accept-damaged. Every extent's digest${manifest.databaseDigest !== null ? " and the whole database's digest" : ''} verified: these are the`,
    'bytes the source database had when the snapshot was taken.',
    ...(manifest.source.check
      ? [
          `When the snapshot was taken, the source's PRAGMA ${manifest.source.check.kind} ${manifest.source.check.ok ? 'passed' : 'failed'}` +
            `${manifest.source.check.ok ? '.' : ':'}`,
          ...manifest.source.check.errors.map((l) => `  ${l}`),
        ]
      : ['No check of the source was recorded when the snapshot was taken.']),
    `The restored database's PRAGMA ${check} fails:`,
    '',
    ...lines,
    '',
  ].join('\n');
  await writeFile(report, text);
  return { report, lines: lines.slice(0, 20) };
}

async function removeTemp(temp: string): Promise<void> {
  for (const suffix of ['', ...SIDECARS]) await rm(temp + suffix, { force: true });
}

/** A pack that is gone, or shorter than its manifest says: the vault lost data (5), not a storage failure (4). */
class PackMissingError extends IntegrityError {
  constructor(
    message: string,
    readonly key: string,
    options: { cause: unknown },
  ) {
    super('PACK_MISSING', message, options);
    this.name = 'IntegrityError';
  }
}

async function readPack(storage: StorageClient, id: string, read: PlannedRead, into: Buffer, signal: AbortSignal | undefined): Promise<void> {
  try {
    await storage.readRange(read.pack, read.offset, read.length, { into, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (err instanceof StorageError && (err.code === 'NOT_FOUND' || err.code === 'INVALID_RANGE')) {
      const what = err.code === 'NOT_FOUND' ? 'is missing' : `ends before byte ${read.offset + read.length} that the snapshot needs (truncated)`;
      throw new PackMissingError(`snapshot ${id}: pack ${storage.url}/${read.pack} ${what}`, read.pack, { cause: err });
    }
    throw err;
  }
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
        const m = await readManifestView(storage, other, { signal }).catch(() => undefined);
        if (m && !m.packs.includes(key)) without.push(other);
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
