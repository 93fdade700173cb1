// The one place the wrappers are stacked over a backend. Order matters:
//   retry( throttle( limit( backend ) ) )
// - retry outermost: a backoff wait holds no request slot, and each attempt pays throttle and limit again;
// - throttle outside limit: a request waiting for its bandwidth does not hold one of the slots;
// - limit innermost: it counts exactly the requests on the wire.
import { storageDefaults } from '../config/defaults.ts';
import type { StorageClient, StorageEventListener } from './client.ts';
import { LimitStore } from './wrappers/limit.ts';
import { RetryStore, type RetryOptions } from './wrappers/retry.ts';
import { ThrottleStore, type ThrottleOptions } from './wrappers/throttle.ts';

export interface StackOptions {
  /** Requests in flight at once. */
  concurrency?: number;
  retry?: Omit<RetryOptions, 'onEvent'>;
  throttle?: Omit<ThrottleOptions, 'onEvent'>;
  onEvent?: StorageEventListener;
}

export function stackStorage(backend: StorageClient, options: StackOptions = {}): StorageClient {
  const onEvent = options.onEvent;
  const limited = new LimitStore(backend, options.concurrency ?? storageDefaults.concurrency);
  const throttled = new ThrottleStore(limited, { ...options.throttle, ...(onEvent ? { onEvent } : {}) });
  return new RetryStore(throttled, { ...options.retry, ...(onEvent ? { onEvent } : {}) });
}
