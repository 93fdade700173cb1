// FileStore: objects as files under a root directory (a local disk, NFS, an external disk). It keeps the same
// promises as a bucket: a reader never sees half an object (every write goes to a temp file that is fsynced,
// then renamed or linked into place), putIfAbsent is atomic (link(2) fails if the name exists), and a missing
// key is NOT_FOUND. Temp files live in a reserved directory at the root; a killed process leaves its temp file
// there, for sweepIncomplete. Each write, read, listing page and delete batch is one request to the wrappers'
// hook (client.ts), so limits, throttling and retries apply here as they do to a bucket.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { storageDefaults } from '../../config/defaults.ts';
import { PagevaultError, StorageError, UsageError } from '../../errors.ts';
import {
  request,
  type Call,
  type CallOptions,
  type IncompleteWrite,
  type ListPage,
  type ListPageOptions,
  type ObjectBody,
  type ObjectInfo,
  type PutOptions,
  type ReadRangeOptions,
  type StorageClient,
} from '../client.ts';
import { abortedError, checkKey, checkRange, rangePastEnd, storageError } from '../errors.ts';
import { isStream, PartRules, stopBody } from '../parts.ts';
import { raceAbort } from '../../util/abort.ts';

const tmpDirName = '.pagevault-tmp';
// The multipart upload directory of earlier versions: still reserved, so that no key lands in it.
const uploadsDirName = '.pagevault-uploads';
const reserved = new Set([tmpDirName, uploadsDirName]);

export interface FileStoreOptions {
  /** Keys per listPage(); default storageDefaults.listPageSize. */
  listPageSize?: number;
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function check(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(what, signal);
}

/**
 * Bytes written or read per call, with a look at the signal between calls: an aborted part stops within one
 * slice (a few ms on a local disk) instead of after its whole 8 MiB or more.
 */
const sliceBytes = 1 << 20;

export class FileStore implements StorageClient {
  readonly url: string;
  readonly #root: string;
  readonly #pageSize: number;

  /** `root` is an absolute directory; it is created on the first write. `url` is what logs show. */
  constructor(root: string, url = `file://${root}`, options: FileStoreOptions = {}) {
    this.#root = root;
    this.url = url;
    this.#pageSize = options.listPageSize ?? storageDefaults.listPageSize;
    if (!Number.isSafeInteger(this.#pageSize) || this.#pageSize < 1) {
      throw new UsageError('BAD_OPTION', `listPageSize must be a positive integer, got ${this.#pageSize}`);
    }
  }

  #request<T>(options: CallOptions | undefined, call: Omit<Call, 'signal'>, fn: () => Promise<T>): Promise<T> {
    return request(options, { ...call, signal: options?.signal }, fn);
  }

  #path(key: string): string {
    checkKey(key);
    const first = key.split('/', 1)[0]!;
    if (reserved.has(first)) throw new UsageError('BAD_KEY', `object key ${key} is inside a directory reserved by pagevault`);
    return join(this.#root, ...key.split('/'));
  }

  async #tempFile(): Promise<string> {
    const dir = join(this.#root, tmpDirName);
    await fs.mkdir(dir, { recursive: true });
    return join(dir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
  }

  /** Creates a new temp file; `fill` writes it (through `handle` and `write`), then it is fsynced. */
  async #writeTemp(signal: AbortSignal | undefined, what: string, fill: (write: (data: Uint8Array, at: number) => Promise<void>) => Promise<void>): Promise<string> {
    const tmp = await this.#tempFile();
    const handle = await fs.open(tmp, 'wx');
    try {
      // Positional writes, a slice at a time: a retried write rewrites the same bytes, and an abort stops it
      // within one slice.
      await fill(async (data, at) => {
        for (let done = 0; done < data.length; ) {
          check(signal, what);
          done += (await handle.write(data, done, Math.min(sliceBytes, data.length - done), at + done)).bytesWritten;
        }
      });
      check(signal, what);
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => {});
      await fs.rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    return tmp;
  }

  /** S3 allows objects a/b and a/b/c side by side; a filesystem cannot have a file that is also a directory. */
  #pathConflict(key: string, other: string): StorageError {
    return storageError(
      'REJECTED',
      `put ${key}: the file backend cannot store it in ${this.url}: ${other} is ${other === key ? 'a directory of other objects' : 'an object, and a file cannot also be a directory'}`,
    );
  }

  /** Moves `tmp` to `target` (creating parent directories), overwriting or, with `exclusive`, failing with EEXIST. */
  async #publish(tmp: string, target: string, exclusive: boolean, key: string): Promise<void> {
    try {
      // A concurrent deleteMany may remove an empty parent between mkdir and link: try again a few times.
      for (let attempt = 0; ; attempt++) {
        await fs.mkdir(dirname(target), { recursive: true }).catch((err) => {
          if (code(err) !== 'EEXIST' && code(err) !== 'ENOTDIR') throw err;
          const parts = key.split('/');
          throw this.#pathConflict(key, parts.slice(0, -1).join('/'));
        });
        try {
          if (exclusive) await linkExclusive(tmp, target);
          else await fs.rename(tmp, target);
          break;
        } catch (err) {
          if (code(err) !== 'ENOENT' || attempt >= 3) throw err;
        }
      }
    } finally {
      if (exclusive) await fs.rm(tmp, { force: true });
    }
    await syncDir(dirname(target));
  }

  #fail(op: string, key: string, err: unknown, signal?: AbortSignal): never {
    if (signal?.aborted) throw abortedError(`${op} ${key}`, signal);
    if (err instanceof PagevaultError) throw err;
    const c = code(err);
    if (c === 'ENOENT' || c === 'EISDIR' || c === 'ENOTDIR') throw storageError('NOT_FOUND', `${op} ${key}: no such object in ${this.url}`, err);
    if (c === 'EACCES' || c === 'EPERM' || c === 'EROFS') throw storageError('ACCESS_DENIED', `${op} ${key}: permission denied in ${this.url}`, err);
    throw storageError('REJECTED', `${op} ${key}: ${(err as Error).message}`, err);
  }

  async putObject(key: string, body: ObjectBody, options?: PutOptions): Promise<number> {
    const target = this.#path(key);
    const signal = options?.signal;
    const what = `write ${key}`;
    check(signal, what);
    if (!isStream(body)) {
      await this.#request(options, { op: 'put', key, up: body.length }, async () => {
        try {
          await this.#publish(await this.#writeTemp(signal, what, (write) => write(body, 0)), target, false, key);
        } catch (err) {
          this.#fail('put', key, err, signal);
        }
      });
      options?.onEvent?.({ type: 'part', key, partNumber: 1, bytes: body.length });
      return body.length;
    }
    const rules = new PartRules(key);
    const it = body[Symbol.asyncIterator]();
    let size = 0;
    let tmp: string | undefined;
    try {
      tmp = await this.#writeTemp(signal, what, async (write) => {
        for (;;) {
          const next = await raceAbort(it.next(), signal, what);
          if (next.done) return;
          const data = next.value;
          try {
            const partNumber = rules.next(data);
            await this.#request(options, { op: `write part ${partNumber} of`, key, up: data.length }, () => write(data, size).catch((err) => this.#fail(what, key, err, signal)));
            size += data.length;
            options?.onEvent?.({ type: 'part', key, partNumber, bytes: data.length });
          } finally {
            options?.release?.(data);
          }
        }
      });
      const written = tmp;
      await this.#request(options, { op: 'complete', key }, () => this.#publish(written, target, false, key).catch((err) => this.#fail(what, key, err, signal)));
      return size;
    } catch (err) {
      stopBody(it);
      if (tmp !== undefined) await fs.rm(tmp, { force: true });
      options?.onEvent?.({ type: 'aborted-upload', key, supported: true });
      this.#fail('write', key, err, signal);
    }
  }

  /**
   * A create whose response was lost and that is retried finds its own file: with the same bytes, it is taken
   * for ours (a manifest's or config's bytes name what they are, so another writer's equal bytes are the same
   * object).
   */
  async putIfAbsent(key: string, body: Uint8Array, options?: CallOptions): Promise<void> {
    const target = this.#path(key);
    const signal = options?.signal;
    check(signal, `put ${key}`);
    let attempt = 0;
    const exists = async (cause?: unknown): Promise<void> => {
      if ((await fs.stat(target).catch(() => undefined))?.isDirectory()) throw this.#pathConflict(key, key);
      if (attempt > 1 && (await sameBytes(target, body))) return;
      throw storageError('ALREADY_EXISTS', `put ${key}: an object already exists there in ${this.url}`, cause);
    };
    await this.#request(options, { op: 'create', key, up: body.length }, async () => {
      attempt++;
      try {
        if (await fs.stat(target).catch(() => undefined)) return await exists();
        const tmp = await this.#writeTemp(signal, `put ${key}`, (write) => write(body, 0));
        await this.#publish(tmp, target, true, key);
      } catch (err) {
        if (code(err) === 'EEXIST') return await exists(err);
        this.#fail('put', key, err, signal);
      }
    });
  }

  async getObject(key: string, options?: CallOptions): Promise<Buffer> {
    const path = this.#path(key);
    const signal = options?.signal;
    check(signal, `get ${key}`);
    return this.#request(options, { op: 'get', key, unsized: true }, async () => {
      try {
        return await fs.readFile(path, { signal });
      } catch (err) {
        this.#fail('get', key, err, signal);
      }
    });
  }

  async readRange(key: string, offset: number, length: number, options?: ReadRangeOptions): Promise<Buffer> {
    const path = this.#path(key);
    checkRange(key, offset, length, options?.into);
    check(options?.signal, `read ${key}`);
    return this.#request(options, { op: 'read', key, down: length }, () => this.#readRange(key, path, offset, length, options));
  }

  async #readRange(key: string, path: string, offset: number, length: number, options: ReadRangeOptions | undefined): Promise<Buffer> {
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(path, 'r');
      const { size } = await handle.stat();
      if (offset + length > size) throw rangePastEnd(key, offset, length, size);
      const out = options?.into ? options.into.subarray(0, length) : Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        check(options?.signal, `read ${key}`);
        const { bytesRead } = await handle.read(out, done, Math.min(sliceBytes, length - done), offset + done);
        if (bytesRead === 0) throw rangePastEnd(key, offset, length, offset + done);
        done += bytesRead;
      }
      return out;
    } catch (err) {
      return this.#fail('read', key, err, options?.signal);
    } finally {
      await handle?.close();
    }
  }

  async head(key: string, options?: CallOptions): Promise<ObjectInfo> {
    const path = this.#path(key);
    check(options?.signal, `head ${key}`);
    return this.#request(options, { op: 'head', key }, async () => {
      try {
        const st = await fs.stat(path);
        if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
        return { key, size: st.size, lastModified: st.mtime };
      } catch (err) {
        this.#fail('head', key, err);
      }
    });
  }

  /** The cursor is the last key of the previous page: a page is the next keys in byte order after it. */
  async listPage(prefix: string, options?: ListPageOptions): Promise<ListPage> {
    // Start at the deepest directory the prefix names in full; filter the rest by name.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash + 1);
    if (dirKey !== '') checkKey(dirKey.slice(0, -1));
    const after = options?.cursor ?? options?.startAfter;
    return this.#request(options, { op: 'list', key: prefix }, async () => {
      const objects: ObjectInfo[] = [];
      for await (const info of this.#walk(dirKey, after, options?.signal)) {
        if (!info.key.startsWith(prefix)) continue;
        if (after !== undefined && byteOrder(info.key, after) <= 0) continue;
        if (objects.length === this.#pageSize) return { objects, next: objects.at(-1)!.key };
        objects.push(info);
      }
      return { objects };
    });
  }

  /**
   * Files under the directory of `dirKey` ('' or ending in '/'), in ascending byte order of their keys,
   * skipping directories whose keys all sort at or before `after`.
   */
  async *#walk(dirKey: string, after: string | undefined, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
    check(signal, `list ${dirKey}`);
    let entries;
    try {
      entries = await fs.readdir(join(this.#root, ...dirKey.split('/').filter(Boolean)), { withFileTypes: true });
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return;
      this.#fail('list', dirKey, err);
    }
    // A directory's keys sort as its name followed by '/', which orders them correctly among the files.
    const named = entries
      .filter((e) => (e.isFile() || e.isDirectory()) && !(dirKey === '' && reserved.has(e.name)))
      .map((e) => ({ entry: e, sortKey: Buffer.from(e.isDirectory() ? `${e.name}/` : e.name) }))
      .sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
    for (const { entry } of named) {
      const key = dirKey + entry.name;
      if (entry.isDirectory()) {
        const dir = `${key}/`;
        if (after === undefined || after.startsWith(dir) || byteOrder(dir, after) > 0) yield* this.#walk(dir, after, signal);
        continue;
      }
      if (after !== undefined && byteOrder(key, after) <= 0) continue;
      try {
        const st = await fs.stat(join(this.#root, ...key.split('/')));
        yield { key, size: st.size, lastModified: st.mtime };
      } catch (err) {
        if (code(err) !== 'ENOENT') throw err; // deleted while listing
      }
    }
  }

  async deleteMany(keys: readonly string[], options?: CallOptions): Promise<void> {
    const paths = keys.map((k) => this.#path(k));
    const batch = storageDefaults.deleteBatchSize;
    for (let i = 0; i < paths.length; i += batch) {
      const what = keys.length - i === 1 ? keys[i]! : `${keys[i]!} (and ${Math.min(batch, keys.length - i) - 1} more)`;
      await this.#request(options, { op: 'delete', key: what }, () => this.#delete(keys.slice(i, i + batch), paths.slice(i, i + batch), options?.signal));
    }
  }

  async #delete(keys: readonly string[], paths: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    for (const [i, path] of paths.entries()) {
      check(signal, `delete ${keys[i]}`);
      try {
        await fs.unlink(path);
      } catch (err) {
        if (code(err) === 'ENOENT') continue;
        this.#fail('delete', keys[i]!, err);
      }
      // Empty directories are not objects; remove them up to the root, stopping at the first non-empty one.
      for (let dir = dirname(path); dir.length > this.#root.length; dir = dirname(dir)) {
        try {
          await fs.rmdir(dir);
        } catch {
          break;
        }
      }
    }
  }

  /** Removes temp files older than `olderThanMs`, whatever their key (a temp file does not record it). */
  async sweepIncomplete(_prefix: string, olderThanMs: number, options?: CallOptions): Promise<IncompleteWrite[]> {
    const dir = join(this.#root, tmpDirName);
    const cutoff = Date.now() - olderThanMs;
    return this.#request(options, { op: 'sweep', key: tmpDirName }, async () => {
      check(options?.signal, 'sweep temp files');
      const names = await fs.readdir(dir).catch((err) => (code(err) === 'ENOENT' ? [] : this.#fail('sweep', tmpDirName, err)));
      const swept: IncompleteWrite[] = [];
      for (const name of names) {
        const st = await fs.stat(join(dir, name)).catch(() => undefined);
        if (!st || st.mtimeMs > cutoff) continue;
        await fs.rm(join(dir, name), { force: true });
        swept.push({ started: st.mtime });
      }
      return swept;
    });
  }

  async close(): Promise<void> {}
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** True if the file at `path` holds exactly `body`. */
async function sameBytes(path: string, body: Uint8Array): Promise<boolean> {
  const existing = await fs.readFile(path).catch(() => undefined);
  return existing !== undefined && Buffer.compare(existing, body) === 0;
}

/** link(2) is atomic and fails if the name exists. Filesystems without hard links fall back to check-then-rename. */
async function linkExclusive(from: string, to: string): Promise<void> {
  try {
    await fs.link(from, to);
  } catch (err) {
    const c = code(err);
    if (c !== 'EPERM' && c !== 'ENOTSUP' && c !== 'EOPNOTSUPP' && c !== 'ENOSYS') throw err;
    try {
      await fs.access(to, constants.F_OK);
      throw Object.assign(new Error(`${to} exists`), { code: 'EEXIST' });
    } catch (e) {
      if (code(e) !== 'ENOENT') throw e;
    }
    await fs.rename(from, to);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // some filesystems cannot fsync a directory; the rename itself is still atomic
  } finally {
    await handle.close();
  }
}
