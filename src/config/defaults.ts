// Every default pagevault applies lives here, so that the documentation, the CLI's --help and the library
// agree. Options objects elsewhere are Partial<...> of types whose defaults are read from this file.

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** The page source (src/source/): how the backup of the source database is stepped. */
export const sourceDefaults = {
  /** Bytes copied per sqlite3_backup_step; the page count per step is this divided by the page size. */
  stepBytes: 1 * MiB,
  /** Bounds for the pages per step whatever the page size: a few hundred, yielding to the event loop between steps. */
  minStepPages: 16,
  maxStepPages: 1024,
  /** Cache of the destination connection; dirty pages beyond it are spilled to the staging VFS (small is faster). */
  destinationCacheKiB: 256,
  /** Restarts tolerated before falling back (rollback journal: to one locked pass; app connection: to our own connection). */
  maxRestarts: 3,
  /** How long a locked source (SQLITE_BUSY / SQLITE_LOCKED) is waited for, in total, before giving up or falling back. */
  busyTimeoutMs: 30_000,
} as const;
