// S3Store: objects in an S3 bucket (AWS or any S3-compatible server) through @aws-sdk/client-s3. Credentials
// come only from the SDK's default provider chain (env, shared profile, SSO, web identity, instance metadata),
// unless a library caller passes its own SDK credential provider. The SDK's own retries are off (maxAttempts 1):
// retries are the retry wrapper's job, so that a part is resent from its buffer and one budget bounds the time.
//
// We do not use @aws-sdk/lib-storage's Upload here: it copies the body into parts it allocates itself, while
// pagevault fills parts from a bounded pool of reusable buffers and retries a part from the same buffer
// (see ../upload.ts). lib-storage is the baseline the storage benchmark compares against.
import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
  type S3ClientResolvedConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentityProvider, Command } from '@smithy/types';
import { storageDefaults } from '../../config/defaults.ts';
import { PagevaultError, UsageError } from '../../errors.ts';
import type {
  CallOptions,
  CompletedPart,
  ListOptions,
  ObjectInfo,
  PendingUpload,
  ReadRangeOptions,
  StorageClient,
  StorageErrorCode,
  UploadPartOptions,
} from '../client.ts';
import { abortedError, checkKey, checkRange, rangePastEnd, storageError } from '../errors.ts';
import { raceAbort } from '../../util/abort.ts';

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing '/'; '' for the whole bucket. */
  prefix?: string;
  /** Region; default: the SDK's region chain (AWS_REGION, profile), or us-east-1 for a custom endpoint. */
  region?: string;
  /** Custom endpoint URL (MinIO, Ceph radosgw, ...); default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS. */
  endpoint?: string;
  /** Path-style addressing; default: on for custom endpoints, off for AWS. */
  forcePathStyle?: boolean;
  storageClass?: StorageClass | string;
  /** Server-side encryption of new objects: 'AES256' (SSE-S3) or 'aws:kms' (SSE-KMS, with kmsKeyId or the bucket's key). */
  sse?: 'AES256' | 'aws:kms';
  kmsKeyId?: string;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Sockets kept per client; should be at least the concurrency limit. */
  maxSockets?: number;
  listPageSize?: number;
  deleteBatchSize?: number;
  /**
   * putIfAbsent first checks with HEAD (catching an existing key on servers that ignore If-None-Match), then
   * sends If-None-Match: * (atomic where the server enforces it). false skips the HEAD: only for servers known
   * to enforce conditional writes (AWS since 2024, radosgw).
   */
  checkBeforeCreate?: boolean;
  /** An SDK credential provider for library callers that manage their own; default: the SDK's provider chain. */
  credentials?: AwsCredentialIdentityProvider;
  /** Overrides the SDK's checksum calculation; default 'WHEN_REQUIRED' (see resolveS3Config). */
  requestChecksumCalculation?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
}

/** The SDK client settings for `options`, given the environment: pure, so that it can be tested alone. */
export function resolveS3Config(options: S3StoreOptions, env: NodeJS.ProcessEnv = process.env): S3ClientConfig & { custom: boolean } {
  const endpoint = options.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  let custom = false;
  if (endpoint !== undefined && endpoint !== '') {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch (err) {
      throw new UsageError('BAD_URL', `s3 endpoint is not a URL: ${JSON.stringify(endpoint)}`, { cause: err });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError('BAD_URL', `s3 endpoint must be http:// or https://, got ${url.protocol}//${url.host}`);
    }
    if (url.username || url.password) throw new UsageError('BAD_URL', `s3 endpoint must not carry credentials: ${url.protocol}//${url.host}`);
    custom = !/(^|\.)amazonaws\.com(\.cn)?$/.test(url.hostname);
  }
  const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? (custom ? storageDefaults.customEndpointRegion : undefined);
  return {
    custom,
    ...(endpoint ? { endpoint } : {}),
    ...(region ? { region } : {}),
    forcePathStyle: options.forcePathStyle ?? custom,
    // Retries are the retry wrapper's: one budget, and parts resent from their buffers.
    maxAttempts: 1,
    // Every body we send carries Content-MD5, which AWS and radosgw verify. The SDK's default (a CRC32 per
    // request) stores aws-chunked framing as data on some S3-compatible servers, and for AWS multipart uploads
    // it would have to be echoed in CompleteMultipartUpload; one integrity check, everywhere, is simpler.
    requestChecksumCalculation: options.requestChecksumCalculation ?? 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
}

function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^"|"$/g, '');
}

type SdkError = Error & { $metadata?: { httpStatusCode?: number }; code?: string; Code?: string };

const unreachable = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const connection = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

/** The StorageErrorCode for an error the SDK (or the HTTP layer under it) threw. */
export function classifyS3Error(err: unknown): StorageErrorCode {
  const e = err as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.name ?? '';
  const errno = e?.code ?? '';
  if (unreachable.has(errno)) return 'UNREACHABLE';
  if (name === 'TimeoutError' || errno === 'ETIMEDOUT' || name === 'RequestTimeout') return 'TIMEOUT';
  if (connection.has(errno) || /socket hang up|aborted|premature close/i.test(e?.message ?? '')) {
    if (status === undefined || status < 400) return 'CONNECTION';
  }
  if (name === 'NoSuchBucket') return 'NO_SUCH_BUCKET';
  if (name === 'BadDigest' || name === 'InvalidDigest') return 'BAD_DIGEST';
  if (name === 'SlowDown' || name === 'Throttling' || name === 'ThrottlingException' || status === 429) return 'THROTTLED';
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied' || status === 403) return 'ACCESS_DENIED';
  if (name === 'PreconditionFailed' || status === 412) return 'ALREADY_EXISTS';
  if (name === 'InvalidRange' || status === 416) return 'INVALID_RANGE';
  if (status === 404 || name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchUpload') return 'NOT_FOUND';
  if (status === 405 || status === 501 || name === 'NotImplemented' || name === 'MethodNotAllowed') return 'NOT_SUPPORTED';
  if (status === 503) return 'THROTTLED';
  // 409 ConditionalRequestConflict: a concurrent conditional write; AWS asks clients to retry.
  if ((status !== undefined && status >= 500) || status === 409) return 'SERVER_ERROR';
  if (status === undefined && (name === 'Error' || name === 'SyntaxError') && /XML|parse|Unexpected end/i.test(e?.message ?? '')) return 'TRUNCATED';
  return 'REJECTED';
}

export class S3Store implements StorageClient {
  readonly url: string;
  readonly #s3: S3Client;
  readonly #bucket: string;
  readonly #prefix: string; // '' or ending in '/'
  readonly #options: S3StoreOptions;
  readonly #endpoint: string;

  constructor(options: S3StoreOptions) {
    if (!/^[a-z0-9][a-z0-9.\-_]{1,254}$/i.test(options.bucket)) {
      throw new UsageError('BAD_URL', `s3 bucket name is not valid: ${JSON.stringify(options.bucket)}`);
    }
    const prefix = options.prefix ?? '';
    if (prefix !== '') checkKey(prefix);
    this.#options = options;
    this.#bucket = options.bucket;
    this.#prefix = prefix === '' ? '' : `${prefix}/`;
    this.url = `s3://${options.bucket}${prefix === '' ? '' : `/${prefix}`}`;
    const { custom: _custom, ...config } = resolveS3Config(options);
    this.#endpoint = typeof config.endpoint === 'string' ? new URL(config.endpoint).origin : 'AWS';
    const maxSockets = options.maxSockets ?? Math.max(64, storageDefaults.concurrency * 2);
    this.#s3 = new S3Client({
      ...config,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: options.connectTimeoutMs ?? storageDefaults.connectTimeoutMs,
        socketTimeout: options.idleTimeoutMs ?? storageDefaults.idleTimeoutMs,
        httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      }),
    });
    // DeleteObjects must carry Content-MD5 on older servers (radosgw 16, older MinIO); the SDK now sends only a
    // CRC32. Add the MD5 of the serialized body before signing.
    this.#s3.middlewareStack.add(
      (next, context) => async (args) => {
        const request = args.request as { headers?: Record<string, string>; body?: unknown };
        if (context.commandName === 'DeleteObjectsCommand' && request.headers && typeof request.body === 'string') {
          request.headers['content-md5'] = md5(Buffer.from(request.body)).toString('base64');
        }
        return next(args);
      },
      { step: 'build', name: 'pagevaultDeleteObjectsContentMd5' },
    );
  }

  /**
   * Sends a command, cancelled by `signal`: the SDK destroys the request when it fires. Its rejection first
   * awaits its own body writer (a 100-continue wait may last 6 s), which today ends with the destroyed
   * request; we stop waiting the moment the signal fires whatever the SDK's version does.
   */
  #send<I extends ServiceInputTypes, O extends ServiceOutputTypes>(
    command: Command<ServiceInputTypes, I, ServiceOutputTypes, O, S3ClientResolvedConfig>,
    signal: AbortSignal | undefined,
  ): Promise<O> {
    return raceAbort(this.#s3.send(command, { abortSignal: signal }), signal, `s3 ${command.constructor.name}`);
  }

  #key(key: string): string {
    checkKey(key);
    return this.#prefix + key;
  }

  /** Turns whatever the SDK threw into a StorageError naming the operation and key (never credentials). */
  #fail(op: string, key: string, err: unknown, signal?: AbortSignal): never {
    if (signal?.aborted) throw abortedError(`${op} ${key}`, signal);
    if (err instanceof PagevaultError) throw err;
    const e = err as SdkError;
    const code = classifyS3Error(err);
    const status = e?.$metadata?.httpStatusCode;
    const detail = `${e?.name && e.name !== 'Error' ? e.name : (e?.code ?? 'error')}${status ? ` (HTTP ${status})` : ''}`;
    const where = key === '' ? `in ${this.url}` : `${key} in ${this.url}`;
    const messages: Partial<Record<StorageErrorCode, string>> = {
      NOT_FOUND: `${op} ${where}: no such object`,
      NO_SUCH_BUCKET: `${op} ${where}: bucket ${this.#bucket} does not exist at ${this.#endpoint}`,
      ACCESS_DENIED: `${op} ${where}: access denied (${detail}); check the credentials the AWS SDK found (env, profile, SSO, instance role) and the bucket policy`,
      UNREACHABLE: `${op} ${where}: cannot reach ${this.#endpoint}: ${e?.message ?? detail}`,
      TIMEOUT: `${op} ${where}: ${this.#endpoint} did not answer in time`,
      NOT_SUPPORTED: `${op} ${where}: the server at ${this.#endpoint} does not support this (${detail})`,
      BAD_DIGEST: `${op} ${where}: the server rejected the body's Content-MD5 (${detail})`,
    };
    throw storageError(code, messages[code] ?? `${op} ${where}: ${detail}: ${e?.message ?? ''}`.trimEnd(), err);
  }

  #encryption(): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string; StorageClass?: StorageClass } {
    const o = this.#options;
    return {
      ...(o.sse ? { ServerSideEncryption: o.sse as ServerSideEncryption } : {}),
      ...(o.sse === 'aws:kms' && o.kmsKeyId ? { SSEKMSKeyId: o.kmsKeyId } : {}),
      ...(o.storageClass ? { StorageClass: o.storageClass as StorageClass } : {}),
    };
  }

  /** With SSE-KMS the ETag is not the MD5 of the bytes; otherwise a mismatch means the bytes changed on the way. */
  #checkEtag(what: string, etag: string | undefined, digest: Buffer): void {
    if (this.#options.sse === 'aws:kms' || etag === undefined || !/^[0-9a-f]{32}$/i.test(etag)) return;
    if (etag.toLowerCase() !== digest.toString('hex')) {
      throw storageError('BAD_DIGEST', `${what}: the server stored different bytes (etag ${etag}, expected ${digest.toString('hex')})`);
    }
  }

  async putIfAbsent(key: string, body: Uint8Array, options?: CallOptions): Promise<void> {
    const Key = this.#key(key);
    const signal = options?.signal;
    if (this.#options.checkBeforeCreate !== false) {
      const exists = await this.head(key, options).then(
        () => true,
        (err) => (err instanceof PagevaultError && err.code === 'NOT_FOUND' ? false : Promise.reject(err)),
      );
      if (exists) throw storageError('ALREADY_EXISTS', `put ${key} in ${this.url}: an object already exists there`);
    }
    const digest = md5(body);
    let etag: string | undefined;
    try {
      const out = await this.#send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key,
          Body: body,
          ContentLength: body.length,
          ContentMD5: digest.toString('base64'),
          IfNoneMatch: '*',
          ...this.#encryption(),
        }),
        signal,
      );
      etag = unquote(out.ETag);
    } catch (err) {
      if (classifyS3Error(err) === 'ALREADY_EXISTS') {
        throw storageError('ALREADY_EXISTS', `put ${key} in ${this.url}: an object already exists there`, err);
      }
      this.#fail('put', key, err, signal);
    }
    this.#checkEtag(`put ${key} in ${this.url}`, etag, digest);
  }

  async getObject(key: string, options?: CallOptions): Promise<Buffer> {
    const Key = this.#key(key);
    const signal = options?.signal;
    try {
      const out = await this.#send(new GetObjectCommand({ Bucket: this.#bucket, Key }), signal);
      const size = out.ContentLength;
      if (size === undefined) return Buffer.from(await raceAbort(out.Body!.transformToByteArray(), signal, `get ${key}`));
      return await this.#readBody(out.Body as Readable, Buffer.allocUnsafe(size), `get ${key}`, signal);
    } catch (err) {
      this.#fail('get', key, err, signal);
    }
  }

  /**
   * Copies a response body into `into`, which must be filled exactly; fewer bytes is TRUNCATED. With `extra`,
   * bytes past `into` are dropped (a server that sent more of the object than the range asked for), otherwise
   * they are an error. Reads with 'data' events, measurably cheaper than async iteration per chunk. `signal`
   * destroys the body mid-stream (the SDK's own abort listener lives only as long as its request object).
   */
  async #readBody(body: Readable, into: Buffer, what: string, signal: AbortSignal | undefined, extra = false): Promise<Buffer> {
    let onAbort: (() => void) | undefined;
    const done = await new Promise<number>((resolve, reject) => {
      let n = 0;
      if (signal) {
        onAbort = () => {
          body.destroy();
          reject(abortedError(what, signal));
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }
      body.on('data', (chunk: Buffer) => {
        if (n + chunk.length > into.length) {
          body.destroy();
          if (!extra) return reject(storageError('REJECTED', `${what} in ${this.url}: the server sent more than the ${into.length} bytes it announced`));
          chunk.copy(into, n, 0, into.length - n);
          n = into.length;
          return resolve(n);
        }
        chunk.copy(into, n);
        n += chunk.length;
      });
      body.once('end', () => resolve(n));
      body.once('error', reject);
      body.once('close', () => resolve(n)); // closed early without an error: reported as truncated below
    }).finally(() => {
      if (onAbort) signal!.removeEventListener('abort', onAbort);
    });
    if (done !== into.length) {
      throw storageError('TRUNCATED', `${what} in ${this.url}: the response ended after ${done} of ${into.length} bytes`);
    }
    return into;
  }

  async readRange(key: string, offset: number, length: number, options?: ReadRangeOptions): Promise<Buffer> {
    const Key = this.#key(key);
    checkRange(key, offset, length, options?.into);
    const signal = options?.signal;
    const target = options?.into ? options.into.subarray(0, length) : Buffer.allocUnsafe(length);
    try {
      const out = await this.#send(
        new GetObjectCommand({ Bucket: this.#bucket, Key, Range: `bytes=${offset}-${offset + length - 1}` }),
        signal,
      );
      const body = out.Body as Readable;
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(out.ContentRange ?? '');
      if (!range) {
        // The server ignored Range and sent the whole object: skip to the offset.
        body.destroy();
        const whole = await this.getObject(key, options);
        if (offset + length > whole.length) throw rangePastEnd(key, offset, length, whole.length);
        whole.copy(target, 0, offset, offset + length);
        return target;
      }
      const total = Number(range[3]);
      if (Number(range[1]) !== offset) {
        body.destroy();
        throw storageError('REJECTED', `read ${key} in ${this.url}: asked for bytes from ${offset}, got ${out.ContentRange}`);
      }
      if (out.ContentLength !== undefined && out.ContentLength < length) {
        body.destroy();
        throw rangePastEnd(key, offset, length, Number.isFinite(total) ? total : offset + out.ContentLength);
      }
      // The s3rver fork reads `bytes=0-0` as `bytes=0-`: keep what was asked for, drop the rest.
      return await this.#readBody(body, target, `read ${key}`, signal, Number(range[2]) > offset + length - 1);
    } catch (err) {
      if (classifyS3Error(err) === 'INVALID_RANGE' && !(err instanceof PagevaultError)) {
        throw storageError('INVALID_RANGE', `read ${key}: range ${offset}+${length} is past the end of the object in ${this.url}`, err);
      }
      this.#fail('read', key, err, signal);
    }
  }

  async head(key: string, options?: CallOptions): Promise<ObjectInfo> {
    const Key = this.#key(key);
    try {
      const out = await this.#send(new HeadObjectCommand({ Bucket: this.#bucket, Key }), options?.signal);
      return {
        key,
        size: out.ContentLength ?? 0,
        ...(out.ETag ? { etag: unquote(out.ETag)! } : {}),
        ...(out.LastModified ? { lastModified: out.LastModified } : {}),
      };
    } catch (err) {
      this.#fail('head', key, err, options?.signal);
    }
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    const signal = options?.signal;
    let token: string | undefined;
    const startAfter = options?.startAfter === undefined ? undefined : this.#prefix + options.startAfter;
    do {
      let page;
      try {
        page = await this.#send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#prefix + prefix,
            MaxKeys: this.#options.listPageSize ?? storageDefaults.listPageSize,
            ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
          }),
          signal,
        );
      } catch (err) {
        this.#fail('list', prefix, err, signal);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(this.#prefix)) continue;
        yield {
          key: o.Key.slice(this.#prefix.length),
          size: o.Size ?? 0,
          ...(o.ETag ? { etag: unquote(o.ETag)! } : {}),
          ...(o.LastModified ? { lastModified: o.LastModified } : {}),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token) {
        throw storageError('REJECTED', `list ${prefix} in ${this.url}: the server said the listing continues but gave no continuation token`);
      }
    } while (token);
  }

  async deleteMany(keys: readonly string[], options?: CallOptions): Promise<void> {
    const full = keys.map((k) => this.#key(k));
    const batch = this.#options.deleteBatchSize ?? storageDefaults.deleteBatchSize;
    for (let i = 0; i < full.length; i += batch) {
      const slice = full.slice(i, i + batch);
      const first = keys[i]!;
      let out;
      try {
        out = await this.#send(
          new DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: slice.map((Key) => ({ Key })), Quiet: true } }),
          options?.signal,
        );
      } catch (err) {
        this.#fail('delete', `${first} (and ${slice.length - 1} more)`, err, options?.signal);
      }
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const f = failed[0]!;
        const key = f.Key?.slice(this.#prefix.length) ?? '?';
        const code: StorageErrorCode = f.Code === 'AccessDenied' ? 'ACCESS_DENIED' : f.Code === 'SlowDown' || f.Code === 'InternalError' ? 'SERVER_ERROR' : 'REJECTED';
        throw storageError(code, `delete ${key} in ${this.url}: ${f.Code}: ${f.Message ?? ''} (${failed.length} keys not deleted)`.trimEnd());
      }
    }
  }

  async createMultipartUpload(key: string, options?: CallOptions): Promise<string> {
    const Key = this.#key(key);
    try {
      const out = await this.#send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key, ...this.#encryption() }), options?.signal);
      if (!out.UploadId) throw storageError('REJECTED', `start upload ${key} in ${this.url}: the server returned no upload id`);
      return out.UploadId;
    } catch (err) {
      this.#fail('start upload', key, err, options?.signal);
    }
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, data: Uint8Array, options: UploadPartOptions): Promise<string> {
    const Key = this.#key(key);
    const what = `upload part ${partNumber} of`;
    let etag: string | undefined;
    try {
      const out = await this.#send(
        new UploadPartCommand({
          Bucket: this.#bucket,
          Key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: data,
          ContentLength: data.length,
          ContentMD5: options.md5,
        }),
        options.signal,
      );
      etag = unquote(out.ETag);
    } catch (err) {
      this.#fail(what, key, err, options.signal);
    }
    if (!etag) throw storageError('REJECTED', `${what} ${key} in ${this.url}: the server returned no etag`);
    this.#checkEtag(`${what} ${key} in ${this.url}`, etag, Buffer.from(options.md5, 'base64'));
    return etag;
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPart[], options?: CallOptions): Promise<void> {
    const Key = this.#key(key);
    try {
      await this.#send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
        }),
        options?.signal,
      );
    } catch (err) {
      this.#fail('complete upload', key, err, options?.signal);
    }
  }

  async abortMultipartUpload(key: string, uploadId: string, options?: CallOptions): Promise<void> {
    const Key = this.#key(key);
    try {
      await this.#send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key, UploadId: uploadId }), options?.signal);
    } catch (err) {
      if (classifyS3Error(err) === 'NOT_FOUND') return; // already aborted or completed
      this.#fail('abort upload', key, err, options?.signal);
    }
  }

  async *listMultipartUploads(prefix: string, options?: CallOptions): AsyncIterable<PendingUpload> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.#send(
          new ListMultipartUploadsCommand({
            Bucket: this.#bucket,
            Prefix: this.#prefix + prefix,
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
          options?.signal,
        );
      } catch (err) {
        this.#fail('list uploads', prefix, err, options?.signal);
      }
      for (const u of page.Uploads ?? []) {
        if (!u.Key?.startsWith(this.#prefix) || !u.UploadId) continue;
        yield { key: u.Key.slice(this.#prefix.length), uploadId: u.UploadId, ...(u.Initiated ? { initiated: u.Initiated } : {}) };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (!keyMarker) throw storageError('REJECTED', `list uploads ${prefix} in ${this.url}: truncated listing without a marker`);
    }
  }

  async close(): Promise<void> {
    this.#s3.destroy();
  }
}

