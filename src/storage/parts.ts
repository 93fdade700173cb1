// The rules a streamed object body follows (client.ts, ObjectBody), shared by every backend so that the
// contract is one, and the part size a caller should fill its buffers to.
import { createHash } from 'node:crypto';
import { MiB, storageDefaults } from '../config/defaults.ts';
import { BugError, UsageError } from '../errors.ts';
import type { ObjectBody } from './client.ts';

/**
 * The part size for an object of about `expectedSize` bytes: `preferred` unless that would need more than
 * 10,000 parts, then the smallest whole number of MiB that fits. Throws UsageError for sizes S3 cannot hold.
 */
export function partSizeFor(expectedSize?: number, preferred: number = storageDefaults.partSize): number {
  const { minPartSize, maxPartSize, maxParts } = storageDefaults;
  if (!Number.isSafeInteger(preferred) || preferred < minPartSize || preferred > maxPartSize) {
    throw new UsageError('BAD_OPTION', `partSize must be between ${minPartSize} and ${maxPartSize} bytes, got ${preferred}`);
  }
  if (expectedSize === undefined) return preferred;
  if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
    throw new UsageError('BAD_OPTION', `expected object size must be a non-negative integer, got ${expectedSize}`);
  }
  const needed = Math.ceil(Math.ceil(expectedSize / maxParts) / MiB) * MiB;
  const size = Math.max(preferred, needed);
  if (size > maxPartSize) {
    throw new UsageError('BAD_OPTION', `an object of ${expectedSize} bytes needs parts larger than S3's ${maxPartSize}-byte limit`);
  }
  return size;
}

/** Checks each buffer of a streamed body as it arrives; throws BugError for one that breaks the rules. */
export class PartRules {
  readonly #key: string;
  #count = 0;
  #small: number | undefined;

  constructor(key: string) {
    this.#key = key;
  }

  /** Returns the part number (from 1) of `data`. */
  next(data: Uint8Array): number {
    const { minPartSize, maxPartSize, maxParts } = storageDefaults;
    if (this.#small !== undefined) {
      throw new BugError(`write ${this.#key}: part ${this.#small} was smaller than ${minPartSize} bytes, so it must be the last`);
    }
    if (data.length === 0 || data.length > maxPartSize) {
      throw new BugError(`write ${this.#key}: a part must hold 1 to ${maxPartSize} bytes, got ${data.length}`);
    }
    if (this.#count >= maxParts) throw new BugError(`write ${this.#key}: more than ${maxParts} parts; use a larger part size`);
    this.#count++;
    if (data.length < minPartSize) this.#small = this.#count;
    return this.#count;
  }
}

export function isStream(body: ObjectBody): body is AsyncIterable<Uint8Array> {
  return !(body instanceof Uint8Array);
}

/**
 * Tells a body the store will read no more of it, without waiting: a generator busy in an await (waiting for a
 * part that will never come) would hold the store's return until it yields again.
 */
export function stopBody(it: AsyncIterator<Uint8Array>): void {
  void it.return?.().catch(() => {});
}

const md5SliceBytes = MiB;

/**
 * Base64 MD5 of `data`, hashed a slice at a time with a turn of the event loop between slices: hashing an
 * 8 MiB part at once would block the loop for ~15 ms.
 */
export async function md5InSlices(data: Uint8Array): Promise<string> {
  const hash = createHash('md5');
  for (let at = 0; at < data.length; at += md5SliceBytes) {
    if (at > 0) await new Promise((resolve) => setImmediate(resolve));
    hash.update(data.subarray(at, at + md5SliceBytes));
  }
  return hash.digest('base64');
}
