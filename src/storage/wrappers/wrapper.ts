// The base of the retry, limit and throttle wrappers: a StorageClient that forwards every call to the one it
// wraps, adding its own `around` to the request hook the backend runs each request through (client.ts). So a
// wrapper acts once per request: a listing page, a part of a streamed object, a delete batch each count once
// (a create counts once with the HEADs it needs); a call made of many requests (a streamed putObject) is never
// wrapped whole, so that its parts take slots of their own.
import type {
  Call,
  CallOptions,
  IncompleteWrite,
  ListPage,
  ListPageOptions,
  ObjectBody,
  ObjectInfo,
  PutOptions,
  ReadRangeOptions,
  StorageClient,
} from '../client.ts';

export type { Call } from '../client.ts';

export abstract class StorageWrapper implements StorageClient {
  readonly url: string;
  protected readonly inner: StorageClient;
  readonly sweepIncomplete?: (prefix: string, olderThanMs: number, options?: CallOptions) => Promise<IncompleteWrite[]>;

  constructor(inner: StorageClient) {
    this.inner = inner;
    this.url = inner.url;
    if (inner.sweepIncomplete) {
      this.sweepIncomplete = (prefix, olderThanMs, options) => inner.sweepIncomplete!(prefix, olderThanMs, this.#hooked(options));
    }
  }

  /** Runs one request (`fn`) of the backend. */
  protected abstract around<T>(call: Call, fn: () => Promise<T>): Promise<T>;

  /** `options` with this wrapper's `around` inside the hook of the wrappers above it. */
  #hooked<O extends CallOptions>(options: O | undefined): O {
    const outer = options?.around;
    const mine = <T>(call: Call, fn: () => Promise<T>): Promise<T> => this.around(call, fn);
    return { ...options, around: outer ? <T>(call: Call, fn: () => Promise<T>) => outer(call, () => mine(call, fn)) : mine } as O;
  }

  putObject(key: string, body: ObjectBody, options?: PutOptions): Promise<number> {
    return this.inner.putObject(key, body, this.#hooked(options));
  }

  putIfAbsent(key: string, body: Uint8Array, options?: CallOptions): Promise<void> {
    return this.inner.putIfAbsent(key, body, this.#hooked(options));
  }

  getObject(key: string, options?: CallOptions): Promise<Buffer> {
    return this.inner.getObject(key, this.#hooked(options));
  }

  readRange(key: string, offset: number, length: number, options?: ReadRangeOptions): Promise<Buffer> {
    return this.inner.readRange(key, offset, length, this.#hooked(options));
  }

  head(key: string, options?: CallOptions): Promise<ObjectInfo> {
    return this.inner.head(key, this.#hooked(options));
  }

  listPage(prefix: string, options?: ListPageOptions): Promise<ListPage> {
    return this.inner.listPage(prefix, this.#hooked(options));
  }

  deleteMany(keys: readonly string[], options?: CallOptions): Promise<void> {
    return this.inner.deleteMany(keys, this.#hooked(options));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
