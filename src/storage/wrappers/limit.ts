// LimitStore bounds the requests in flight at once across all operations of a client: each request the
// backend makes (a listing page, a part, a HEAD) holds one slot while it runs, never a whole call made of many
// requests. Inside the retry wrapper, so a backoff wait holds none.
import { UsageError } from '../../errors.ts';
import type { StorageClient } from '../client.ts';
import { Semaphore } from '../semaphore.ts';
import { StorageWrapper, type Call } from './wrapper.ts';

export class LimitStore extends StorageWrapper {
  readonly #slots: Semaphore;
  #active = 0;
  #peak = 0;

  constructor(inner: StorageClient, concurrency: number) {
    super(inner);
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new UsageError('BAD_OPTION', `concurrency must be a positive integer, got ${concurrency}`);
    }
    this.#slots = new Semaphore(concurrency);
  }

  /** The most requests that were ever in flight at once (tests and benchmarks read it). */
  get peak(): number {
    return this.#peak;
  }

  protected override async around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    const release = await this.#slots.acquire(call.signal, `${call.op} ${call.key}`);
    this.#peak = Math.max(this.#peak, ++this.#active);
    try {
      return await fn();
    } finally {
      this.#active--;
      release();
    }
  }
}
