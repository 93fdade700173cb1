// FileStore: objects as files under a root directory (a local disk, NFS, an external disk). It keeps the same
// promises as a bucket: a reader never sees half an object (every write goes to a temp file that is fsynced,
// then renamed or linked into place), putIfAbsent is atomic (link(2) fails if the name exists), and a missing
// key is NOT_FOUND. Temp files and unfinished multipart uploads live in two reserved directories at the root.
import { createHash, randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { PagevaultError, StorageError, UsageError } from '../../errors.ts';
import type {
  CallOptions,
  CompletedPart,
  ObjectInfo,
  PendingUpload,
  ReadRangeOptions,
  ListOptions,
  StorageClient,
  UploadPartOptions,
} from '../client.ts';
import { abortedError, checkKey, checkRange, rangePastEnd, storageError } from '../errors.ts';

const tmpDirName = '.pagevault-tmp';
const uploadsDirName = '.pagevault-uploads';
const reserved = new Set([tmpDirName, uploadsDirName]);

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

  /** `root` is an absolute directory; it is created on the first write. `url` is what logs show. */
  constructor(root: string, url = `file://${root}`) {
    this.#root = root;
    this.url = url;
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

  /** Writes `chunks` to a new temp file and fsyncs it; returns its path. `signal` stops it (the file is removed). */
  async #writeTemp(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, signal: AbortSignal | undefined, what: string): Promise<string> {
    const tmp = await this.#tempFile();
    const handle = await fs.open(tmp, 'wx');
    try {
      for await (const chunk of chunks) {
        let done = 0;
        while (done < chunk.length) {
          check(signal, what);
          done += (await handle.write(chunk, done, Math.min(sliceBytes, chunk.length - done))).bytesWritten;
        }
      }
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

  async putIfAbsent(key: string, body: Uint8Array, options?: CallOptions): Promise<void> {
    const target = this.#path(key);
    check(options?.signal, `put ${key}`);
    try {
      const existing = await fs.stat(target).catch(() => undefined);
      if (existing?.isDirectory()) throw this.#pathConflict(key, key);
      if (existing) throw storageError('ALREADY_EXISTS', `put ${key}: an object already exists there in ${this.url}`);
      const tmp = await this.#writeTemp([body], options?.signal, `put ${key}`);
      await this.#publish(tmp, target, true, key);
    } catch (err) {
      if (code(err) === 'EEXIST') {
        if ((await fs.stat(target).catch(() => undefined))?.isDirectory()) throw this.#pathConflict(key, key);
        throw storageError('ALREADY_EXISTS', `put ${key}: an object already exists there in ${this.url}`, err);
      }
      this.#fail('put', key, err, options?.signal);
    }
  }

  async getObject(key: string, options?: CallOptions): Promise<Buffer> {
    const path = this.#path(key);
    check(options?.signal, `get ${key}`);
    try {
      return await fs.readFile(path, { signal: options?.signal });
    } catch (err) {
      this.#fail('get', key, err, options?.signal);
    }
  }

  async readRange(key: string, offset: number, length: number, options?: ReadRangeOptions): Promise<Buffer> {
    const path = this.#path(key);
    checkRange(key, offset, length, options?.into);
    check(options?.signal, `read ${key}`);
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
    try {
      const st = await fs.stat(path);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      return { key, size: st.size, lastModified: st.mtime };
    } catch (err) {
      this.#fail('head', key, err);
    }
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    // Start at the deepest directory the prefix names in full; filter the rest by name.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash + 1);
    if (dirKey !== '') checkKey(dirKey.slice(0, -1));
    const startAfter = options?.startAfter;
    for await (const info of this.#walk(dirKey, options?.signal)) {
      if (!info.key.startsWith(prefix)) continue;
      if (startAfter !== undefined && Buffer.compare(Buffer.from(info.key), Buffer.from(startAfter)) <= 0) continue;
      yield info;
    }
  }

  /** Files under the directory of `dirKey` ('' or ending in '/'), in ascending byte order of their keys. */
  async *#walk(dirKey: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
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
        yield* this.#walk(`${key}/`, signal);
        continue;
      }
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
    for (const [i, path] of paths.entries()) {
      check(options?.signal, `delete ${keys[i]}`);
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

  #uploadDir(uploadId: string): string {
    if (!/^[0-9a-f]{32}$/.test(uploadId)) throw storageError('NOT_FOUND', `no multipart upload ${uploadId} in ${this.url}`);
    return join(this.#root, uploadsDirName, uploadId);
  }

  async #openUpload(key: string, uploadId: string, op: string): Promise<string> {
    const dir = this.#uploadDir(uploadId);
    const stored = await fs.readFile(join(dir, 'key'), 'utf8').catch(() => undefined);
    if (stored !== key) throw storageError('NOT_FOUND', `${op} ${key}: no multipart upload ${uploadId} for this key in ${this.url}`);
    return dir;
  }

  async createMultipartUpload(key: string, options?: CallOptions): Promise<string> {
    this.#path(key);
    check(options?.signal, `start upload ${key}`);
    const uploadId = randomBytes(16).toString('hex');
    const dir = this.#uploadDir(uploadId);
    try {
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(join(dir, 'key'), key);
    } catch (err) {
      this.#fail('start upload', key, err);
    }
    return uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, data: Uint8Array, options: UploadPartOptions): Promise<string> {
    check(options.signal, `upload part ${partNumber} of ${key}`);
    const dir = await this.#openUpload(key, uploadId, `upload part ${partNumber} of`);
    const digest = createHash('md5').update(data).digest();
    if (digest.toString('base64') !== options.md5) {
      throw storageError('BAD_DIGEST', `upload part ${partNumber} of ${key}: the part does not match its Content-MD5`);
    }
    const etag = digest.toString('hex');
    try {
      const tmp = await this.#writeTemp([data], options.signal, `upload part ${partNumber} of ${key}`);
      await fs.rename(tmp, join(dir, `${partNumber}-${etag}`));
      for (const name of await fs.readdir(dir)) {
        if (name.startsWith(`${partNumber}-`) && name !== `${partNumber}-${etag}`) await fs.rm(join(dir, name), { force: true });
      }
    } catch (err) {
      this.#fail(`upload part ${partNumber} of`, key, err, options.signal);
    }
    return etag;
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[], options?: CallOptions): Promise<void> {
    const target = this.#path(key);
    check(options?.signal, `complete upload ${key}`);
    const dir = await this.#openUpload(key, uploadId, 'complete upload');
    const files = parts.map((p) => join(dir, `${p.partNumber}-${p.etag}`));
    try {
      for (const [i, f] of files.entries()) {
        await fs.access(f).catch((err) => {
          throw storageError('REJECTED', `complete upload ${key}: part ${parts[i]!.partNumber} with etag ${parts[i]!.etag} was not uploaded`, err);
        });
      }
      const tmp = await this.#writeTemp(readFiles(files), options?.signal, `complete upload ${key}`);
      await this.#publish(tmp, target, false, key);
      await fs.rm(dir, { recursive: true, force: true });
    } catch (err) {
      this.#fail('complete upload', key, err, options?.signal);
    }
  }

  async abortMultipartUpload(key: string, uploadId: string, options?: CallOptions): Promise<void> {
    check(options?.signal, `abort upload ${key}`);
    let dir;
    try {
      dir = await this.#openUpload(key, uploadId, 'abort upload');
    } catch {
      return; // unknown or already gone: nothing to do
    }
    await fs.rm(dir, { recursive: true, force: true });
  }

  async *listMultipartUploads(prefix: string, options?: CallOptions): AsyncIterable<PendingUpload> {
    check(options?.signal, `list uploads ${prefix}`);
    const root = join(this.#root, uploadsDirName);
    const ids = await fs.readdir(root).catch((err) => (code(err) === 'ENOENT' ? [] : Promise.reject(err)));
    const found: PendingUpload[] = [];
    for (const uploadId of ids) {
      const key = await fs.readFile(join(root, uploadId, 'key'), 'utf8').catch(() => undefined);
      if (key === undefined || !key.startsWith(prefix)) continue;
      const st = await fs.stat(join(root, uploadId));
      found.push({ key, uploadId, initiated: st.mtime });
    }
    found.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) || a.uploadId.localeCompare(b.uploadId));
    yield* found;
  }

  async close(): Promise<void> {}
}

async function* readFiles(paths: readonly string[]): AsyncGenerator<Buffer> {
  for (const path of paths) {
    const handle = await fs.open(path, 'r');
    try {
      for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false })) yield chunk as Buffer;
    } finally {
      await handle.close();
    }
  }
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
