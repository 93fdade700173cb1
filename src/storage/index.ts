// The storage layer's public surface: re-exports only.
export type {
  CallOptions,
  IncompleteWrite,
  ListPage,
  ListPageOptions,
  ObjectBody,
  ObjectInfo,
  PutOptions,
  ReadRangeOptions,
  StorageClient,
  StorageErrorCode,
  StorageEvent,
  StorageEventListener,
} from './client.ts';
export { listObjects, transientCodes } from './client.ts';
export { isTransient } from './errors.ts';
export { FileStore, type FileStoreOptions } from './file/file-store.ts';
export { S3Store, resolveS3Config, type S3StoreOptions } from './s3/s3-store.ts';
export { openStorage, parseStorageUrl, redactUrl, type StorageLocation, type StorageOptions } from './registry.ts';
export { stackStorage, type StackOptions } from './stack.ts';
export { partSizeFor } from './parts.ts';
export { LimitStore } from './wrappers/limit.ts';
export { RetryStore, type RetryOptions } from './wrappers/retry.ts';
export { ThrottleStore, TokenBucket, type ThrottleOptions } from './wrappers/throttle.ts';
