// RetryStore retries transient failures (5xx, 429/SlowDown, resets, timeouts, truncated bodies, unreachable
// endpoints) with full-jitter exponential backoff, within a number of attempts and a total time per operation.
// Permanent errors (403, NoSuchBucket, a missing key, a bad range, usage errors) are thrown at once.
// It retries requests, not calls (wrapper.ts): a failed part is resent from the caller's buffer, a failed
// listing page is fetched again from the same cursor. Whether an existing object is the backend's own earlier
// write (a create whose response was lost) is the backend's to decide, not this wrapper's.
import { storageDefaults } from '../../config/defaults.ts';
import { AbortedError, StorageError } from '../../errors.ts';
import type { StorageClient, StorageEventListener } from '../client.ts';
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

  protected override async around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    const state: Attempts = { count: 1, started: Date.now() };
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        await this.#backoff(call, state, err);
      }
    }
  }
}
