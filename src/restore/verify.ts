// Verifying a restored database before it is put in place: the whole-database digest read back from the
// file, and SQLite's own integrity check in killable child processes, beside the flush to disk. A check that
// fails after every digest verified means the source was damaged when the snapshot was taken: the error
// says so, and with acceptDamaged the database is restored anyway with a report of the check beside it.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile, type FileHandle } from 'node:fs/promises';
import { restoreDefaults } from '../config/defaults.ts';
import { IntegrityError, throwIfAborted } from '../errors.ts';
import { raceAbort } from '../util/abort.ts';
import { databaseDigest } from '../vault/manifest.ts';
import type { Manifest } from '../vault/model.ts';
import { spawnSqliteChild } from '../util/sqlite-child.ts';

export type CheckKind = 'integrity_check' | 'quick_check';

export interface VerifyOptions {
  /** The temp file, open for reading, and its path. */
  fh: FileHandle;
  path: string;
  manifest: Manifest;
  check: CheckKind;
  /** Processes the integrity check is split across (see checkDatabase). */
  checkThreads: number;
  /** A failed check is returned (with every line of it), not thrown. */
  acceptDamaged: boolean;
  signal: AbortSignal | undefined;
}

/**
 * Verifies the restored file and flushes it to disk: the digest read-back (this thread), the integrity check
 * (processes of its own) and the fsync are independent, so they run at once and none blocks the event loop.
 * Resolves with the failed check when acceptDamaged took it; a digest that fails is reported before a failed
 * check, since then the vault, not the source, is damaged.
 */
export async function verifyRestored(o: VerifyOptions): Promise<{ failedCheck?: CheckFailedError }> {
  const { manifest } = o;
  let failedCheck: CheckFailedError | undefined;
  const checked =
    manifest.pageCount > 0
      ? checkDatabase(o.path, o.check, manifest.id, o.checkThreads, o.acceptDamaged, o.signal).catch((err: unknown) => {
          if (!(err instanceof CheckFailedError)) throw err;
          if (!o.acceptDamaged) throw withDamagedSourceHint(err, manifest);
          failedCheck = err;
        })
      : undefined;
  await allOrFirstFailure([manifest.databaseDigest !== null ? verifyDatabaseDigest(o.fh, manifest, o.signal) : undefined, checked, o.fh.sync()]);
  return failedCheck ? { failedCheck } : {};
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
async function verifyDatabaseDigest(fh: FileHandle, manifest: Manifest, signal: AbortSignal | undefined): Promise<void> {
  const id = manifest.id;
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

// A check process (see spawnSqliteChild: a process, so that a SIGINT during the check of a large restore need
// not wait for the whole check). It opens the file read-only, then answers every request with one message: the
// database's tables, or the rows of one PRAGMA, or the error. Signals are the parent's to act on. The file is not memory-mapped: that made the check ~10%
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
    this.#child = spawnSqliteChild(checkProcessSource, [path], { stderr: 'inherit' });
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
export class CheckFailedError extends IntegrityError {
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
function withDamagedSourceHint(err: CheckFailedError, manifest: Manifest): CheckFailedError {
  const id = manifest.id;
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
export async function writeCheckReport(
  target: string,
  manifest: Manifest,
  check: string,
  lines: string[],
  url: string,
): Promise<{ report: string; lines: string[] }> {
  const id = manifest.id;
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

