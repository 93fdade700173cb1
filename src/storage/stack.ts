// The one place the wrappers are stacked over a backend. Order matters:
//   retry( throttle( limit( backend ) ) )
// - retry outermost: a backoff wait holds no request slot, and each attempt pays throttle and limit again;
// - throttle outside limit: a request waiting for its bandwidth does not hold one of the slots;
// - limit innermost: it counts exactly the requests on the wire.
import type { Logger } from 'pino';
import { storageDefaults } from '../config/defaults.ts';
import { componentLogger } from '../util/logger.ts';
import type { StorageClient, StorageEvent, StorageEventListener } from './client.ts';
import { LimitStore } from './wrappers/limit.ts';
import { RetryStore, type RetryOptions } from './wrappers/retry.ts';
import { ThrottleStore, type ThrottleOptions } from './wrappers/throttle.ts';

export interface StackOptions {
  /** Requests in flight at once. */
  concurrency?: number;
  retry?: Omit<RetryOptions, 'onEvent'>;
  throttle?: Omit<ThrottleOptions, 'onEvent'>;
  onEvent?: StorageEventListener;
  /** Where the wrappers' events are logged (see logStorageEvents), besides onEvent. */
  logger?: Logger;
}

export function stackStorage(backend: StorageClient, options: StackOptions = {}): StorageClient {
  const onEvent = options.logger ? logStorageEvents(options.logger, options.onEvent) : options.onEvent;
  const limited = new LimitStore(backend, options.concurrency ?? storageDefaults.concurrency);
  const throttled = new ThrottleStore(limited, { ...options.throttle, ...(onEvent ? { onEvent } : {}) });
  return new RetryStore(throttled, { ...options.retry, ...(onEvent ? { onEvent } : {}) });
}

/**
 * A listener that logs the wrappers' events as component "storage" under `logger`: a retry at info (the server
 * is failing, and the command may be slow; a failure that outlasts the retries is the command's error), the
 * rest at debug: throttling and each request's transfer. `next` gets every event too.
 */
export function logStorageEvents(logger: Logger, next?: StorageEventListener): StorageEventListener {
  const log = componentLogger(logger, 'storage');
  return (event: StorageEvent) => {
    if (event.type === 'retry') {
      const { op, key, attempt, delayMs, error } = event;
      log.info({ op, key, attempt, delayMs, err: error.message }, `retrying ${op} in ${delayMs} ms`);
    } else if (event.type === 'throttled') {
      log.debug({ op: event.op, key: event.key, waitMs: event.waitMs }, 'waiting for bandwidth (--max-bytes-per-second)');
    } else if (event.type === 'transfer') {
      log.debug({ op: event.op, key: event.key, direction: event.direction, bytes: event.bytes }, 'transferred');
    }
    next?.(event);
  };
}
