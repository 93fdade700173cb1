// The exit codes of the pagevault CLI: one table (the README repeats it) and the one function that maps an
// error to a code. Only main.ts calls process.exit, with what this file decides.
import { BugError, ConflictError, IntegrityError, PruneAfterSnapshotError, SourceError, StorageError, TargetExistsError, TargetInUseError, TargetWriteError, UsageError } from '../errors.ts';

export const exitCodes = {
  ok: { code: 0, meaning: 'success (also a restore skipped by --if-not-exists or --if-replica-exists)' },
  failure: { code: 1, meaning: 'anything else: a bug, an unexpected system error' },
  usage: { code: 2, meaning: 'usage: an unknown or bad flag, a bad vault URL, a bad snapshot id or time' },
  source: { code: 3, meaning: 'the source database: missing, not SQLite, unreadable, corrupt, locked too long' },
  storage: { code: 4, meaning: 'object storage: unreachable, credentials refused, missing bucket, no such snapshot' },
  integrity: { code: 5, meaning: 'integrity: a corrupt or tampered object, a digest mismatch, a failed integrity check' },
  targetExists: { code: 6, meaning: 'the restore target exists (pass --force to replace it)' },
  targetInUse: { code: 7, meaning: 'the restore target is in use: another process has the database or its -wal/-shm open (stop it first)' },
  targetWrite: { code: 8, meaning: 'the restore target cannot be written: its directory is missing or not writable, or the disk is full' },
  sourceDamaged: { code: 9, meaning: 'the snapshot was published, but the source database failed its check (see the message)' },
  pruneFailed: { code: 10, meaning: 'snapshot --keep-*: the snapshot was published, but the prune after it failed (run pagevault prune to finish)' },
  conflict: { code: 11, meaning: 'a concurrent prune: a snapshot that ran past half the grace period, or whose reused objects were marked, published nothing; a paused prune forgot nothing (run it again)' },
  sigint: { code: 130, meaning: 'interrupted by SIGINT: uploads aborted, nothing published' },
  sigterm: { code: 143, meaning: 'terminated by SIGTERM: uploads aborted, nothing published' },
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes]['code'];

/**
 * The exit code for an error. `signal` is the signal the process received, if any: an operation it aborted
 * exits with that signal's code, whichever error the abort surfaced as.
 */
export function exitCodeFor(err: unknown, signal?: NodeJS.Signals): ExitCode {
  if (signal === 'SIGINT') return exitCodes.sigint.code;
  if (signal === 'SIGTERM') return exitCodes.sigterm.code;
  if (err instanceof BugError) return exitCodes.failure.code;
  if (err instanceof PruneAfterSnapshotError) return exitCodes.pruneFailed.code;
  if (err instanceof ConflictError) return exitCodes.conflict.code;
  if (err instanceof UsageError) return exitCodes.usage.code;
  if (err instanceof SourceError) return exitCodes.source.code;
  if (err instanceof StorageError) return exitCodes.storage.code;
  if (err instanceof IntegrityError) return exitCodes.integrity.code;
  if (err instanceof TargetExistsError) return exitCodes.targetExists.code;
  if (err instanceof TargetInUseError) return exitCodes.targetInUse.code;
  if (err instanceof TargetWriteError) return exitCodes.targetWrite.code;
  return exitCodes.failure.code;
}
