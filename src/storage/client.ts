// The one interface pagevault uses to talk to object storage. Backends (s3/, file/) implement it; the retry,
// limit and throttle wrappers implement it too and are stacked in one place (stack.ts). Keys are relative to
// the storage URL's prefix and use '/' as the separator. Every method rejects with a StorageError (or a
// UsageError for arguments that can never work, or an AbortedError when its signal fires); the codes a caller
// may branch on are listed in StorageErrorCode.

/** Stable codes carried by StorageError. Callers branch on these, never on messages. */
export type StorageErrorCode =
  | 'NOT_FOUND' // the key (or the multipart upload) does not exist
  | 'ALREADY_EXISTS' // putIfAbsent found the key taken
  | 'NO_SUCH_BUCKET'
  | 'ACCESS_DENIED' // wrong credentials, a bad signature, or a policy refusal
  | 'INVALID_RANGE' // a ranged read reaching past the end of the object
  | 'NOT_SUPPORTED' // the server does not implement the operation (see the method's contract)
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
  /** The server's entity tag without quotes; for a single PUT on most servers the hex MD5 of the bytes. */
  etag?: string;
  lastModified?: Date;
}

export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated?: Date;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
  size: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ReadRangeOptions extends CallOptions {
  /** Read into this buffer (from its start) instead of a new one; it must hold at least `length` bytes. */
  into?: Buffer;
}

export interface ListOptions extends CallOptions {
  /** Only keys sorting strictly after this one (relative key); how a listing resumes. */
  startAfter?: string;
}

export interface UploadPartOptions extends CallOptions {
  /** Base64 MD5 of the part, sent as Content-MD5 so that the server rejects a corrupted part (BAD_DIGEST). */
  md5: string;
}

/** What the wrappers report; see stack.ts for who emits which. */
export type StorageEvent =
  | { type: 'retry'; op: string; key: string; attempt: number; delayMs: number; error: Error }
  | { type: 'throttled'; op: string; key: string; waitMs: number }
  | { type: 'transfer'; op: string; key: string; direction: 'up' | 'down'; bytes: number }
  | { type: 'part'; key: string; partNumber: number; bytes: number }
  /** supported: false when the server cannot abort (405/501) and the parts stay until a lifecycle rule removes them. */
  | { type: 'aborted-upload'; key: string; uploadId: string; supported: boolean }
  /** The abort failed or ran out of time (uploadId undefined: the upload's creation had not answered yet). */
  | { type: 'abort-failed'; key: string; uploadId?: string; error: Error };

export type StorageEventListener = (event: StorageEvent) => void;

export interface StorageClient {
  /** The storage URL with any secret removed: safe to log. */
  readonly url: string;

  /**
   * Stores `body` at `key` only if no object exists there. Rejects with ALREADY_EXISTS if one does, leaving it
   * untouched. A reader never sees a partly written object. For small objects (manifests, config); large ones
   * use a multipart upload.
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
   * of it). Rejects with NOT_FOUND if the key does not exist and with INVALID_RANGE if the object ends before
   * offset + length.
   */
  readRange(key: string, offset: number, length: number, options?: ReadRangeOptions): Promise<Buffer>;

  /** Size and entity tag. Rejects with NOT_FOUND if the key does not exist. */
  head(key: string, options?: CallOptions): Promise<ObjectInfo>;

  /**
   * Every object whose key starts with `prefix`, once each, fetching pages lazily. Objects of unfinished
   * multipart uploads are never listed. An empty prefix lists everything. The order is ascending byte order of
   * key on the file backend and on servers that follow S3 (AWS, radosgw); some test servers (fauxqs, s3rver)
   * list in another order, so a caller that needs an order sorts. `startAfter` assumes byte order.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo>;

  /** Deletes the keys, in batches; keys that do not exist are not an error. */
  deleteMany(keys: readonly string[], options?: CallOptions): Promise<void>;

  /** Starts a multipart upload of `key` and returns its upload id. Nothing is visible at `key` until complete. */
  createMultipartUpload(key: string, options?: CallOptions): Promise<string>;

  /**
   * Stores one part (numbered from 1) and returns its entity tag. `data` is only read, and only until the
   * promise settles, so a retry may resend the same buffer. Rejects with BAD_DIGEST if `md5` does not match.
   */
  uploadPart(key: string, uploadId: string, partNumber: number, data: Uint8Array, options: UploadPartOptions): Promise<string>;

  /** Makes the object visible at `key`, made of `parts` in order. Rejects with NOT_FOUND for an unknown upload. */
  completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[], options?: CallOptions): Promise<void>;

  /**
   * Discards an upload and its parts. An upload that does not exist (already aborted or completed) is not an
   * error. Rejects with NOT_SUPPORTED where the server cannot abort (the s3rver fork answers 405).
   */
  abortMultipartUpload(key: string, uploadId: string, options?: CallOptions): Promise<void>;

  /**
   * Multipart uploads started under `prefix` and neither completed nor aborted (to clean up after crashes).
   * Rejects with NOT_SUPPORTED where the server does not implement it (the s3rver fork answers 405); some
   * servers (fauxqs) accept the call and always list none, which no client can tell apart from "none".
   */
  listMultipartUploads(prefix: string, options?: CallOptions): AsyncIterable<PendingUpload>;

  /** Releases sockets and file handles. The client is unusable afterwards. */
  close(): Promise<void>;
}
