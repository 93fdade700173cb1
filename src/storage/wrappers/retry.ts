// RetryStore retries transient failures (5xx, 429/SlowDown, resets, timeouts, truncated bodies, unreachable
// endpoints) with full-jitter exponential backoff, within a number of attempts and a total time per operation.
// Permanent errors (403, NoSuchBucket, a missing key, a bad range, usage errors) are thrown at once.
// A retried part is resent from the caller's buffer: uploadPart just calls the wrapped client again with it.
import { createHash } from 'node:crypto';
import { storageDefaults } from '../../config/defaults.ts';
import { AbortedError, StorageError } from '../../errors.ts';
import type { CallOptions, CompletedPart, ListOptions, ObjectInfo, PendingUpload, StorageClient, StorageEventListener } from '../client.ts';
import { abortedError, hasCode, isTransient, storageError } from '../errors.ts';
import { sleep } from '../semaphore.ts';
import { StorageWrapper, type Call } from './wrapper.ts';

export interface RetryOptions {
  /** Attempts per operation, the first included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Total time one operation may spend, attempts and waits included, before giving up. */
  budgetMs?: number;
  onEvent?: StorageEventListener;
  /** For tests: the jitter source. */
  random?: () => number;
}

interface Attempts {
  count: number;
  started: number;
}

export class RetryStore extends StorageWrapper {
  readonly #attempts: number;
  readonly #base: number;
  readonly #max: number;
  readonly #budget: number;
  readonly #onEvent: StorageEventListener | undefined;
  readonly #random: () => number;

  constructor(inner: StorageClient, options: RetryOptions = {}) {
    super(inner);
    this.#attempts = options.attempts ?? storageDefaults.retryAttempts;
    this.#base = options.baseDelayMs ?? storageDefaults.retryBaseDelayMs;
    this.#max = options.maxDelayMs ?? storageDefaults.retryMaxDelayMs;
    this.#budget = options.budgetMs ?? storageDefaults.retryBudgetMs;
    this.#onEvent = options.onEvent;
    this.#random = options.random ?? Math.random;
  }

  /** Throws unless `err` is worth another attempt and the budget allows one; otherwise waits the backoff delay. */
  async #backoff(call: Call, state: Attempts, err: unknown): Promise<void> {
    if (call.signal?.aborted) throw err instanceof AbortedError ? err : abortedError(`${call.op} ${call.key}`, call.signal);
    if (!isTransient(err)) throw err;
    const elapsed = Date.now() - state.started;
    const cap = Math.min(this.#max, this.#base * 2 ** (state.count - 1));
    const delay = Math.round(Math.max(hasCode(err, 'THROTTLED') ? this.#base : 0, this.#random() * cap));
    if (state.count >= this.#attempts || elapsed + delay > this.#budget) {
      const last = err as StorageError;
      const code = last.code === 'UNREACHABLE' || last.code === 'TIMEOUT' ? last.code : 'RETRIES_EXHAUSTED';
      const secs = (elapsed / 1000).toFixed(1);
      throw storageError(code, `${last.message} (gave up after ${state.count} attempts in ${secs} s)`, last);
    }
    this.#onEvent?.({ type: 'retry', op: call.op, key: call.key, attempt: state.count, delayMs: delay, error: err as Error });
    await sleep(delay, call.signal, `${call.op} ${call.key}`);
    state.count++;
  }

  async #retry<T>(call: Call, fn: (attempt: number) => Promise<T>): Promise<T> {
    const state: Attempts = { count: 1, started: Date.now() };
    for (;;) {
      try {
        return await fn(state.count);
      } catch (err) {
        await this.#backoff(call, state, err);
      }
    }
  }

  protected override around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    return this.#retry(call, fn);
  }

  /**
   * A put whose response was lost may have succeeded: when a retry finds the key taken, it is ours if the
   * stored object has our bytes' MD5 as its entity tag.
   */
  override putIfAbsent(key: string, body: Uint8Array, options?: CallOptions): Promise<void> {
    return this.#retry({ op: 'put', key, signal: options?.signal }, async (attempt) => {
      try {
        await this.inner.putIfAbsent(key, body, options);
      } catch (err) {
        if (attempt === 1 || !hasCode(err, 'ALREADY_EXISTS')) throw err;
        const info = await this.inner.head(key, options);
        const md5 = createHash('md5').update(body).digest('hex');
        if (info.size !== body.length || info.etag?.toLowerCase() !== md5) throw err;
      }
    });
  }

  /** Likewise a completion whose response was lost: a retry finds no upload, but the object is there. */
  override completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[], options?: CallOptions): Promise<void> {
    return this.#retry({ op: 'complete upload', key, signal: options?.signal }, async (attempt) => {
      try {
        await this.inner.completeMultipartUpload(key, uploadId, parts, options);
      } catch (err) {
        if (attempt === 1 || !hasCode(err, 'NOT_FOUND')) throw err;
        const size = parts.reduce((sum, p) => sum + p.size, 0);
        const info = await this.inner.head(key, options).catch(() => undefined);
        const etag = info?.etag ?? '';
        if (info?.size !== size || (etag.includes('-') && !etag.endsWith(`-${parts.length}`))) throw err;
      }
    });
  }

  /** A listing that fails midway resumes after the last key it yielded; progress renews the budget. */
  override async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    const call = { op: 'list', key: prefix, signal: options?.signal };
    let after = options?.startAfter;
    let state: Attempts = { count: 1, started: Date.now() };
    for (;;) {
      try {
        for await (const info of this.inner.list(prefix, { ...options, ...(after === undefined ? {} : { startAfter: after }) })) {
          yield info;
          after = info.key;
          state = { count: 1, started: Date.now() };
        }
        return;
      } catch (err) {
        await this.#backoff(call, state, err);
      }
    }
  }

  /** Multipart listings cannot resume portably, so a failed one starts over and skips what it already yielded. */
  override async *listMultipartUploads(prefix: string, options?: CallOptions): AsyncIterable<PendingUpload> {
    const call = { op: 'list uploads', key: prefix, signal: options?.signal };
    const seen = new Set<string>();
    const state: Attempts = { count: 1, started: Date.now() };
    for (;;) {
      try {
        for await (const upload of this.inner.listMultipartUploads(prefix, options)) {
          if (seen.has(upload.uploadId)) continue;
          seen.add(upload.uploadId);
          yield upload;
        }
        return;
      } catch (err) {
        await this.#backoff(call, state, err);
      }
    }
  }
}
