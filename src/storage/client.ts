// The one interface pagevault uses to talk to object storage: whole objects written once, ranged reads, one
// listing page per call, batch deletes and a create-if-absent. Backends (s3/, file/) implement it; how an object
// gets there (S3 multipart, a temp file renamed into place) is theirs. The retry, limit and throttle wrappers
// implement it too and are stacked in one place (stack.ts); a backend hands each request it makes to
// `options.around`, so that the wrappers retry, count and pace requests, not calls. Keys are relative to the
// storage URL's prefix and use '/' as the separator. Every method rejects with a StorageError (or a UsageError
// for arguments that can never work, a BugError for a body that breaks the part rules, or an AbortedError when
// its signal fires); the codes a caller may branch on are listed in StorageErrorCode.

/** Stable codes carried by StorageError. Callers branch on these, never on messages. */
export type StorageErrorCode =
  | 'NOT_FOUND' // the key does not exist
  | 'ALREADY_EXISTS' // putIfAbsent found the key taken
  | 'NO_SUCH_BUCKET'
  | 'ACCESS_DENIED' // wrong credentials, a bad signature, or a policy refusal
  | 'INVALID_RANGE' // a ranged read reaching past the end of the object
  | 'NOT_SUPPORTED' // the server does not implement the operation, or ignored a Range (see the method's contract)
  | 'UNREACHABLE' // connection refused, no route, DNS failure
  | 'TIMEOUT' // connect or idle timeout: the server stalled
  | 'CONNECTION' // the connection was reset or closed mid-request
  | 'TRUNCATED' // a response body shorter than announced
  | 'THROTTLED' // 429, 503 SlowDown
  | 'SERVER_ERROR' // any other 5xx
  | 'BAD_DIGEST' // the server rejected a part or object whose Content-MD5 did not match
  | 'RETRIES_EXHAUSTED' // transient failures outlasted the retry budget; the last one is the cause
  | 'REJECTED'; // any other refusal (4xx), with the server's code in the message

/** Codes worth retrying: the same request may well succeed a moment later. */
export const transientCodes: ReadonlySet<string> = new Set<StorageErrorCode>([
  'UNREACHABLE',
  'TIMEOUT',
  'CONNECTION',
  'TRUNCATED',
  'THROTTLED',
  'SERVER_ERROR',
]);

export interface ObjectInfo {
  /** Relative to the storage prefix. */
  key: string;
  size: number;
  /** The server's entity tag without quotes; not necessarily the MD5 of the bytes (multipart, SSE-KMS). */
  etag?: string;
  lastModified?: Date;
}

/** One request a backend makes, as the wrappers see it. */
export interface Call {
  op: string;
  key: string;
  /** Bytes the request sends. */
  up?: number;
  /** Bytes the response brings, when known before the call. */
  down?: number;
  /** The response brings a body of a size learnt only from it (a whole-object get). */
  unsized?: boolean;
  signal?: AbortSignal | undefined;
}

/** Runs one request (`fn`) of a backend; `fn` may be called again (a retry), so it must be repeatable. */
export type RequestHook = <T>(call: Call, fn: () => Promise<T>) => Promise<T>;

export interface CallOptions {
  signal?: AbortSignal;
  /** Set by the wrappers (stack.ts), not by callers: the backend runs each of its requests through it. */
  around?: RequestHook;
}

export interface ReadRangeOptions extends CallOptions {
  /** Read into this buffer (from its start) instead of a new one; it must hold at least `length` bytes. */
  into?: Buffer;
}

export interface ListPageOptions extends CallOptions {
  /** Only keys sorting strictly after this one (relative key). Ignored with `cursor`. */
  startAfter?: string;
  /** The `next` of the previous page: where this page begins. */
  cursor?: string;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** Present when the listing continues: pass it as `cursor` for the next page. */
  next?: string;
}

/**
 * An object's bytes: one buffer, or a stream of buffers written in order. Every streamed buffer but the last
 * must hold at least storageDefaults.minPartSize bytes and at most maxPartSize, and there may be at most
 * maxParts of them (BugError otherwise): the S3 store sends each as one part of a multipart upload, without
 * copying it.
 */
export type ObjectBody = Uint8Array | AsyncIterable<Uint8Array>;

export interface PutOptions extends CallOptions {
  /**
   * Called once for each buffer the store took from a streamed body, when it reads it no more (stored, or the
   * write failed): only then may the caller reuse it. Buffers the store never took stay the caller's.
   */
  release?: (buffer: Uint8Array) => void;
  /** Buffers of a streamed body sent at once; the store takes no more meanwhile (backpressure). Default storageDefaults.partsInFlight. */
  partsInFlight?: number;
  /**
   * The most time cleaning up after a failure or an abort may take (S3: waiting for parts in flight, then
   * AbortMultipartUpload). Default storageDefaults.uploadAbortTimeoutMs.
   */
  abortTimeoutMs?: number;
  onEvent?: StorageEventListener;
}

/** A write a killed process left unfinished (an S3 multipart upload, a file store temp file). */
export interface IncompleteWrite {
  /** The key it was for, where the store knows it. */
  key?: string;
  started: Date;
}

/** What the wrappers and the stores report; see stack.ts for who emits which. */
export type StorageEvent =
  | { type: 'retry'; op: string; key: string; attempt: number; delayMs: number; error: Error }
  | { type: 'throttled'; op: string; key: string; waitMs: number }
  | { type: 'transfer'; op: string; key: string; direction: 'up' | 'down'; bytes: number }
  /** A buffer of a streamed putObject was stored. */
  | { type: 'part'; key: string; partNumber: number; bytes: number }
  /** A failed or aborted putObject was cleaned up; supported: false when the server cannot abort (405/501) and the parts stay until a lifecycle rule removes them. */
  | { type: 'aborted-upload'; key: string; uploadId?: string; supported: boolean }
  /** The cleanup failed or ran out of time (uploadId undefined: the upload's creation had not answered yet). */
  | { type: 'abort-failed'; key: string; uploadId?: string; error: Error };

export type StorageEventListener = (event: StorageEvent) => void;

export interface StorageClient {
  /** The storage URL with any secret removed: safe to log. */
  readonly url: string;

  /**
   * Stores `body` at `key`, replacing any object there; a reader never sees a partly written object, and a
   * write that fails or is aborted leaves nothing visible (the S3 store aborts its multipart upload within
   * `abortTimeoutMs`). Resolves with the object's size once it is complete. Rejects with BAD_DIGEST if the
   * server found the bytes changed on the way.
   */
  putObject(key: string, body: ObjectBody, options?: PutOptions): Promise<number>;

  /**
   * Stores `body` at `key` only if no object exists there. Rejects with ALREADY_EXISTS if one does, leaving it
   * untouched. For small objects (manifests, config). A create whose response was lost and that is retried
   * succeeds: the backend recognises its own earlier write (S3: a random token in the object's metadata; file:
   * the same bytes), whatever the entity tag.
   *
   * Atomic on the file backend (link(2)) and on S3 servers that enforce `If-None-Match: *` (AWS, radosgw). Some
   * S3-compatible servers ignore that header (fauxqs, s3rver): there the S3 backend checks with HEAD first, which
   * catches an existing key but not two writers racing for the same new key. pagevault's keys are unique per
   * snapshot, so that race needs two hosts writing the same snapshot id.
   */
  putIfAbsent(key: string, body: Uint8Array, options?: CallOptions): Promise<void>;

  /** The whole object. Rejects with NOT_FOUND if the key does not exist. */
  getObject(key: string, options?: CallOptions): Promise<Buffer>;

  /**
   * Exactly `length` bytes (>= 1) starting at `offset`, into `options.into` if given (the result is then a view
   * of it). Rejects with NOT_FOUND if the key does not exist, with INVALID_RANGE if the object ends before
   * offset + length, and with NOT_SUPPORTED if the server ignored the range and answered with the whole object
   * (never downloaded: a pack may be gigabytes).
   */
  readRange(key: string, offset: number, length: number, options?: ReadRangeOptions): Promise<Buffer>;

  /** Size and entity tag. Rejects with NOT_FOUND if the key does not exist. */
  head(key: string, options?: CallOptions): Promise<ObjectInfo>;

  /**
   * One page of the objects whose key starts with `prefix` (one request); `next` says where the next page
   * begins. Objects still being written are never listed. An empty prefix lists everything. The order is
   * ascending byte order of key on the file backend and on servers that follow S3 (AWS, radosgw); some test
   * servers (fauxqs, s3rver) list in another order, so a caller that needs an order sorts. `startAfter`
   * assumes byte order. A page may be empty and still have a `next`. See listObjects() for every page.
   */
  listPage(prefix: string, options?: ListPageOptions): Promise<ListPage>;

  /** Deletes the keys, in batches; keys that do not exist are not an error. */
  deleteMany(keys: readonly string[], options?: CallOptions): Promise<void>;

  /**
   * Removes the unfinished writes under `prefix` that started more than `olderThanMs` ago and returns them; a
   * capability of the stores that can have such writes (S3 multipart uploads, file store temp files). Rejects
   * with NOT_SUPPORTED where the server cannot list or abort them (the s3rver fork answers 405/501); some
   * servers (fauxqs) list none, ever, which no client can tell apart from "none". The file store's temp files
   * do not record their key, so there it removes every old one.
   */
  sweepIncomplete?(prefix: string, olderThanMs: number, options?: CallOptions): Promise<IncompleteWrite[]>;

  /** Releases sockets and file handles. The client is unusable afterwards. */
  close(): Promise<void>;
}

/** Runs one request of a backend through the wrappers' hook, if any. */
export function request<T>(options: CallOptions | undefined, call: Call, fn: () => Promise<T>): Promise<T> {
  return options?.around ? options.around(call, fn) : fn();
}

/** Every object under `prefix`, fetching one page at a time as the caller iterates. */
export async function* listObjects(storage: StorageClient, prefix: string, options: ListPageOptions = {}): AsyncGenerator<ObjectInfo> {
  let page = await storage.listPage(prefix, options);
  for (;;) {
    yield* page.objects;
    if (page.next === undefined) return;
    page = await storage.listPage(prefix, { ...options, cursor: page.next });
  }
}
