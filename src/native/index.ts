// Loader for the native library (src/native/pagevault.c). The same file is require()d as a Node-API
// addon and loaded into better-sqlite3 connections as a SQLite extension; it must be the same absolute
// path both times so that both share one instance (and so one connection registry).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Database } from 'better-sqlite3';
import { BugError } from '../errors.ts';

/** Absolute path of the built library (node-gyp output; both src/native and dist/native sit two levels down). */
export const nativeLibraryPath = fileURLToPath(new URL('../../build/Release/pagevault.node', import.meta.url));
export const extensionEntryPoint = 'sqlite3_pagevault_init';

/** An opaque handle to a destination connection with an attached backup. */
export type BackupHandle = { readonly __brand: 'pagevault.backup' };

export interface NativeBinding {
  /**
   * Opens a destination on the staging VFS and attaches a backup from the registered connection. The token
   * must come from registerConnection() on this thread (a worker's token is refused: code
   * PAGEVAULT_FOREIGN_CONNECTION) and its connection must be open (PAGEVAULT_UNKNOWN_CONNECTION). At most
   * maxStagedPages pages are staged at once: a write past them is refused (SQLITE_FULL in the destination,
   * overCap in step()), and the backup cannot go on.
   */
  start(connectionToken: number, pageSize: number, cacheKiB: number, maxStagedPages: number): BackupHandle;
  /**
   * Steps `pages` pages; fills out (length STEP_OUT) = [rc, remaining, pageCount, staged, badWrite, restarts,
   * overCap, peakStaged, rereads] and returns rc. restarts counts, over this backup's life, the steps that found the
   * copy sent back to page 1; overCap is 1 once a write was refused at maxStagedPages (rc is then, or at the
   * next step, SQLITE_FULL, also when the refused write came from the source connection's own commit, which
   * SQLite lets succeed); peakStaged is the most pages staged at once; rereads counts the destination's reads
   * of pages it wrote before (SQLite re-reading a spilled page it then overwrites whole).
   */
  step(handle: BackupHandle, pages: number, out: Float64Array): number;
  /** Copies up to min(pageNumbers.length, data.length / pageSize) staged pages, oldest first. */
  drain(handle: BackupHandle, pageNumbers: Uint32Array, data: Buffer): number;
  /** sqlite3_backup_finish; the destination stays open for draining. Returns SQLite's rc. */
  finish(handle: BackupHandle): number;
  /**
   * What the destination's reads of pages it wrote before answer from now on: zeros by default. For tests,
   * which set another byte to show that SQLite never uses those answers.
   */
  setRereadFill(handle: BackupHandle, byte: number): void;
  /** Finishes if needed and closes the destination, dropping anything still staged. Idempotent. */
  close(handle: BackupHandle): void;
  /** SQLite's text for rc plus the destination connection's last message. */
  errmsg(handle: BackupHandle, rc: number): string;
  /**
   * Whether another process holds a POSIX lock conflicting with a write lock on [start, start + length) of
   * the file: 0 no (or no such file), the holder's pid, or -1 for a holder whose pid is not visible here.
   * Throws (code EACCES, ENOLCK, EIO) when it cannot tell. Never call it on a file this process has open
   * through SQLite: closing the probe's descriptor would drop this process's own locks on it.
   */
  lockHolder(path: string, start: number, length: number): number;
  /**
   * Opens the file for writing and takes a POSIX write lock on [start, start + length) without waiting:
   * the descriptor holding it, or -1 when another process holds a conflicting lock. Throws (code EACCES,
   * EPERM, EROFS, ENOENT, ENOLCK, EIO) when it cannot open or lock. Nothing is written. Release it with
   * releaseLock(); the caveat of lockHolder applies to that close.
   */
  lockExclusive(path: string, start: number, length: number): number;
  /** Closes a descriptor from lockExclusive(), releasing its lock. */
  releaseLock(fd: number): void;
}

let binding: NativeBinding | undefined;

/** The native library, with every argument of start() checked here first (the C side checks again). */
export function native(): NativeBinding {
  if (!binding) {
    const raw = createRequire(import.meta.url)(nativeLibraryPath) as NativeBinding;
    binding = {
      ...raw,
      start(connectionToken, pageSize, cacheKiB, maxStagedPages) {
        checkStartArguments(connectionToken, pageSize, cacheKiB, maxStagedPages);
        return raw.start(connectionToken, pageSize, cacheKiB, maxStagedPages);
      },
    };
  }
  return binding;
}

/** SQLite's page sizes: a power of two from 512 to 65536. */
export function isPageSize(n: number): boolean {
  return Number.isInteger(n) && n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** What step() writes into its out array, and the array's length. */
export type StepOut = [
  rc: number,
  remaining: number,
  pageCount: number,
  staged: number,
  badWrite: number,
  restarts: number,
  overCap: number,
  peakStaged: number,
  rereads: number,
];
export const STEP_OUT = 9;

// Its callers (PageSource) check what users give; a bad argument here is our bug.
function checkStartArguments(connectionToken: number, pageSize: number, cacheKiB: number, maxStagedPages: number): void {
  if (typeof connectionToken !== 'number' || !Number.isSafeInteger(connectionToken)) {
    throw new BugError(`connectionToken must be a token from registerConnection(), got ${String(connectionToken)}`);
  }
  if (!isPageSize(pageSize)) throw new BugError(`pageSize must be a power of two from 512 to 65536, got ${pageSize}`);
  if (!Number.isInteger(cacheKiB) || cacheKiB < 1 || cacheKiB > 2 ** 31 - 1) {
    throw new BugError(`cacheKiB must be a positive integer, got ${cacheKiB}`);
  }
  if (!Number.isInteger(maxStagedPages) || maxStagedPages < 1 || maxStagedPages > 2 ** 31 - 1) {
    throw new BugError(`maxStagedPages must be a positive integer, got ${maxStagedPages}`);
  }
}

/**
 * Loads the extension into a connection (registering the VFS on first use) and returns the token
 * that names this connection to the addon. The token is random, dies with the connection, and is
 * accepted only on the thread that registered it.
 */
export function registerConnection(db: Database): number {
  native();
  // better-sqlite3 takes the entry point as a second argument; its type definitions predate that.
  (db.loadExtension as (path: string, entryPoint: string) => unknown).call(db, nativeLibraryPath, extensionEntryPoint);
  const token = db.prepare('SELECT pagevault_connection()').pluck().get();
  if (typeof token !== 'number' || !Number.isSafeInteger(token)) {
    throw new BugError(`pagevault_connection() returned ${String(token)}`);
  }
  return token;
}

/**
 * Where SQLite's unix VFS takes its POSIX locks (see lockHolder): in a database file PENDING at 1 GiB, then
 * RESERVED, then the 510-byte SHARED range (every open WAL connection keeps a read lock there); in a -shm the
 * WAL locks (write, checkpoint, recover, five read marks) at 120 and the DMS byte at 128.
 */
export const SQLITE_LOCK_BYTES = {
  database: { start: 0x4000_0000, length: 2 + 510 },
  shm: { start: 120, length: 9 },
} as const;

/** SQLite primary result codes the page source acts on. */
export const SQLITE = {
  OK: 0,
  ERROR: 1,
  BUSY: 5,
  LOCKED: 6,
  NOMEM: 7,
  READONLY: 8,
  IOERR: 10,
  CORRUPT: 11,
  FULL: 13,
  NOTADB: 26,
  DONE: 101,
} as const;
