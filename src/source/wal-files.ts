// The -wal and -shm our own connection leaves behind. A read-only connection to a WAL database creates both
// when they are missing (it needs the wal-index to read), and being read-only it cannot remove them when it
// closes: in SQLite that is the job of the last connection to close, which takes an EXCLUSIVE lock on the
// database file, checkpoints, and deletes them. So after our connection has closed, we do what that last
// connection does, minus the checkpoint (nothing of the database is ever written), and only for files we
// created:
//   1. neither file existed before we opened the database, and this process has none of the three open
//      (closing our lock's descriptor would drop any POSIX lock this process held on the database);
//   2. a POSIX write lock on the database's lock bytes (PENDING, RESERVED and SHARED, as SQLite's EXCLUSIVE),
//      taken without waiting: it fails while any other connection has the database open (an idle WAL
//      connection holds a read lock on the SHARED range), and while we hold it no connection can begin
//      (every one takes a SHARED lock before it opens the -wal or the -shm);
//   3. holding it: the -wal is empty (committed frames are never deleted) and nobody holds a lock on the -shm;
//   4. unlink both, then release the lock.
// There is no window between the check and the unlink: both happen under the lock every SQLite connection must
// pass. The lock needs the database file opened for writing (POSIX), so a user who may only read it leaves the
// two empty files, as SQLite's own read-only connections do; so do platforms without /proc.
import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { native, SQLITE_LOCK_BYTES } from '../native/index.ts';

export interface WalFilesBefore {
  wal: boolean;
  shm: boolean;
}

export type WalCleanup =
  | 'removed' // we created them, nobody used them: both are gone
  | 'none' // there are none (a rollback-journal database)
  | 'existed' // they were there before we opened the database: not ours
  | 'in-use' // another connection has the database or its -shm open
  | 'not-empty' // the -wal holds frames another connection committed meanwhile
  | 'open-here' // this process has the database open through another connection
  | 'no-write-access' // the lock needs the database opened for writing
  | 'unsupported' // no /proc/self/fd to tell what this process has open
  | 'error'; // an I/O error while checking, which the caller caught and logged: left in place

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether the -wal and -shm of `path` exist; call it before opening the database. */
export function walFilesBefore(path: string): WalFilesBefore {
  return { wal: exists(`${path}-wal`), shm: exists(`${path}-shm`) };
}

/** True when a descriptor of this process refers to one of `paths` (same device and inode). */
function openInThisProcess(paths: string[]): boolean {
  const inodes = new Set<string>();
  for (const p of paths) {
    try {
      const st = statSync(p);
      inodes.add(`${st.dev}:${st.ino}`);
    } catch {
      // missing: nothing to match
    }
  }
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const st = statSync(`/proc/self/fd/${fd}`);
      if (inodes.has(`${st.dev}:${st.ino}`)) return true;
    } catch {
      // closed meanwhile (readdir's own descriptor among them)
    }
  }
  return false;
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * After our own connection to `path` has closed: removes the -wal and -shm it created, if no other connection
 * uses them (see the file comment). Throws only for I/O errors (EIO and the like); callers log and go on.
 */
export function removeWalFilesWeCreated(path: string, before: WalFilesBefore): WalCleanup {
  const wal = `${path}-wal`;
  const shm = `${path}-shm`;
  if (before.wal || before.shm) return 'existed';
  if (!exists(wal) && !exists(shm)) return 'none';
  if (!exists('/proc/self/fd')) return 'unsupported';
  if (openInThisProcess([path, wal, shm])) return 'open-here';
  let fd: number;
  try {
    fd = native().lockExclusive(path, SQLITE_LOCK_BYTES.database.start, SQLITE_LOCK_BYTES.database.length);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'no-write-access';
    throw err;
  }
  if (fd < 0) return 'in-use';
  try {
    if (exists(wal) && statSync(wal).size > 0) return 'not-empty';
    if (native().lockHolder(shm, 0, 2 ** 32) !== 0) return 'in-use';
    unlinkIfPresent(wal);
    unlinkIfPresent(shm);
    return 'removed';
  } finally {
    native().releaseLock(fd);
  }
}
