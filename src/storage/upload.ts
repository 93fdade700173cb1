// MultipartUpload: one large object uploaded part by part from the caller's buffers, modelled on lib-storage's
// Upload (done once, abort, events, on failure wait for every part then abort the upload) but fed by the caller:
// the snapshot pipeline fills parts from a bounded pool of reusable buffers, so each part is the caller's buffer,
// borrowed until its writePart() promise settles, and a retried part is resent from that same buffer (the retry
// wrapper under the client does that). Every part carries its Content-MD5.
// Cleaning up is bounded in time (abortTimeoutMs): a process told to stop must exit within its grace period,
// and an upload whose abort did not get through is left to the sweep of stale uploads and the lifecycle rule.
import { createHash } from 'node:crypto';
import { MiB, storageDefaults } from '../config/defaults.ts';
import { AbortedError, BugError, UsageError } from '../errors.ts';
import { raceAbort } from '../util/abort.ts';
import type { CompletedPart, StorageClient, StorageEventListener } from './client.ts';
import { checkKey, hasCode, storageError } from './errors.ts';
import { Semaphore } from './semaphore.ts';

export interface MultipartUploadOptions {
  /** Parts sent at once; further writePart() calls wait (backpressure). Default storageDefaults.partsInFlight. */
  partsInFlight?: number;
  /** Aborts the upload (in-flight parts are cancelled, then the multipart upload is aborted). */
  signal?: AbortSignal;
  /**
   * The most time cleaning up after a failure or an abort may take: waiting for in-flight parts to stop, then
   * AbortMultipartUpload. Default storageDefaults.uploadAbortTimeoutMs.
   */
  abortTimeoutMs?: number;
  onEvent?: StorageEventListener;
}

export interface UploadResult {
  key: string;
  size: number;
  parts: number;
}

/**
 * The part size for an object of about `expectedSize` bytes: `preferred` unless that would need more than
 * 10,000 parts, then the smallest whole number of MiB that fits. Throws UsageError for sizes S3 cannot hold.
 */
export function partSizeFor(expectedSize?: number, preferred: number = storageDefaults.partSize): number {
  const { minPartSize, maxPartSize, maxParts } = storageDefaults;
  if (!Number.isSafeInteger(preferred) || preferred < minPartSize || preferred > maxPartSize) {
    throw new UsageError('BAD_OPTION', `partSize must be between ${minPartSize} and ${maxPartSize} bytes, got ${preferred}`);
  }
  if (expectedSize === undefined) return preferred;
  if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
    throw new UsageError('BAD_OPTION', `expected object size must be a non-negative integer, got ${expectedSize}`);
  }
  const needed = Math.ceil(Math.ceil(expectedSize / maxParts) / MiB) * MiB;
  const size = Math.max(preferred, needed);
  if (size > maxPartSize) {
    throw new UsageError('BAD_OPTION', `an object of ${expectedSize} bytes needs parts larger than S3's ${maxPartSize}-byte limit`);
  }
  return size;
}

export class MultipartUpload {
  readonly key: string;
  readonly #client: StorageClient;
  readonly #slots: Semaphore;
  readonly #onEvent: StorageEventListener | undefined;
  readonly #abortTimeoutMs: number;
  /** Cancels in-flight parts once the upload has failed or been aborted. */
  readonly #cancel = new AbortController();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #parts: CompletedPart[] = [];
  #uploadId: Promise<string> | undefined;
  #nextPart = 1;
  #smallPart: number | undefined;
  #size = 0;
  #state: 'open' | 'completing' | 'done' | 'failed' = 'open';
  #failure: Error | undefined;
  #cleanup: Promise<void> | undefined;
  #cleanupError: Error | undefined;

  constructor(client: StorageClient, key: string, options: MultipartUploadOptions = {}) {
    checkKey(key);
    const inFlight = options.partsInFlight ?? storageDefaults.partsInFlight;
    if (!Number.isSafeInteger(inFlight) || inFlight < 1) {
      throw new UsageError('BAD_OPTION', `partsInFlight must be a positive integer, got ${inFlight}`);
    }
    const abortTimeoutMs = options.abortTimeoutMs ?? storageDefaults.uploadAbortTimeoutMs;
    if (!Number.isSafeInteger(abortTimeoutMs) || abortTimeoutMs < 1) {
      throw new UsageError('BAD_OPTION', `abortTimeoutMs must be a positive integer, got ${abortTimeoutMs}`);
    }
    this.#abortTimeoutMs = abortTimeoutMs;
    this.key = key;
    this.#client = client;
    this.#slots = new Semaphore(inFlight);
    this.#onEvent = options.onEvent;
    const signal = options.signal;
    if (signal) {
      const onAbort = (): void => void this.abort(signal.reason).catch(() => {});
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  }

  /** Bytes stored so far (parts acknowledged by the server). */
  get size(): number {
    return this.#size;
  }

  /**
   * Queues `data` as the next part (parts are numbered in call order) and resolves once the server has stored
   * it: only then may the caller reuse `data`. At most `partsInFlight` parts are sent at once; later calls wait
   * their turn, holding their buffer. Every part except the last must be at least 5 MiB, and there may be at
   * most 10,000 (BugError otherwise). If any part fails for good, the upload fails: every pending and later
   * writePart() and complete() reject, and the multipart upload is aborted once no part is in flight.
   * `md5` (base64) may be given when the caller hashed the part as it filled it, in small steps: hashing a
   * whole part here at once blocks the event loop for ~15 ms per 8 MiB.
   * Attach a rejection handler to every returned promise.
   */
  writePart(data: Uint8Array, md5?: string): Promise<void> {
    if (this.#state !== 'open') {
      return Promise.reject(this.#failure ?? new BugError(`upload ${this.key}: writePart() after complete()`));
    }
    const { minPartSize, maxPartSize, maxParts } = storageDefaults;
    if (this.#smallPart !== undefined) {
      return Promise.reject(
        new BugError(`upload ${this.key}: part ${this.#smallPart} was smaller than ${minPartSize} bytes, so it must be the last`),
      );
    }
    if (data.length === 0 || data.length > maxPartSize) {
      return Promise.reject(new BugError(`upload ${this.key}: a part must hold 1 to ${maxPartSize} bytes, got ${data.length}`));
    }
    if (this.#nextPart > maxParts) {
      return Promise.reject(new BugError(`upload ${this.key}: more than ${maxParts} parts; use a larger part size`));
    }
    const partNumber = this.#nextPart++;
    if (data.length < minPartSize) this.#smallPart = partNumber;
    const sent = this.#sendPart(partNumber, data, md5);
    const settled = sent.catch(() => {});
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
    return sent;
  }

  async #sendPart(partNumber: number, data: Uint8Array, givenMd5: string | undefined): Promise<void> {
    const signal = this.#cancel.signal;
    let release: (() => void) | undefined;
    try {
      release = await this.#slots.acquire(signal, `upload ${this.key}: part ${partNumber}`);
      if (this.#failure) throw this.#failure;
      // Created without our cancel signal, so that an abort never loses the id of an upload the server made.
      this.#uploadId ??= this.#client.createMultipartUpload(this.key);
      const uploadId = await this.#uploadId;
      const md5 = givenMd5 ?? createHash('md5').update(data).digest('base64');
      const etag = await this.#client.uploadPart(this.key, uploadId, partNumber, data, { md5, signal });
      this.#parts.push({ partNumber, etag, size: data.length });
      this.#size += data.length;
      this.#onEvent?.({ type: 'part', key: this.key, partNumber, bytes: data.length });
    } catch (err) {
      this.#fail(err as Error);
      // A part cancelled because another failed reports the failure that caused it.
      throw err instanceof AbortedError && this.#failure !== err ? this.#failure : err;
    } finally {
      release?.();
    }
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#state = 'failed';
    this.#cancel.abort(err);
    this.#cleanup = this.#abortUpload();
  }

  /**
   * Waits until no part is in flight, then aborts the multipart upload, if one was created; all of it within
   * abortTimeoutMs. Parts still in flight at the deadline do not hold the abort back (a part that arrives
   * after it is refused by the server). Never rejects: a failed or late abort is kept for abort() and
   * reported as an 'abort-failed' event.
   */
  async #abortUpload(): Promise<void> {
    const deadline = AbortSignal.timeout(this.#abortTimeoutMs);
    const what = `abort upload ${this.key}`;
    await Promise.resolve(); // let the failing part register before waiting for the rest
    const settled = (async () => {
      while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    })();
    await raceAbort(settled, deadline, what).catch(() => {});
    let uploadId: string | undefined;
    try {
      uploadId = await raceAbort(this.#uploadId ?? Promise.resolve(undefined), deadline, what);
    } catch (err) {
      if (!deadline.aborted) return; // the upload was never created
      this.#lateAbort(undefined, err);
      return;
    }
    if (uploadId === undefined) return;
    try {
      await this.#client.abortMultipartUpload(this.key, uploadId, { signal: deadline });
      this.#onEvent?.({ type: 'aborted-upload', key: this.key, uploadId, supported: true });
    } catch (err) {
      // A server that cannot abort (the s3rver fork) keeps the parts; nothing more can be done from here.
      if (hasCode(err, 'NOT_SUPPORTED')) this.#onEvent?.({ type: 'aborted-upload', key: this.key, uploadId, supported: false });
      else if (deadline.aborted) this.#lateAbort(uploadId, err);
      else {
        this.#cleanupError = err as Error;
        this.#onEvent?.({ type: 'abort-failed', key: this.key, uploadId, error: err as Error });
      }
    }
  }

  #lateAbort(uploadId: string | undefined, cause: unknown): void {
    const message =
      `abort upload ${this.key}: ${uploadId === undefined ? 'its creation' : 'the abort'} did not finish within ${this.#abortTimeoutMs} ms; ` +
      'its parts stay until a later snapshot aborts stale uploads or the bucket lifecycle rule removes them';
    this.#cleanupError = storageError('TIMEOUT', message, cause);
    this.#onEvent?.({ type: 'abort-failed', key: this.key, ...(uploadId === undefined ? {} : { uploadId }), error: this.#cleanupError });
  }

  /**
   * Waits for every part, then makes the object visible. Callable once. If a part failed, or completing fails,
   * aborts the multipart upload and rejects with the first error.
   */
  async complete(): Promise<UploadResult> {
    if (this.#state !== 'open') {
      await this.#cleanup;
      throw this.#failure ?? new BugError(`upload ${this.key}: complete() called twice`);
    }
    this.#state = 'completing';
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    if (this.#failure) {
      await this.#cleanup;
      throw this.#failure;
    }
    if (this.#parts.length === 0) {
      this.#state = 'failed';
      throw new BugError(`upload ${this.key}: complete() without any part`);
    }
    const parts = [...this.#parts].sort((a, b) => a.partNumber - b.partNumber);
    try {
      await this.#client.completeMultipartUpload(this.key, await this.#uploadId!, parts);
    } catch (err) {
      this.#fail(err as Error);
      await this.#cleanup;
      throw err;
    }
    this.#state = 'done';
    return { key: this.key, size: this.#size, parts: parts.length };
  }

  /**
   * Cancels in-flight parts, waits for them, and aborts the multipart upload. Pending writePart() calls reject
   * with AbortedError. Resolves once the server has been told (rejects if even that failed); a no-op after the
   * upload completed.
   */
  async abort(reason?: unknown): Promise<void> {
    if (this.#state === 'done') return;
    this.#fail(new AbortedError(`upload ${this.key}: aborted`, reason === undefined ? undefined : { cause: reason }));
    await this.#cleanup;
    if (this.#cleanupError) throw this.#cleanupError;
  }
}
