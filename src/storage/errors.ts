// Helpers shared by the backends and wrappers: building StorageErrors, telling transient ones apart, and the
// key rules every backend applies the same way.
import { AbortedError, StorageError, UsageError } from '../errors.ts';
import { transientCodes, type StorageErrorCode } from './client.ts';

export function storageError(code: StorageErrorCode, message: string, cause?: unknown): StorageError {
  return new StorageError(code, message, cause === undefined ? undefined : { cause });
}

/** True for errors a retry may cure (see transientCodes). */
export function isTransient(err: unknown): boolean {
  return err instanceof StorageError && transientCodes.has(err.code);
}

export function hasCode(err: unknown, code: StorageErrorCode): boolean {
  return err instanceof StorageError && err.code === code;
}

export function abortedError(what: string, signal: AbortSignal): AbortedError {
  return new AbortedError(`${what}: aborted`, { cause: signal.reason });
}

const maxKeyBytes = 1024;

/**
 * Keys are relative, '/'-separated, without empty, '.' or '..' segments, so that they map to the same names on
 * a filesystem and in a bucket. Throws UsageError otherwise.
 */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new UsageError('BAD_KEY', 'object key must be a non-empty string');
  if (Buffer.byteLength(key) > maxKeyBytes) throw new UsageError('BAD_KEY', `object key is longer than ${maxKeyBytes} bytes: ${key.slice(0, 64)}...`);
  if (key.includes('\0')) throw new UsageError('BAD_KEY', `object key contains a NUL byte: ${JSON.stringify(key)}`);
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new UsageError('BAD_KEY', `object key has an empty, '.' or '..' segment: ${JSON.stringify(key)}`);
    }
  }
}

/** Validates a readRange request the same way in every backend. */
export function checkRange(key: string, offset: number, length: number, into: Buffer | undefined): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new UsageError('BAD_RANGE', `read ${key}: offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(length) || length < 1) throw new UsageError('BAD_RANGE', `read ${key}: length must be a positive integer, got ${length}`);
  if (into !== undefined && into.length < length) {
    throw new UsageError('BAD_RANGE', `read ${key}: buffer of ${into.length} bytes cannot hold ${length}`);
  }
}

export function rangePastEnd(key: string, offset: number, length: number, size: number): StorageError {
  return storageError('INVALID_RANGE', `read ${key}: range ${offset}+${length} is past the end of the object (${size} bytes)`);
}
