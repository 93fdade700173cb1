// The S3 store's multipart engine: one object from a stream of the caller's buffers, each sent as one part
// without a copy, at most `partsInFlight` at once, every part with its Content-MD5, each request through the
// wrappers' hook (so a failed part is retried from its buffer). On a failure or an abort it waits for the parts
// in flight and aborts the multipart upload, all within `abortTimeoutMs`: a process told to stop must exit within
// its grace period, and an upload whose abort did not get through is left to the sweep of stale uploads
// (sweepIncomplete) and the bucket lifecycle rule.
import { storageDefaults } from '../../config/defaults.ts';
import { AbortedError, UsageError } from '../../errors.ts';
import { raceAbort } from '../../util/abort.ts';
import type { PutOptions } from '../client.ts';
import { hasCode, storageError } from '../errors.ts';
import { md5InSlices, PartRules, stopBody } from '../parts.ts';
import { Semaphore } from '../semaphore.ts';

export interface CompletedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** The requests the engine makes, each already run through the wrappers' hook by the store. */
export interface MultipartRequests {
  /** Starts the upload; called without a signal, so that an abort never loses the id of an upload the server made. */
  create(): Promise<string>;
  /** Stores one part; returns its entity tag. */
  part(uploadId: string, partNumber: number, data: Uint8Array, md5: string, signal: AbortSignal): Promise<string>;
  complete(uploadId: string, parts: readonly CompletedPart[], signal: AbortSignal | undefined): Promise<void>;
  /** Rejects with NOT_SUPPORTED where the server cannot abort. */
  abort(uploadId: string, signal: AbortSignal): Promise<void>;
  /** A body with no buffer at all is an empty object, stored with one PUT. */
  empty(signal: AbortSignal | undefined): Promise<void>;
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new UsageError('BAD_OPTION', `${name} must be a positive integer, got ${value}`);
  return value;
}

/** Uploads `body` as a multipart upload of `key`; resolves with its size once it is complete. */
export async function uploadMultipart(key: string, body: AsyncIterable<Uint8Array>, requests: MultipartRequests, options: PutOptions = {}): Promise<number> {
  const slots = new Semaphore(positive('partsInFlight', options.partsInFlight ?? storageDefaults.partsInFlight));
  const abortTimeoutMs = positive('abortTimeoutMs', options.abortTimeoutMs ?? storageDefaults.uploadAbortTimeoutMs);
  const what = `write ${key}`;
  const { signal, onEvent } = options;
  // Cancels the parts in flight once the upload has failed or been aborted.
  const cancel = new AbortController();
  let failure: Error | undefined;
  const fail = (err: unknown): void => {
    if (failure) return;
    failure = err as Error;
    cancel.abort(failure);
  };
  const onAbort = (): void => fail(new AbortedError(`${what}: aborted`, { cause: signal!.reason }));
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });

  const rules = new PartRules(key);
  const parts: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let uploadId: Promise<string> | undefined;
  let size = 0;
  let taken = 0;

  const send = async (data: Uint8Array, partNumber: number, release: () => void): Promise<void> => {
    try {
      uploadId ??= requests.create();
      const id = await raceAbort(uploadId, cancel.signal, what);
      const md5 = await md5InSlices(data);
      if (failure) throw failure;
      const etag = await requests.part(id, partNumber, data, md5, cancel.signal);
      parts.push({ partNumber, etag, size: data.length });
      size += data.length;
      onEvent?.({ type: 'part', key, partNumber, bytes: data.length });
    } catch (err) {
      // A part cancelled because another failed keeps the failure that caused it.
      fail(err);
    } finally {
      release();
      options.release?.(data);
    }
  };

  const it = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      const release = await slots.acquire(cancel.signal, what);
      let next: IteratorResult<Uint8Array>;
      try {
        next = await raceAbort(it.next(), cancel.signal, what);
      } catch (err) {
        release();
        throw err;
      }
      if (next.done) {
        release();
        break;
      }
      taken++;
      let partNumber: number;
      try {
        partNumber = rules.next(next.value);
      } catch (err) {
        release();
        options.release?.(next.value);
        throw err;
      }
      const task = send(next.value, partNumber, release);
      inFlight.add(task);
      void task.then(() => inFlight.delete(task));
    }
    while (inFlight.size > 0 && !failure) await Promise.race([...inFlight]);
    if (failure) throw failure;
    if (taken === 0) {
      await requests.empty(signal);
      return 0;
    }
    parts.sort((a, b) => a.partNumber - b.partNumber);
    await requests.complete(await uploadId!, parts, signal);
    return size;
  } catch (err) {
    fail(err);
    stopBody(it);
    await cleanUp();
    throw failure;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }

  /**
   * Waits until no part is in flight, then aborts the multipart upload, if one was created; all of it within
   * abortTimeoutMs. Parts still in flight at the deadline do not hold the abort back (a part that arrives after
   * it is refused by the server). Never rejects: the outcome is an 'aborted-upload' or 'abort-failed' event.
   */
  async function cleanUp(): Promise<void> {
    const deadline = AbortSignal.timeout(abortTimeoutMs);
    const late = (id: string | undefined, cause: unknown): void => {
      const message =
        `abort upload ${key}: ${id === undefined ? 'its creation' : 'the abort'} did not finish within ${abortTimeoutMs} ms; ` +
        'its parts stay until a later snapshot sweeps stale uploads or the bucket lifecycle rule removes them';
      onEvent?.({ type: 'abort-failed', key, ...(id === undefined ? {} : { uploadId: id }), error: storageError('TIMEOUT', message, cause) });
    };
    await raceAbort(Promise.all([...inFlight]), deadline, what).catch(() => {});
    let id: string | undefined;
    try {
      id = await raceAbort(uploadId ?? Promise.resolve(undefined), deadline, what);
    } catch (err) {
      if (deadline.aborted) late(undefined, err);
      return; // or the upload was never created
    }
    if (id === undefined) return;
    try {
      await requests.abort(id, deadline);
      onEvent?.({ type: 'aborted-upload', key, uploadId: id, supported: true });
    } catch (err) {
      // A server that cannot abort (the s3rver fork) keeps the parts; nothing more can be done from here.
      if (hasCode(err, 'NOT_SUPPORTED')) onEvent?.({ type: 'aborted-upload', key, uploadId: id, supported: false });
      else if (deadline.aborted) late(id, err);
      else onEvent?.({ type: 'abort-failed', key, uploadId: id, error: err as Error });
    }
  }
}
