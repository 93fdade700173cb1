// S3Store: objects in an S3 bucket (AWS or any S3-compatible server) through @aws-sdk/client-s3. Credentials
// come only from the SDK's default provider chain (env, shared profile, SSO, web identity, instance metadata),
// unless a library caller passes its own SDK credential provider. The SDK's own retries are off (maxAttempts 1):
// retries are the retry wrapper's job, so that a part is resent from its buffer and one budget bounds the time.
// Every request goes through the wrappers' hook (client.ts, `around`), one request at a time.
//
// Streamed bodies go through our own multipart engine (multipart.ts), not @aws-sdk/lib-storage's Upload: Upload
// copies the caller's buffers into parts of its own (so a pool of reusable buffers no longer bounds memory),
// sends no Content-MD5, and fails the whole upload on one failed part when the SDK's retries are off. The
// measurements are in docs/DESIGN.md ("Multipart engine"); bench/storage.ts compares the two in one run.
import { createHash, randomBytes } from 'node:crypto';
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
  type HeadObjectCommandOutput,
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
  type StorageErrorCode,
} from '../client.ts';
import { abortedError, checkKey, checkRange, hasCode, rangePastEnd, storageError } from '../errors.ts';
import { isStream } from '../parts.ts';
import { raceAbort } from '../../util/abort.ts';
import { uploadMultipart, type CompletedPart, type MultipartRequests } from './multipart.ts';

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

  /** Runs one request through the wrappers' hook; `fn` must be repeatable (a retry calls it again). */
  #request<T>(options: CallOptions | undefined, call: Omit<Call, 'signal'>, fn: () => Promise<T>): Promise<T> {
    return request(options, { ...call, signal: options?.signal }, fn);
  }

  async putObject(key: string, body: ObjectBody, options?: PutOptions): Promise<number> {
    const Key = this.#key(key);
    const signal = options?.signal;
    if (isStream(body)) return uploadMultipart(key, body, this.#multipart(Key, key, options), options);
    if (body.length > storageDefaults.partSize) {
      // One large buffer: its slices are the parts, without a copy.
      const partSize = storageDefaults.partSize;
      const slices = async function* (): AsyncGenerator<Uint8Array> {
        for (let at = 0; at < body.length; at += partSize) yield body.subarray(at, at + partSize);
      };
      return uploadMultipart(key, slices(), this.#multipart(Key, key, options), { ...options, release: () => {} });
    }
    await this.#putOnce(Key, key, body, {}, options);
    options?.onEvent?.({ type: 'part', key, partNumber: 1, bytes: body.length });
    return body.length;
  }

  /** One PutObject with Content-MD5, checked against the returned entity tag. */
  async #putOnce(Key: string, key: string, body: Uint8Array, extra: { IfNoneMatch?: string; Metadata?: Record<string, string> }, options: CallOptions | undefined): Promise<void> {
    const digest = md5(body);
    const signal = options?.signal;
    const out = await this.#request(options, { op: 'put', key, up: body.length }, async () => {
      try {
        return await this.#send(
          new PutObjectCommand({ Bucket: this.#bucket, Key, Body: body, ContentLength: body.length, ContentMD5: digest.toString('base64'), ...extra, ...this.#encryption() }),
          signal,
        );
      } catch (err) {
        if (extra.IfNoneMatch && classifyS3Error(err) === 'ALREADY_EXISTS') throw this.#exists(key, err);
        this.#fail('put', key, err, signal);
      }
    });
    this.#checkEtag(`put ${key} in ${this.url}`, unquote(out.ETag), digest);
  }

  #exists(key: string, cause?: unknown): Error {
    return storageError('ALREADY_EXISTS', `put ${key} in ${this.url}: an object already exists there`, cause);
  }

  /** The requests of a multipart upload of `key`, each through the hook; the upload carries a write token. */
  #multipart(Key: string, key: string, options: PutOptions | undefined): MultipartRequests {
    const Bucket = this.#bucket;
    const token = writeToken();
    return {
      create: () =>
        this.#request(options, { op: 'start upload', key }, async () => {
          try {
            const out = await this.#send(new CreateMultipartUploadCommand({ Bucket, Key, Metadata: { [tokenName]: token }, ...this.#encryption() }), undefined);
            if (!out.UploadId) throw storageError('REJECTED', `start upload ${key} in ${this.url}: the server returned no upload id`);
            return out.UploadId;
          } catch (err) {
            this.#fail('start upload', key, err);
          }
        }),
      part: (UploadId, PartNumber, data, ContentMD5, signal) => {
        const what = `upload part ${PartNumber} of`;
        return this.#request({ ...options, signal }, { op: what, key, up: data.length }, async () => {
          let etag: string | undefined;
          try {
            const out = await this.#send(
              new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: data, ContentLength: data.length, ContentMD5 }),
              signal,
            );
            etag = unquote(out.ETag);
          } catch (err) {
            this.#fail(what, key, err, signal);
          }
          if (!etag) throw storageError('REJECTED', `${what} ${key} in ${this.url}: the server returned no etag`);
          this.#checkEtag(`${what} ${key} in ${this.url}`, etag, Buffer.from(ContentMD5, 'base64'));
          return etag;
        });
      },
      complete: (UploadId, parts, signal) => {
        let attempt = 0;
        return this.#request({ ...options, signal }, { op: 'complete upload', key }, async () => {
          attempt++;
          try {
            await this.#send(
              new CompleteMultipartUploadCommand({
                Bucket,
                Key,
                UploadId,
                MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
              }),
              signal,
            );
          } catch (err) {
            // A retried completion whose first response was lost finds no upload: done if the object is ours.
            if (attempt > 1 && classifyS3Error(err) === 'NOT_FOUND' && (await this.#writtenBy(Key, key, token, signal))) return;
            this.#fail('complete upload', key, err, signal);
          }
        });
      },
      abort: (UploadId, signal) => this.#abortUpload(Key, key, UploadId, { ...options, signal }),
      empty: (signal) => this.#putOnce(Key, key, new Uint8Array(0), {}, { ...options, ...(signal ? { signal } : {}) }),
    };
  }

  #abortUpload(Key: string, key: string, UploadId: string, options: CallOptions): Promise<void> {
    return this.#request(options, { op: 'abort upload', key }, async () => {
      try {
        await this.#send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key, UploadId }), options.signal);
      } catch (err) {
        if (classifyS3Error(err) === 'NOT_FOUND') return; // already aborted or completed
        this.#fail('abort upload', key, err, options.signal);
      }
    });
  }

  /**
   * True if the object at `key` carries `token`: it is the write that token was made for. Called from inside a
   * request the hook already runs, so its HEAD goes straight to the server (through the hook it would wait for
   * a second slot of the limit while holding one).
   */
  async #writtenBy(Key: string, key: string, token: string, signal: AbortSignal | undefined): Promise<boolean> {
    const out = await this.#headObject(Key, key, { ...(signal ? { signal } : {}) }).catch((err) => (hasCode(err, 'NOT_FOUND') ? undefined : Promise.reject(err)));
    return out?.Metadata?.[tokenName] === token;
  }

  async putIfAbsent(key: string, body: Uint8Array, options?: CallOptions): Promise<void> {
    const Key = this.#key(key);
    // The token tells our own earlier write apart from another's when a retried create finds the key taken:
    // the entity tag cannot (it is not the MD5 under SSE-KMS, nor for every server).
    // A create is one request to the wrappers: its HEADs and its PUT go to the server within one slot.
    const token = writeToken();
    const signal = options?.signal;
    let attempt = 0;
    const ours = async (cause?: unknown): Promise<void> => {
      if (attempt > 1 && (await this.#writtenBy(Key, key, token, signal))) return;
      throw this.#exists(key, cause);
    };
    await this.#request(options, { op: 'create', key, up: body.length }, async () => {
      attempt++;
      if (this.#options.checkBeforeCreate !== false) {
        const existing = await this.#headObject(Key, key, { ...(signal ? { signal } : {}) }).catch((err) =>
          hasCode(err, 'NOT_FOUND') ? undefined : Promise.reject(err),
        );
        if (existing) return ours();
      }
      try {
        await this.#putOnce(Key, key, body, { IfNoneMatch: '*', Metadata: { [tokenName]: token } }, { ...(signal ? { signal } : {}) });
      } catch (err) {
        if (!hasCode(err, 'ALREADY_EXISTS')) throw err;
        await ours(err);
      }
    });
  }

  async getObject(key: string, options?: CallOptions): Promise<Buffer> {
    const Key = this.#key(key);
    const signal = options?.signal;
    return this.#request(options, { op: 'get', key, unsized: true }, async () => {
      try {
        const out = await this.#send(new GetObjectCommand({ Bucket: this.#bucket, Key }), signal);
        const size = out.ContentLength;
        if (size === undefined) return Buffer.from(await raceAbort(out.Body!.transformToByteArray(), signal, `get ${key}`));
        return await this.#readBody(out.Body as Readable, Buffer.allocUnsafe(size), `get ${key}`, signal);
      } catch (err) {
        this.#fail('get', key, err, signal);
      }
    });
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
    return this.#request(options, { op: 'read', key, down: length }, async () => {
      try {
        const out = await this.#send(
          new GetObjectCommand({ Bucket: this.#bucket, Key, Range: `bytes=${offset}-${offset + length - 1}` }),
          signal,
        );
        const body = out.Body as Readable;
        const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(out.ContentRange ?? '');
        if (!range) {
          // The server ignored Range and is sending the whole object, which may be gigabytes: refuse it.
          body.destroy();
          const size = out.ContentLength;
          if (size !== undefined && offset + length > size) throw rangePastEnd(key, offset, length, size);
          throw storageError(
            'NOT_SUPPORTED',
            `read ${key} in ${this.url}: the server ignored the Range header and answered with the whole object${size === undefined ? '' : ` (${size} bytes)`}; pagevault needs ranged reads`,
          );
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
    });
  }

  #headObject(Key: string, key: string, options: CallOptions | undefined): Promise<HeadObjectCommandOutput> {
    return this.#request(options, { op: 'head', key }, async () => {
      try {
        return await this.#send(new HeadObjectCommand({ Bucket: this.#bucket, Key }), options?.signal);
      } catch (err) {
        this.#fail('head', key, err, options?.signal);
      }
    });
  }

  async head(key: string, options?: CallOptions): Promise<ObjectInfo> {
    const out = await this.#headObject(this.#key(key), key, options);
    return {
      key,
      size: out.ContentLength ?? 0,
      ...(out.ETag ? { etag: unquote(out.ETag)! } : {}),
      ...(out.LastModified ? { lastModified: out.LastModified } : {}),
    };
  }

  async listPage(prefix: string, options?: ListPageOptions): Promise<ListPage> {
    const signal = options?.signal;
    const cursor = options?.cursor;
    const startAfter = options?.startAfter === undefined ? undefined : this.#prefix + options.startAfter;
    const page = await this.#request(options, { op: 'list', key: prefix }, async () => {
      try {
        return await this.#send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#prefix + prefix,
            MaxKeys: this.#options.listPageSize ?? storageDefaults.listPageSize,
            ...(cursor !== undefined ? { ContinuationToken: cursor } : startAfter ? { StartAfter: startAfter } : {}),
          }),
          signal,
        );
      } catch (err) {
        this.#fail('list', prefix, err, signal);
      }
    });
    const objects: ObjectInfo[] = [];
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined || !o.Key.startsWith(this.#prefix)) continue;
      objects.push({
        key: o.Key.slice(this.#prefix.length),
        size: o.Size ?? 0,
        ...(o.ETag ? { etag: unquote(o.ETag)! } : {}),
        ...(o.LastModified ? { lastModified: o.LastModified } : {}),
      });
    }
    if (!page.IsTruncated) return { objects };
    if (!page.NextContinuationToken) {
      throw storageError('REJECTED', `list ${prefix} in ${this.url}: the server said the listing continues but gave no continuation token`);
    }
    return { objects, next: page.NextContinuationToken };
  }

  async deleteMany(keys: readonly string[], options?: CallOptions): Promise<void> {
    const full = keys.map((k) => this.#key(k));
    const batch = this.#options.deleteBatchSize ?? storageDefaults.deleteBatchSize;
    const signal = options?.signal;
    for (let i = 0; i < full.length; i += batch) {
      const slice = full.slice(i, i + batch);
      const what = slice.length === 1 ? keys[i]! : `${keys[i]!} (and ${slice.length - 1} more)`;
      const out = await this.#request(options, { op: 'delete', key: what }, async () => {
        try {
          return await this.#send(new DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: slice.map((Key) => ({ Key })), Quiet: true } }), signal);
        } catch (err) {
          this.#fail('delete', what, err, signal);
        }
      });
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const f = failed[0]!;
        const key = f.Key?.slice(this.#prefix.length) ?? '?';
        const code: StorageErrorCode = f.Code === 'AccessDenied' ? 'ACCESS_DENIED' : f.Code === 'SlowDown' || f.Code === 'InternalError' ? 'SERVER_ERROR' : 'REJECTED';
        throw storageError(code, `delete ${key} in ${this.url}: ${f.Code}: ${f.Message ?? ''} (${failed.length} keys not deleted)`.trimEnd());
      }
    }
  }

  /** Aborts the multipart uploads under `prefix` started more than `olderThanMs` ago (see StorageClient). */
  async sweepIncomplete(prefix: string, olderThanMs: number, options?: CallOptions): Promise<IncompleteWrite[]> {
    const cutoff = Date.now() - olderThanMs;
    const signal = options?.signal;
    const swept: IncompleteWrite[] = [];
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const page = await this.#request(options, { op: 'list uploads', key: prefix }, async () => {
        try {
          return await this.#send(new ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: this.#prefix + prefix, ...markers }), signal);
        } catch (err) {
          this.#fail('list uploads', prefix, err, signal);
        }
      });
      for (const u of page.Uploads ?? []) {
        if (!u.Key?.startsWith(this.#prefix) || !u.UploadId || !u.Initiated || u.Initiated.getTime() > cutoff) continue;
        const key = u.Key.slice(this.#prefix.length);
        await this.#abortUpload(u.Key, key, u.UploadId, options ?? {});
        swept.push({ key, started: u.Initiated });
      }
      if (!page.IsTruncated) return swept;
      if (!page.NextKeyMarker) throw storageError('REJECTED', `list uploads ${prefix} in ${this.url}: truncated listing without a marker`);
      markers = { KeyMarker: page.NextKeyMarker, ...(page.NextUploadIdMarker ? { UploadIdMarker: page.NextUploadIdMarker } : {}) };
    }
  }

  async close(): Promise<void> {
    this.#s3.destroy();
  }
}

/** The object metadata (x-amz-meta-pagevault-write) that names the write an object came from. */
const tokenName = 'pagevault-write';

function writeToken(): string {
  return randomBytes(12).toString('hex');
}
