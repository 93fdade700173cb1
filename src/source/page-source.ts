// The page source: SQLite's online backup API driven into the staging VFS, yielding the source database's
// pages in batches. It is pull-driven: the backup is stepped only when the consumer asks for the next batch,
// so a slow consumer (the upload pipeline) throttles sqlite3_backup_step and nothing piles up in memory.
//
// Consistency modes (docs/DESIGN.md, and its "Measured facts" for the measurements behind them):
// - wal-read-transaction: our own read-only connection to a WAL database holds one read transaction across
//   every step. No restarts; writers keep committing; the snapshot is the state at BEGIN.
// - rollback-stepped: our own connection to a rollback-journal database steps without a held transaction
//   (holding one would make writers fail with SQLITE_BUSY); a commit by anyone restarts the backup.
// - rollback-locked: after too many restarts, one pass under a held read lock (writers wait for it).
// - application: the application's own better-sqlite3 connection. Its writes through that connection are
//   re-sent; a ROLLBACK (WAL) or another connection's commit restarts the backup; too many restarts, a
//   write transaction that stays open too long, or commits that re-send more than maxStagedBytes before
//   they can be drained, fall back to our own connection.
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { basename, resolve } from 'node:path';
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { KiB, sourceDefaults } from '../config/defaults.ts';
import { BugError, PagevaultError, SourceError, throwIfAborted, UsageError } from '../errors.ts';
import { native, registerConnection, SQLITE, STEP_OUT, type BackupHandle, type StepOut } from '../native/index.ts';
import { componentLogger } from '../util/logger.ts';
import { readOnlyFailure, sqliteCodeName } from './read-only.ts';
import { readSourceHeader } from './validate.ts';
import { removeWalFilesWeCreated, walFilesBefore, type WalCleanup, type WalFilesBefore } from './wal-files.ts';

export type ConsistencyMode = 'wal-read-transaction' | 'rollback-stepped' | 'rollback-locked' | 'application';

export interface PageSourceOptions {
  /** Cancels the snapshot: the backup is finished, connections are released, iteration throws AbortedError. */
  signal?: AbortSignal;
  logger?: Logger;
  /** Pages per backup step; by default sourceDefaults.stepBytes worth of pages, within min/maxStepPages. */
  stepPages?: number;
  /** Restarts tolerated before the mode's fallback (see ConsistencyMode). */
  maxRestarts?: number;
  /** Total time a locked source is waited for before falling back or failing. */
  busyTimeoutMs?: number;
  /**
   * Bytes of pages the staging VFS may hold at once (sourceDefaults.maxStagedBytes); at least one step and
   * the destination cache. An application whose commits re-send more than this before they can be drained
   * makes the copy fall back to our own connection.
   */
  maxStagedBytes?: number;
  /** Another connection that must read the state this source copies (the snapshot's source check). */
  companion?: ReadCompanion;
}

/**
 * A reader on a connection of its own that must see the state the backup copies. Each time a backup begins
 * (again after a fallback) the page source awaits probe(), begins its held read transaction if the mode
 * holds one, then awaits pin(mode), which begins the companion's and answers whether no commit landed since
 * probe() (PRAGMA data_version): with a held transaction a false answer makes both begin again (a few times).
 * Neither rejects; a companion that fails says so in its own result.
 */
export interface ReadCompanion {
  probe(): Promise<void>;
  pin(mode: ConsistencyMode): Promise<boolean>;
}

/** What the snapshot says about its source, for the manifest. */
export interface SourceFacts {
  /** Absolute path of the database file; undefined for an in-memory application database. */
  path: string | undefined;
  fileName: string | undefined;
  pageSize: number;
  /** The connection's journal mode when the snapshot began ("wal", "delete", "truncate", ...). */
  journalMode: string;
  sqliteVersion: string;
  /** Header bytes 24-27 when the snapshot began (WAL databases do not bump it on every commit). */
  headerChangeCounter: number;
  /** PRAGMA application_id (header bytes 68-71, signed) and PRAGMA encoding: fixed by the application, not by its data. */
  applicationId: number;
  encoding: string;
  kind: 'file' | 'application';
}

/**
 * One batch of pages. The arrays are views of buffers the source reuses: they are valid only until the
 * next batch is requested, so copy what you keep.
 */
export interface PageBatch {
  readonly count: number;
  /** Page numbers (1-based), in the order SQLite wrote them; the last copy of a page number wins. */
  readonly pageNumbers: Uint32Array;
  /** count x pageSize bytes, page i at i * pageSize. */
  readonly data: Buffer;
  /**
   * 1 where the page number is at or below one already delivered (page 1: delivered before): the page
   * replaces an earlier copy, because the application wrote it again or the backup restarted.
   */
  readonly resent: Uint8Array;
  /** The backup restarted (or fell back to a new one) before this batch: every page will be sent again. */
  readonly restarted: boolean;
}

export interface PageSourceResult {
  pageSize: number;
  /** Final size of the database in pages; pages delivered above it are to be dropped. */
  pageCount: number;
  pagesDelivered: number;
  resentPages: number;
  restarts: number;
  steps: number;
  /** Steps that found the source busy or locked and were retried after a back-off. */
  busyWaits: number;
  /** The most bytes of pages the staging VFS held at once, over every backup (at most maxStagedBytes). */
  peakStagedBytes: number;
  /** The mode that produced the snapshot, after any fallback. */
  mode: ConsistencyMode;
  /** One line per fallback taken, for the log and the result. */
  fallbacks: string[];
}

interface Connection {
  db: SqliteDatabase;
  token: number;
  /** Ours to close (a read-only connection we opened), as opposed to the application's. */
  owned: boolean;
  holdsReadTransaction: boolean;
  /** Ours: the database's path, and whether its -wal and -shm were there before we opened it. */
  own?: { path: string; walBefore: WalFilesBefore };
}

type SqliteFailure = Error & { code?: string };

function stepPagesFor(pageSize: number): number {
  const { stepBytes, minStepPages, maxStepPages } = sourceDefaults;
  return Math.min(maxStepPages, Math.max(minStepPages, Math.round(stepBytes / pageSize)));
}

/** Maps an error thrown by better-sqlite3 while opening or reading the source to a typed SourceError. */
function sourceFailure(what: string, path: string | undefined, err: unknown): PagevaultError {
  if (err instanceof PagevaultError) return err;
  const code = (err as SqliteFailure)?.code ?? '';
  const name = path ?? 'the application database';
  const detail = (err as Error)?.message ?? String(err);
  const readOnly = readOnlyFailure(what, path, code, err);
  if (readOnly) return readOnly;
  if (code.startsWith('SQLITE_NOTADB')) {
    return new SourceError('SOURCE_NOT_SQLITE', `${what}: ${name} is not a SQLite database (${detail})`, { cause: err });
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new SourceError('SOURCE_CORRUPT', `${what}: ${name} is corrupt (${detail}); run PRAGMA integrity_check on it`, { cause: err });
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_PERM')) {
    return new SourceError('SOURCE_UNREADABLE', `${what}: cannot read ${name} (${detail})`, { cause: err });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new SourceError('SOURCE_BUSY', `${what}: ${name} stayed locked (${detail})`, { cause: err });
  }
  return new SourceError('SOURCE_FAILED', `${what}: ${name}: ${detail}`, { cause: err });
}

function isBusy(err: unknown): boolean {
  const code = (err as SqliteFailure)?.code ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

export class PageSource {
  readonly facts: SourceFacts;
  private readonly log: Logger;
  private readonly signal: AbortSignal | undefined;
  private readonly stepPages: number;
  private readonly maxRestarts: number;
  private readonly busyTimeoutMs: number;
  private readonly maxStagedPages: number;
  private readonly companion: ReadCompanion | undefined;

  private connection: Connection | undefined;
  private handle: BackupHandle | undefined;
  private attached = false;
  private mode: ConsistencyMode;
  private started = false;
  private closed = false;
  private closedByApplication = false;
  private restoreClose: (() => void) | undefined;

  private nativeRestarts = 0;
  private restartsInMode = 0;
  private pendingRestart = false;
  private busySinceMs: number | undefined;
  private maxDelivered = 0;
  private page1Delivered = false;
  private readonly out = new Float64Array(STEP_OUT);
  private readonly stats = { pageCount: 0, pagesDelivered: 0, resentPages: 0, restarts: 0, steps: 0, busyWaits: 0, peakStagedPages: 0 };
  private readonly fallbacks: string[] = [];
  private finalResult: PageSourceResult | undefined;
  /** The database whose -wal and -shm our first own connection may have created (see removeWalFiles). */
  private walFiles: { path: string; walBefore: WalFilesBefore } | undefined;

  private constructor(
    connection: Connection,
    facts: SourceFacts,
    mode: ConsistencyMode,
    options: PageSourceOptions,
  ) {
    this.connection = connection;
    this.walFiles = connection.own;
    this.facts = facts;
    this.mode = mode;
    this.signal = options.signal;
    this.log = componentLogger(options.logger, 'source');
    this.stepPages = options.stepPages ?? stepPagesFor(facts.pageSize);
    this.maxRestarts = options.maxRestarts ?? sourceDefaults.maxRestarts;
    this.busyTimeoutMs = options.busyTimeoutMs ?? sourceDefaults.busyTimeoutMs;
    this.maxStagedPages = PageSource.maxStagedPagesFor(options.maxStagedBytes ?? sourceDefaults.maxStagedBytes, this.stepPages, facts.pageSize);
    this.companion = options.companion;
  }

  /**
   * The staging cap in pages. A step stages its own pages plus, at the last step, the destination cache's
   * dirty pages (at least 16: SQLite keeps a few whatever the cache size): a cap below that would stop every
   * copy, so it is refused.
   */
  private static maxStagedPagesFor(maxStagedBytes: number, stepPages: number, pageSize: number): number {
    const cachePages = Math.max(16, Math.ceil((sourceDefaults.destinationCacheKiB * KiB) / pageSize));
    const least = (stepPages + cachePages) * pageSize;
    if (maxStagedBytes < least) {
      throw new UsageError(
        'BAD_OPTION',
        `maxStagedBytes must hold one step and the destination cache, at least ${least} for steps of ${stepPages} pages of ${pageSize} bytes, got ${maxStagedBytes}`,
      );
    }
    return Math.floor(Math.min(maxStagedBytes, 2 ** 31 - 1) / pageSize);
  }

  /** Refuses bad options before anything is opened (so that nothing is left to close). */
  private static checkOptions(options: PageSourceOptions): void {
    const { stepPages, maxRestarts, busyTimeoutMs, maxStagedBytes } = options;
    if (stepPages !== undefined && (!Number.isInteger(stepPages) || stepPages < 1)) {
      throw new UsageError('BAD_OPTION', `stepPages must be a positive integer, got ${stepPages}`);
    }
    if (maxRestarts !== undefined && (!Number.isInteger(maxRestarts) || maxRestarts < 0)) {
      throw new UsageError('BAD_OPTION', `maxRestarts must be a non-negative integer, got ${maxRestarts}`);
    }
    if (busyTimeoutMs !== undefined && !(busyTimeoutMs >= 0)) {
      throw new UsageError('BAD_OPTION', `busyTimeoutMs must be >= 0, got ${busyTimeoutMs}`);
    }
    if (maxStagedBytes !== undefined && (!Number.isSafeInteger(maxStagedBytes) || maxStagedBytes < 1)) {
      throw new UsageError('BAD_OPTION', `maxStagedBytes must be a positive integer, got ${maxStagedBytes}`);
    }
  }

  /**
   * Opens a page source on a database file (our own read-only connection) or on an application's open
   * better-sqlite3 Database (its own connection; see ConsistencyMode). Nothing is stepped until pages()
   * is iterated. Throws SourceError: SOURCE_MISSING, SOURCE_NOT_SQLITE, SOURCE_UNREADABLE, SOURCE_CORRUPT,
   * SOURCE_CLOSED, SOURCE_BUSY.
   */
  static async open(source: string | SqliteDatabase, options: PageSourceOptions = {}): Promise<PageSource> {
    PageSource.checkOptions(options);
    throwIfAborted(options.signal, 'open source');
    if (typeof source === 'string') {
      const path = resolve(source);
      const header = await readSourceHeader(path);
      const connection = await openOwnConnection(path, options);
      try {
        const db = connection.db;
        const facts: SourceFacts = await retryWhileBusy(
          () => ({
            path,
            fileName: basename(path),
            pageSize: header.pageSize || (db.pragma('page_size', { simple: true }) as number),
            journalMode: String(db.pragma('journal_mode', { simple: true })),
            sqliteVersion: db.prepare('SELECT sqlite_version()').pluck().get() as string,
            headerChangeCounter: header.changeCounter,
            applicationId: db.pragma('application_id', { simple: true }) as number,
            encoding: String(db.pragma('encoding', { simple: true })),
            kind: 'file',
          }),
          options,
        );
        return new PageSource(connection, facts, header.wal ? 'wal-read-transaction' : 'rollback-stepped', options);
      } catch (err) {
        const failure = sourceFailure('open source', path, err);
        closeOwnConnection(connection, componentLogger(options.logger, 'source'));
        throw failure;
      }
    }
    return PageSource.openApplication(source, options);
  }

  private static async openApplication(db: SqliteDatabase, options: PageSourceOptions): Promise<PageSource> {
    if (!db || typeof db.prepare !== 'function' || typeof db.loadExtension !== 'function') {
      throw new UsageError('BAD_OPTION', `source must be a database path or an open better-sqlite3 Database, got ${db === null ? 'null' : typeof db}`);
    }
    if (!db.open) throw new SourceError('SOURCE_CLOSED', 'the application database connection is closed');
    const path = db.memory || db.name === '' ? undefined : resolve(db.name);
    const header = path ? await readSourceHeader(path).catch(() => undefined) : undefined;
    let token: number;
    try {
      token = registerConnection(db);
    } catch (err) {
      const message = `load the pagevault extension into the application connection: ${(err as Error).message}`;
      throw new SourceError('SOURCE_UNSUPPORTED', message, { cause: err });
    }
    const facts: SourceFacts = {
      path,
      fileName: path ? basename(path) : undefined,
      pageSize: db.pragma('page_size', { simple: true }) as number,
      journalMode: String(db.pragma('journal_mode', { simple: true })),
      sqliteVersion: db.prepare('SELECT sqlite_version()').pluck().get() as string,
      headerChangeCounter: header?.changeCounter ?? 0,
      applicationId: db.pragma('application_id', { simple: true }) as number,
      encoding: String(db.pragma('encoding', { simple: true })),
      kind: 'application',
    };
    return new PageSource({ db, token, owned: false, holdsReadTransaction: false }, facts, 'application', options);
  }

  /** The result; available once pages() has been iterated to the end. */
  get result(): PageSourceResult {
    if (!this.finalResult) throw new Error('the page source has not finished');
    return this.finalResult;
  }

  /**
   * Yields the database's pages. Iterate it once, to the end or until you break (which releases
   * everything); each batch is valid only until the next one is requested.
   */
  async *pages(): AsyncGenerator<PageBatch, void, undefined> {
    if (this.started) throw new Error('pages() can be iterated only once');
    if (this.closed) throw new Error('the page source is closed');
    this.started = true;
    const capacity = this.stepPages;
    const pageSize = this.facts.pageSize;
    const pageNumbers = new Uint32Array(capacity);
    const data = Buffer.allocUnsafe(capacity * pageSize);
    const resent = new Uint8Array(capacity);
    try {
      await this.attach();
      let staged = 0;
      let done = false;
      for (;;) {
        if (staged > 0) {
          const n = native().drain(this.handle!, pageNumbers, data);
          staged -= n;
          if (n > 0) {
            const restarted = this.pendingRestart;
            this.pendingRestart = false;
            this.account(pageNumbers, data, resent, n);
            yield {
              count: n,
              pageNumbers: pageNumbers.subarray(0, n),
              data: data.subarray(0, n * pageSize),
              resent: resent.subarray(0, n),
              restarted,
            };
            continue;
          }
          staged = 0;
        }
        if (done) break;
        await yieldToEventLoop();
        this.checkCancelled();
        const outcome = await this.step();
        staged = outcome.staged;
        done = outcome.done;
      }
      this.finalResult = {
        pageSize,
        pageCount: this.stats.pageCount,
        pagesDelivered: this.stats.pagesDelivered,
        resentPages: this.stats.resentPages,
        restarts: this.stats.restarts,
        steps: this.stats.steps,
        busyWaits: this.stats.busyWaits,
        peakStagedBytes: this.stats.peakStagedPages * pageSize,
        mode: this.mode,
        fallbacks: [...this.fallbacks],
      };
    } finally {
      this.close();
    }
  }

  /** Releases the backup and our connection (never the application's). Idempotent; safe at any point. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
    this.removeWalFiles();
  }

  /**
   * Once closed: removes the -wal and -shm our own connection created, if no other connection uses them
   * (wal-files.ts). close() tries; a caller whose other readers of the database (a source check in another
   * process) outlived it calls this again once they are gone. 'in-use' leaves them to a later call; any
   * other outcome is final. Never throws.
   */
  removeWalFiles(): WalCleanup | undefined {
    if (!this.closed || !this.walFiles) return undefined;
    const outcome = removeCreatedWalFiles(this.walFiles.path, this.walFiles.walBefore, this.log);
    if (outcome !== 'in-use') this.walFiles = undefined;
    return outcome;
  }

  private checkCancelled(): void {
    if (this.closedByApplication) {
      throw new SourceError('SOURCE_CLOSED', 'the application closed its database connection during the snapshot');
    }
    throwIfAborted(this.signal, 'snapshot source');
  }

  /** Counts the batch, flags re-sent pages and checks page 1's page size. */
  private account(pageNumbers: Uint32Array, data: Buffer, resent: Uint8Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const pgno = pageNumbers[i]!;
      let again: boolean;
      if (pgno === 1) {
        again = this.page1Delivered;
        this.page1Delivered = true;
        const raw = data.readUInt16BE(i * this.facts.pageSize + 16);
        const size = raw === 1 ? 65536 : raw;
        if (size !== this.facts.pageSize) this.pageSizeChanged(size);
      } else {
        again = pgno <= this.maxDelivered;
        if (!again) this.maxDelivered = pgno;
      }
      resent[i] = again ? 1 : 0;
      if (again) this.stats.resentPages++;
    }
    this.stats.pagesDelivered += n;
  }

  private pageSizeChanged(now: number | undefined): never {
    throw new SourceError(
      'PAGE_SIZE_CHANGED',
      `the source's page size changed during the snapshot (${this.facts.pageSize} -> ${now ?? 'another size'}, a VACUUM?); run the snapshot again`,
    );
  }

  /** One backup step with its outcome: pages staged, done or not. Handles busy sources and restarts. */
  private async step(): Promise<{ staged: number; done: boolean }> {
    const rc = native().step(this.handle!, this.stepPages, this.out);
    const [, , pageCount, staged, badWrite, restarts, overCap, peakStaged] = this.out as unknown as StepOut;
    this.stats.peakStagedPages = Math.max(this.stats.peakStagedPages, peakStaged);
    if (badWrite) this.pageSizeChanged(undefined);
    if (overCap) return this.stagingFull();
    if (rc === SQLITE.BUSY || rc === SQLITE.LOCKED) {
      const fellBack = await this.waitWhileBusy(rc);
      return { staged: fellBack ? 0 : staged, done: false };
    }
    if (rc !== SQLITE.OK && rc !== SQLITE.DONE) throw this.stepFailure(rc);
    this.busySinceMs = undefined;
    this.stats.steps++;
    this.stats.pageCount = pageCount;
    // A restart sends the copy back to page 1; only a fallback discards what this step staged.
    const restarted = restarts > this.nativeRestarts;
    this.nativeRestarts = restarts;
    if (restarted && (await this.restarted())) return { staged: 0, done: false };
    if (rc === SQLITE.DONE) {
      this.detach();
      return { staged, done: true };
    }
    return { staged, done: false };
  }

  private stepFailure(rc: number): PagevaultError {
    const message = native().errmsg(this.handle!, rc);
    const primary = rc & 0xff;
    const name = this.facts.path ?? 'the application database';
    const readOnly = readOnlyFailure('backup step', this.facts.path, sqliteCodeName(rc), new Error(message));
    if (readOnly) return readOnly;
    if (primary === SQLITE.NOTADB) return new SourceError('SOURCE_NOT_SQLITE', `backup step: ${name} is not a SQLite database (${message})`);
    if (primary === SQLITE.CORRUPT) {
      return new SourceError('SOURCE_CORRUPT', `backup step: ${name} is corrupt (${message}); run PRAGMA integrity_check on it`);
    }
    if (primary === SQLITE.IOERR) return new SourceError('SOURCE_UNREADABLE', `backup step: cannot read ${name} (${message})`);
    return new SourceError('SOURCE_FAILED', `backup step: ${name}: ${message} (rc ${rc})`);
  }

  /**
   * The source is locked (another writer's commit, or the application inside a write transaction): back off.
   * Returns true when it fell back to a new backup instead.
   */
  private async waitWhileBusy(rc: number): Promise<boolean> {
    const now = performance.now();
    this.stats.busyWaits++;
    this.busySinceMs ??= now;
    const waited = now - this.busySinceMs;
    if (waited >= this.busyTimeoutMs) {
      this.busySinceMs = undefined;
      const why = `the source stayed ${rc === SQLITE.BUSY ? 'busy' : 'locked'} for ${Math.round(waited)} ms`;
      if (this.mode === 'application' && this.facts.path) {
        await this.fallBack(why);
        return true;
      }
      throw new SourceError('SOURCE_BUSY', `backup step: ${why}; is a writer holding a long transaction?`);
    }
    await sleep(Math.min(50, 1 + waited / 10), undefined, { signal: this.signal }).catch(() => undefined);
    this.checkCancelled();
    return false;
  }

  /**
   * The application's commits re-sent more pages than maxStagedPages before they could be drained (SQLite
   * re-sends them inside the application's commit, where nothing drains), so the staging VFS refused one and
   * this backup cannot go on; the application's commit itself succeeded (pagevault.c, pv_write). A file falls
   * back to our own connection; a temporary database ('' in better-sqlite3: in memory until it spills to an
   * anonymous file, whose commits then re-send too) begins the copy again, counted as a restart. A ':memory:'
   * database never gets here: SQLite restarts its backup on every commit instead of re-sending pages.
   */
  private async stagingFull(): Promise<{ staged: number; done: boolean }> {
    if (this.mode !== 'application') {
      throw new BugError(`the staging buffer filled up in mode ${this.mode}, where one step and the destination cache always fit`);
    }
    const why = `the application's commits re-sent more than ${this.maxStagedPages * this.facts.pageSize} bytes of pages (maxStagedBytes) before they could be drained`;
    if (this.facts.path) {
      await this.fallBack(why);
    } else {
      this.log.warn({ restarts: this.stats.restarts + 1 }, `${why}: copying again from page 1 (a database without a file has nothing to fall back to)`);
      if (!(await this.restarted())) await this.beginAgain();
    }
    return { staged: 0, done: false };
  }

  /** Discards the current backup and attaches a new one to the same connection: the copy begins again at page 1. */
  private async beginAgain(): Promise<void> {
    this.detach();
    if (this.handle) native().close(this.handle);
    this.handle = undefined;
    this.nativeRestarts = 0;
    await this.attach();
  }

  /** Counts a restart; past the cap, falls back (returns true) or fails with TOO_MANY_RESTARTS. */
  private async restarted(): Promise<boolean> {
    this.stats.restarts++;
    this.restartsInMode++;
    this.pendingRestart = true;
    this.log.debug({ restarts: this.stats.restarts, mode: this.mode }, 'backup restarted: the source changed');
    if (this.restartsInMode <= this.maxRestarts) return false;
    const why = `${this.restartsInMode} restarts in mode ${this.mode}`;
    if (this.mode === 'rollback-stepped' || (this.mode === 'application' && this.facts.path)) {
      await this.fallBack(why);
      return true;
    }
    throw new SourceError(
      'TOO_MANY_RESTARTS',
      `the backup restarted ${this.restartsInMode} times because the source kept changing (mode ${this.mode}); ` +
        (this.facts.path ? 'try again when writes are quieter' : 'an in-memory database cannot fall back to a separate connection'),
    );
  }

  /**
   * Replaces the current backup by a new one that cannot be restarted: from our own connection with a held
   * read transaction. Every page is then sent again, flagged as re-sent.
   */
  private async fallBack(why: string): Promise<void> {
    const from = this.mode;
    const path = this.facts.path!;
    this.release();
    this.connection = await openOwnConnection(path, this.retryOptions());
    this.walFiles ??= this.connection.own;
    if (from === 'application') {
      this.mode = (await readSourceHeader(path)).wal ? 'wal-read-transaction' : 'rollback-stepped';
    } else {
      this.mode = 'rollback-locked';
    }
    const line = `${why}: falling back from ${from} to ${this.mode}`;
    this.fallbacks.push(line);
    this.log.warn({ from, to: this.mode, restarts: this.stats.restarts }, line);
    this.restartsInMode = 0;
    this.pendingRestart = true;
    this.nativeRestarts = 0;
    await this.attach();
  }

  /** Starts a backup from the current connection, beginning a held read transaction where the mode wants one. */
  private async attach(attempt = 1): Promise<void> {
    const c = this.connection!;
    await this.companion?.probe();
    if (this.mode === 'wal-read-transaction' || this.mode === 'rollback-locked') {
      try {
        await retryWhileBusy(() => {
          c.db.exec('BEGIN');
          try {
            c.db.prepare('SELECT count(*) FROM sqlite_schema').get();
          } catch (err) {
            c.db.exec('ROLLBACK');
            throw err;
          }
        }, this.retryOptions());
      } catch (err) {
        this.checkCancelled();
        throw sourceFailure('begin read transaction', this.facts.path, err);
      }
      c.holdsReadTransaction = true;
      if (this.mode === 'rollback-locked') {
        this.log.warn({ path: this.facts.path }, 'copying under a held read lock: writers wait until the snapshot has read every page');
      }
      const pageSize = c.db.pragma('page_size', { simple: true }) as number;
      if (pageSize !== this.facts.pageSize) this.pageSizeChanged(pageSize);
    }
    if (this.companion && !(await this.companion.pin(this.mode)) && c.holdsReadTransaction && attempt < sourceDefaults.companionPinAttempts) {
      // A commit landed between the companion's probe and its read transaction: begin both again.
      c.holdsReadTransaction = false;
      c.db.exec('ROLLBACK');
      return this.attach(attempt + 1);
    }
    this.checkCancelled();
    this.handle = native().start(c.token, this.facts.pageSize, sourceDefaults.destinationCacheKiB, this.maxStagedPages);
    this.attached = true;
    if (!c.owned && !this.restoreClose) this.hookApplicationClose(c.db);
  }

  private retryOptions(): PageSourceOptions {
    return { signal: this.signal, busyTimeoutMs: this.busyTimeoutMs };
  }

  /** Finishes the backup (the source is free again) and ends our read transaction. Staged pages stay drainable. */
  private detach(): void {
    if (this.attached && this.handle) {
      native().finish(this.handle);
      this.attached = false;
    }
    const c = this.connection;
    if (c?.holdsReadTransaction) {
      c.holdsReadTransaction = false;
      if (c.db.open && c.db.inTransaction) c.db.exec('COMMIT');
    }
  }

  /** Detaches, closes the destination and our own connection, and unhooks the application's close(). */
  private release(): void {
    try {
      this.detach();
    } finally {
      if (this.handle) native().close(this.handle);
      this.handle = undefined;
      if (this.connection?.owned && this.connection.db.open) this.connection.db.close();
      this.connection = undefined;
      this.restoreClose?.();
      this.restoreClose = undefined;
    }
  }

  /**
   * A backup must be finished before its source connection closes (closing with one attached leaks it), so
   * while we are attached the application's db.close() first detaches us; the snapshot then fails with
   * SOURCE_CLOSED.
   */
  private hookApplicationClose(db: SqliteDatabase): void {
    const own = Object.getOwnPropertyDescriptor(db, 'close');
    const original = db.close;
    const hooked = (...args: unknown[]) => {
      this.closedByApplication = true;
      this.detach();
      unhook();
      return (original as (...a: unknown[]) => SqliteDatabase).apply(db, args);
    };
    const unhook = () => {
      if (db.close !== (hooked as unknown)) return;
      if (own) Object.defineProperty(db, 'close', own);
      else delete (db as { close?: unknown }).close;
    };
    db.close = hooked as unknown as SqliteDatabase['close'];
    this.restoreClose = unhook;
  }
}

/** Runs fn, retrying with a short back-off while SQLite answers SQLITE_BUSY or SQLITE_LOCKED. */
async function retryWhileBusy<T>(fn: () => T, options: PageSourceOptions): Promise<T> {
  const deadline = performance.now() + (options.busyTimeoutMs ?? sourceDefaults.busyTimeoutMs);
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || performance.now() >= deadline) throw err;
    }
    await sleep(Math.min(50, 2 ** attempt), undefined, { signal: options.signal }).catch(() => undefined);
    throwIfAborted(options.signal, 'snapshot source');
  }
}

/** removeWalFilesWeCreated, logged; an I/O error is logged and reported as 'error'. */
function removeCreatedWalFiles(path: string, walBefore: WalFilesBefore, log: Logger): WalCleanup {
  try {
    const outcome = removeWalFilesWeCreated(path, walBefore);
    if (outcome === 'removed') log.debug({ path }, 'removed the empty -wal and -shm our read-only connection had created');
    else if (outcome === 'no-write-access' || outcome === 'unsupported' || outcome === 'open-here') {
      log.info({ path, reason: outcome }, 'left the empty -wal and -shm our read-only connection created: removing them safely needs a write lock on the database, from a process that has it open nowhere else');
    } else log.debug({ path, outcome }, 'left the -wal and -shm in place');
    return outcome;
  } catch (err) {
    log.warn({ path, err: (err as Error).message }, 'could not check the -wal and -shm our read-only connection created');
    return 'error';
  }
}

/** Closes an own connection that never reached a PageSource, and removes the -wal and -shm it created. */
function closeOwnConnection(c: Connection, log: Logger): void {
  c.db.close();
  if (c.own) removeCreatedWalFiles(c.own.path, c.own.walBefore, log);
}

async function openOwnConnection(path: string, options: PageSourceOptions): Promise<Connection> {
  throwIfAborted(options.signal, 'open source');
  const own = { path, walBefore: walFilesBefore(path) };
  let db: SqliteDatabase;
  try {
    // timeout 0: a locked database answers SQLITE_BUSY at once and we back off without blocking the event loop.
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 0 });
  } catch (err) {
    throw sourceFailure('open source', path, err);
  }
  try {
    // Preparing any statement reads the schema, which needs a (momentary) shared lock. Reading it here also
    // makes a file with a SQLite header but no database behind it fail now, not mid-snapshot.
    const token = await retryWhileBusy(() => {
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
      // The backup reads every page once: a page cache would only hold memory (16 MB by default) for nothing.
      db.pragma(`cache_size = -${sourceDefaults.sourceCacheKiB}`);
      return registerConnection(db);
    }, options);
    return { db, token, owned: true, holdsReadTransaction: false, own };
  } catch (err) {
    const failure = sourceFailure('open source', path, err);
    closeOwnConnection({ db, token: 0, owned: true, holdsReadTransaction: false, own }, componentLogger(options.logger, 'source'));
    throw failure;
  }
}
