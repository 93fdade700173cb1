// The storage layer's public surface: re-exports only.
export type {
  CallOptions,
  CompletedPart,
  ListOptions,
  ObjectInfo,
  PendingUpload,
  ReadRangeOptions,
  StorageClient,
  StorageErrorCode,
  StorageEvent,
  StorageEventListener,
  UploadPartOptions,
} from './client.ts';
export { transientCodes } from './client.ts';
export { isTransient } from './errors.ts';
export { FileStore } from './file/file-store.ts';
export { S3Store, resolveS3Config, type S3StoreOptions } from './s3/s3-store.ts';
export { openStorage, parseStorageUrl, redactUrl, type StorageLocation, type StorageOptions } from './registry.ts';
export { stackStorage, type StackOptions } from './stack.ts';
export { MultipartUpload, partSizeFor, type MultipartUploadOptions, type UploadResult } from './upload.ts';
export { LimitStore } from './wrappers/limit.ts';
export { RetryStore, type RetryOptions } from './wrappers/retry.ts';
export { ThrottleStore, TokenBucket, type ThrottleOptions } from './wrappers/throttle.ts';
