// The error classes of pagevault. Each error carries a stable string `code`; the class says which kind of
// problem it is, and only src/cli/ turns a kind into an exit code and a message. Wrap with `{ cause }` and a
// lowercase context prefix ("read manifest 20261124T010203Z-1a2b: ...").

export class PagevaultError extends Error {
  readonly code: string;
  /** What the user can do about it, when the thrower knows better than a hint by kind of error would. */
  readonly hint: string | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options);
    this.code = code;
    this.hint = options?.hint;
    this.name = new.target.name;
  }
}

/** Bad flags, options or URLs: the caller asked for something that cannot be done as asked. */
export class UsageError extends PagevaultError {}

/** The source database: missing, not SQLite, unreadable, corrupt, or it changed under us in a way we cannot follow. */
export class SourceError extends PagevaultError {}

/** Object storage: unreachable, credentials, missing bucket or key, a server that refused or kept failing. */
export class StorageError extends PagevaultError {}

/** Stored data that does not verify: a digest mismatch, a damaged or tampered object, a failed integrity check. */
export class IntegrityError extends PagevaultError {}

/**
 * A snapshot or a prune that met another host's work it cannot safely go on beside: a snapshot that ran past
 * its share of the grace period, or whose reused objects a prune has condemned, publishes nothing; a prune
 * paused past its safety bound forgets nothing. Running the command again is safe.
 */
export class ConflictError extends PagevaultError {}

/**
 * The snapshot was published, and the prune run after it (snapshot --keep-*) failed: `snapshot` holds the
 * published snapshot's result, `cause` the prune's error.
 */
export class PruneAfterSnapshotError extends PagevaultError {
  readonly snapshot: unknown;
  constructor(message: string, options: { cause: unknown; snapshot: unknown; hint?: string }) {
    super('PRUNE_FAILED', message, options);
    this.snapshot = options.snapshot;
  }
}

/** A restore target that already exists and was not to be replaced. */
export class TargetExistsError extends PagevaultError {}

/**
 * A restore target that another process holds: SQLite's locks on the database or its -shm, or an open file
 * descriptor. Replacing it would pull the file out from under that process (its next commits would be lost).
 */
export class TargetInUseError extends PagevaultError {}

/** The restore target cannot be written: its directory is missing or read-only, the disk is full, and the like. */
export class TargetWriteError extends PagevaultError {}

/** The operation was cancelled through its AbortSignal (or a signal to the process). */
export class AbortedError extends PagevaultError {
  constructor(message = 'the operation was aborted', options?: { cause?: unknown; hint?: string }) {
    super('ABORTED', message, options);
  }
}

/**
 * A broken invariant of pagevault's own code: an internal function called in a way its callers promise never to,
 * or a state that cannot happen. Not the user's mistake, so no hint about flags; the CLI says it is a bug, with
 * the version, and exits 1. The code is always BUG; the message says which invariant broke.
 */
export class BugError extends PagevaultError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BUG', message, options);
  }
}

/** Throws AbortedError (carrying the signal's reason as cause) if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(`${what}: aborted`, { cause: signal.reason });
}
