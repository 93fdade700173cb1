// The two ways a healthy database cannot be read through a read-only connection, both of which SQLite
// reports as "attempt to write a readonly database": a hot journal (a writer died mid-transaction and the
// database must be rolled back first), and a WAL database whose -wal and -shm cannot be created because the
// directory is read-only to us. Each gets its own code and says what to do.
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { SourceError } from '../errors.ts';

/** SQLite's extended codes for these cases, as the backup step returns them (rc) and better-sqlite3 names them. */
const extendedNames: Record<number, string> = {
  [8 | (1 << 8)]: 'SQLITE_READONLY_RECOVERY',
  [8 | (2 << 8)]: 'SQLITE_READONLY_CANTLOCK',
  [8 | (3 << 8)]: 'SQLITE_READONLY_ROLLBACK',
  [8 | (5 << 8)]: 'SQLITE_READONLY_CANTINIT',
  [8 | (6 << 8)]: 'SQLITE_READONLY_DIRECTORY',
};

/** better-sqlite3's name for an extended result code from the backup step ('' for others). */
export function sqliteCodeName(rc: number): string {
  return extendedNames[rc] ?? '';
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * SOURCE_HOT_JOURNAL or SOURCE_WAL_READONLY_DIR for a failure with SQLite code `code` (e.g.
 * "SQLITE_READONLY_ROLLBACK") on the database at `path`; undefined when it is neither.
 */
export function readOnlyFailure(what: string, path: string | undefined, code: string, cause: unknown): SourceError | undefined {
  if (path === undefined) return undefined;
  const dir = dirname(path);
  if (code === 'SQLITE_READONLY_ROLLBACK') {
    return new SourceError(
      'SOURCE_HOT_JOURNAL',
      `${what}: ${path} has a hot journal (${path}-journal): a writer stopped in the middle of a transaction (killed, ` +
        'crashed or lost power), and the database must be rolled back before it can be read, which a read-only connection cannot do',
      {
        cause,
        hint: `open it once with sqlite3 as a user who can write ${path} and ${dir}, e.g. \`sqlite3 ${path} 'PRAGMA quick_check'\`: that rolls the journal back; then snapshot again`,
      },
    );
  }
  // A WAL database needs its -wal and -shm beside it even to be read. Where they are missing and the directory
  // is read-only to us, SQLite says READONLY_DIRECTORY, or CANTOPEN when only the -shm is missing.
  const wal = existsSync(`${path}-wal`);
  const shm = existsSync(`${path}-shm`);
  const walSigns = code.startsWith('SQLITE_READONLY_') || (code.startsWith('SQLITE_CANTOPEN') && wal && !shm);
  if (!walSigns || writable(dir)) return undefined;
  const missing = [wal ? undefined : `${path}-wal`, shm ? undefined : `${path}-shm`].filter((m) => m !== undefined);
  const why = missing.length === 0
    ? 'SQLite cannot use its -shm there'
    : `${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing and SQLite cannot create ${missing.length === 1 ? 'it' : 'them'} there`;
  return new SourceError(
    'SOURCE_WAL_READONLY_DIR',
    `${what}: ${path} is a WAL database in a directory this user cannot write (${dir}): a reader needs its -wal and -shm beside it; ${why}`,
    {
      cause,
      hint:
        `make ${dir} writable for the user running pagevault, or run pagevault as the database's owner; ` +
        'while an application has the database open, its -wal and -shm exist and a snapshot can read them',
    },
  );
}
