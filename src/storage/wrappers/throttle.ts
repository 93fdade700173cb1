// ThrottleStore limits bytes per second (uploads and downloads together) and requests per second, each with a
// token bucket, and reports the bytes each successful request moved ('transfer' events). A request larger than
// the bucket goes into debt rather than waiting forever, so the average rate holds whatever the part size.
// Two rules keep an abort prompt under a low rate: a request that carries no body (start, complete or abort an
// upload, head, list, delete) never waits for the byte bucket, whatever the debt the parts in flight ran up;
// and a request cancelled while it waits gives its tokens back, so a cancelled part leaves no debt behind.
import { storageDefaults } from '../../config/defaults.ts';
import { UsageError } from '../../errors.ts';
import type { StorageClient, StorageEventListener } from '../client.ts';
import { sleep } from '../semaphore.ts';
import { StorageWrapper, type Call } from './wrapper.ts';

export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  /** `rate` tokens per second, at most `burst` saved up; starts full. */
  constructor(rate: number, burst: number, now: () => number = () => performance.now()) {
    this.#rate = rate;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes `n` tokens and returns how many milliseconds the taker must wait before going ahead. */
  take(n: number): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#rate) * 1000;
  }

  /** Gives back `n` tokens taken by a request that never went ahead (it was cancelled while waiting). */
  refund(n: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + n);
  }
}

export interface ThrottleOptions {
  /** 0 = unlimited. */
  bytesPerSecond?: number;
  /** 0 = unlimited. */
  requestsPerSecond?: number;
  /** Bucket depth in seconds of the rate. */
  burstSeconds?: number;
  onEvent?: StorageEventListener;
}

function checkRate(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new UsageError('BAD_OPTION', `${name} must be a non-negative number, got ${value}`);
}

export class ThrottleStore extends StorageWrapper {
  readonly #bytes: TokenBucket | undefined;
  readonly #requests: TokenBucket | undefined;
  readonly #onEvent: StorageEventListener | undefined;

  constructor(inner: StorageClient, options: ThrottleOptions = {}) {
    super(inner);
    const bps = options.bytesPerSecond ?? storageDefaults.bytesPerSecond;
    const rps = options.requestsPerSecond ?? storageDefaults.requestsPerSecond;
    const burst = options.burstSeconds ?? storageDefaults.throttleBurstSeconds;
    checkRate('bytesPerSecond', bps);
    checkRate('requestsPerSecond', rps);
    checkRate('burstSeconds', burst);
    this.#bytes = bps > 0 ? new TokenBucket(bps, Math.max(1, bps * burst)) : undefined;
    this.#requests = rps > 0 ? new TokenBucket(rps, Math.max(1, rps * burst)) : undefined;
    this.#onEvent = options.onEvent;
  }

  protected override async around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    const bytes = (call.up ?? 0) + (call.down ?? 0);
    const bytesBucket = bytes > 0 || call.unsized ? this.#bytes : undefined;
    const wait = Math.max(this.#requests?.take(1) ?? 0, bytesBucket?.take(bytes) ?? 0);
    if (wait > 0) {
      this.#onEvent?.({ type: 'throttled', op: call.op, key: call.key, waitMs: Math.round(wait) });
      try {
        await sleep(wait, call.signal, `${call.op} ${call.key}`);
      } catch (err) {
        this.#requests?.refund(1);
        bytesBucket?.refund(bytes);
        throw err;
      }
    }
    const result = await fn();
    // A whole-object get learns its size only now: charge it, so that the next request waits for it.
    const down = call.down ?? (Buffer.isBuffer(result) ? result.length : 0);
    if (call.down === undefined && down > 0) this.#bytes?.take(down);
    if (call.up) this.#onEvent?.({ type: 'transfer', op: call.op, key: call.key, direction: 'up', bytes: call.up });
    if (down) this.#onEvent?.({ type: 'transfer', op: call.op, key: call.key, direction: 'down', bytes: down });
    return result;
  }
}
