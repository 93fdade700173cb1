// Cancelling a promise we cannot cancel ourselves: an SDK call whose own abort handling waits for the request
// body to finish writing, a stream read, a wait for an id. The caller stops waiting the moment the signal
// fires; the underlying work is told to stop by whoever owns it, and its late outcome is dropped.
import { AbortedError } from '../errors.ts';

/**
 * Settles like `promise`, or rejects with AbortedError ("<what>: aborted", the signal's reason as cause) as
 * soon as `signal` fires, whichever comes first. A later rejection of `promise` is swallowed.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
