// The base of the retry, limit and throttle wrappers: a StorageClient that forwards every call to the one it
// wraps through a single hook, `around`, which sees what the call is (operation, key, bytes it moves).
import type {
  CallOptions,
  CompletedPart,
  ListOptions,
  ObjectInfo,
  PendingUpload,
  ReadRangeOptions,
  StorageClient,
  UploadPartOptions,
} from '../client.ts';

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

export abstract class StorageWrapper implements StorageClient {
  readonly url: string;
  protected readonly inner: StorageClient;

  constructor(inner: StorageClient) {
    this.inner = inner;
    this.url = inner.url;
  }

  /** Runs one request (`fn`) of the wrapped client. */
  protected abstract around<T>(call: Call, fn: () => Promise<T>): Promise<T>;

  /** Wraps each page fetch (each next()) of a listing in `around`. */
  protected async *aroundEach<T>(call: Call, iterable: AsyncIterable<T>): AsyncGenerator<T> {
    const it = iterable[Symbol.asyncIterator]();
    try {
      for (;;) {
        const r = await this.around(call, () => it.next());
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }

  putIfAbsent(key: string, body: Uint8Array, options?: CallOptions): Promise<void> {
    return this.around({ op: 'put', key, up: body.length, signal: options?.signal }, () => this.inner.putIfAbsent(key, body, options));
  }

  getObject(key: string, options?: CallOptions): Promise<Buffer> {
    return this.around({ op: 'get', key, unsized: true, signal: options?.signal }, () => this.inner.getObject(key, options));
  }

  readRange(key: string, offset: number, length: number, options?: ReadRangeOptions): Promise<Buffer> {
    return this.around({ op: 'read', key, down: length, signal: options?.signal }, () => this.inner.readRange(key, offset, length, options));
  }

  head(key: string, options?: CallOptions): Promise<ObjectInfo> {
    return this.around({ op: 'head', key, signal: options?.signal }, () => this.inner.head(key, options));
  }

  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    return this.aroundEach({ op: 'list', key: prefix, signal: options?.signal }, this.inner.list(prefix, options));
  }

  deleteMany(keys: readonly string[], options?: CallOptions): Promise<void> {
    const key = keys.length === 1 ? keys[0]! : `${keys[0] ?? ''} (and ${keys.length - 1} more)`;
    return this.around({ op: 'delete', key, signal: options?.signal }, () => this.inner.deleteMany(keys, options));
  }

  createMultipartUpload(key: string, options?: CallOptions): Promise<string> {
    return this.around({ op: 'start upload', key, signal: options?.signal }, () => this.inner.createMultipartUpload(key, options));
  }

  uploadPart(key: string, uploadId: string, partNumber: number, data: Uint8Array, options: UploadPartOptions): Promise<string> {
    return this.around({ op: `upload part ${partNumber} of`, key, up: data.length, signal: options.signal }, () =>
      this.inner.uploadPart(key, uploadId, partNumber, data, options),
    );
  }

  completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[], options?: CallOptions): Promise<void> {
    return this.around({ op: 'complete upload', key, signal: options?.signal }, () =>
      this.inner.completeMultipartUpload(key, uploadId, parts, options),
    );
  }

  abortMultipartUpload(key: string, uploadId: string, options?: CallOptions): Promise<void> {
    return this.around({ op: 'abort upload', key, signal: options?.signal }, () => this.inner.abortMultipartUpload(key, uploadId, options));
  }

  listMultipartUploads(prefix: string, options?: CallOptions): AsyncIterable<PendingUpload> {
    return this.aroundEach({ op: 'list uploads', key: prefix, signal: options?.signal }, this.inner.listMultipartUploads(prefix, options));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
