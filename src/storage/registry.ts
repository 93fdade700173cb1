// Storage URLs: which backend serves which scheme, how URLs are parsed, and how they are scrubbed before they
// reach a log or an error message. Backends are listed here, in one table, not registered by side effect.
import { isAbsolute, resolve } from 'node:path';
import { UsageError } from '../errors.ts';
import type { StorageClient } from './client.ts';
import { checkKey } from './errors.ts';
import { FileStore } from './file/file-store.ts';
import { S3Store, type S3StoreOptions } from './s3/s3-store.ts';
import { stackStorage, type StackOptions } from './stack.ts';

export type StorageLocation = { scheme: 's3'; bucket: string; prefix: string } | { scheme: 'file'; path: string };

export interface StorageOptions extends StackOptions {
  /** S3 settings (region, endpoint, path style, storage class, SSE, timeouts); bucket and prefix come from the URL. */
  s3?: Omit<S3StoreOptions, 'bucket' | 'prefix'>;
  /** Directory relative file:// URLs are resolved against; default process.cwd(). */
  cwd?: string;
}

const backends: Record<StorageLocation['scheme'], (location: never, url: string, options: StorageOptions) => StorageClient> = {
  s3: (l: Extract<StorageLocation, { scheme: 's3' }>, _url, options) =>
    new S3Store({ ...options.s3, bucket: l.bucket, prefix: l.prefix }),
  file: (l: Extract<StorageLocation, { scheme: 'file' }>, url) => new FileStore(l.path, url),
};

const secretParam = /sig|secret|token|key|credential|password|auth/i;

/** `url` with any user info and secret-looking query values replaced by '***': safe to log. */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*@)?([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url);
  if (!m) return url.replace(/:\/\/[^/@]*@/, '://***@');
  const query = m[4]
    ?.slice(1)
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      return eq > 0 && secretParam.test(kv.slice(0, eq)) ? `${kv.slice(0, eq)}=***` : kv;
    })
    .join('&');
  return `${m[1]}${m[2] ? '***@' : ''}${m[3]}${query !== undefined ? `?${query}` : ''}${m[5] ?? ''}`;
}

const usage = 'storage URLs look like s3://bucket/prefix, file:///absolute/dir or file://./relative/dir';

/** Parses a storage URL. Throws UsageError (code BAD_URL) with the redacted URL for anything else. */
export function parseStorageUrl(url: string, cwd: string = process.cwd()): StorageLocation {
  if (typeof url !== 'string') throw new UsageError('BAD_URL', `storage URL must be a string; ${usage}`);
  const shown = redactUrl(url);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new UsageError('BAD_URL', `not a storage URL: ${JSON.stringify(shown)}; ${usage}`);
  const rest = url.slice(scheme.length + 3);
  if (scheme === 's3') {
    if (/[?#]/.test(rest)) throw new UsageError('BAD_URL', `s3 URL must not have a query or fragment: ${shown}`);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (bucket.includes('@') || bucket.includes(':')) {
      throw new UsageError('BAD_URL', `s3 URL must not carry credentials or a port: ${shown}; credentials come from the AWS SDK's provider chain, the endpoint from --endpoint or AWS_ENDPOINT_URL_S3`);
    }
    if (!/^[a-z0-9][a-z0-9.\-_]{1,254}$/i.test(bucket)) throw new UsageError('BAD_URL', `s3 URL has no valid bucket name: ${shown}; ${usage}`);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
    if (prefix !== '') {
      try {
        checkKey(prefix);
      } catch (err) {
        throw new UsageError('BAD_URL', `s3 URL has an invalid prefix: ${shown}`, { cause: err });
      }
    }
    return { scheme, bucket, prefix };
  }
  if (scheme === 'file') {
    let path = rest.startsWith('localhost/') ? rest.slice('localhost'.length) : rest;
    if (path === '.' || path.startsWith('./') || path.startsWith('../') || path === '..') path = resolve(cwd, path);
    else if (!isAbsolute(path)) {
      throw new UsageError('BAD_URL', `file URL needs an absolute path (file:///var/backups) or a relative one (file://./backups): ${shown}`);
    }
    try {
      path = decodeURIComponent(path);
    } catch (err) {
      throw new UsageError('BAD_URL', `file URL has a malformed %-escape: ${shown}`, { cause: err });
    }
    path = path.length > 1 ? path.replace(/\/+$/, '') : path;
    return { scheme, path };
  }
  throw new UsageError('BAD_URL', `unsupported storage scheme ${scheme}:// in ${shown}; ${usage}`);
}

/**
 * Opens the storage at `url` with the retry, throttle and limit wrappers stacked over its backend
 * (see stack.ts). The client's `url` is the redacted form.
 */
export function openStorage(url: string, options: StorageOptions = {}): StorageClient {
  const location = parseStorageUrl(url, options.cwd);
  const backend = backends[location.scheme](location as never, redactUrl(url), options);
  return stackStorage(backend, options);
}
