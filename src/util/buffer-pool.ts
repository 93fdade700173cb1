// A fixed set of reusable buffers. The snapshot and restore pipelines bound their memory by the buffers they
// own: whoever needs one waits until another is released, which is how backpressure reaches the producer.
import { AbortedError, BugError } from '../errors.ts';

export class BufferPool {
  readonly size: number;
  readonly #free: Buffer[] = [];
  readonly #waiters: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = [];
  readonly #count: number;
  #allocated = 0;

  /**
   * Up to `count` buffers of `size` bytes, each backed by an ArrayBuffer of its own (never Node's shared slab),
   * so that a buffer can be transferred to a worker thread and back. They are allocated when first needed:
   * a pipeline that keeps up with fewer never pays for (or touches the pages of) the rest.
   */
  constructor(count: number, size: number) {
    if (!Number.isSafeInteger(count) || count < 1) throw new BugError(`buffer count must be a positive integer, got ${count}`);
    if (!Number.isSafeInteger(size) || size < 1) throw new BugError(`buffer size must be a positive integer, got ${size}`);
    this.size = size;
    this.#count = count;
  }

  /** Buffers that acquire() would hand out without waiting. */
  get available(): number {
    return this.#free.length + this.#count - this.#allocated;
  }

  get count(): number {
    return this.#count;
  }

  /** A free buffer (its content is whatever it held last), waiting for one if none is free. */
  acquire(signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) return Promise.reject(new AbortedError('wait for a buffer: aborted', { cause: signal.reason }));
    const free = this.#free.pop();
    if (free) return Promise.resolve(free);
    if (this.#allocated < this.#count) {
      this.#allocated++;
      return Promise.resolve(Buffer.from(new ArrayBuffer(this.size)));
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (b: Buffer) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(b);
        },
        reject,
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new AbortedError('wait for a buffer: aborted', { cause: signal!.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Returns a buffer (or a view of the same ArrayBuffer after a transfer) to the pool. */
  release(buffer: Uint8Array): void {
    // A buffer lost with a crashed worker comes back detached: it cannot serve again (the operation has failed).
    if (buffer.buffer.byteLength < this.size) return;
    const whole = Buffer.from(buffer.buffer as ArrayBuffer, 0, this.size);
    const next = this.#waiters.shift();
    if (next) next.resolve(whole);
    else this.#free.push(whole);
  }
}
