// runAll: a fixed number of workers pulling items from one list, the way the restore fetches its reads and a
// listing its manifests.
import { AbortedError } from '../errors.ts';

/**
 * Runs `fn` over `items` with at most `limit` at once, passing each item's index. The first failure stops new
 * work and is rethrown once the running calls have settled; an aborted `signal` stops new work with
 * AbortedError ("<what>: aborted").
 */
export async function runAll<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>, options: { signal?: AbortSignal; what: string }): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      if (options.signal?.aborted) {
        failure ??= new AbortedError(`${options.what}: aborted`, { cause: options.signal.reason });
        break;
      }
      const index = next++;
      try {
        await fn(items[index]!, index);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
