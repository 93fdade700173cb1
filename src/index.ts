// pagevault's public library API: re-exports only.
export { snapshot, type SnapshotOptions, type SnapshotProgress, type SnapshotResult } from './snapshot/snapshot.ts';
export { restore, type RestoreOptions, type RestoreResult } from './restore/restore.ts';
export { listSnapshots, type DamagedSnapshot, type ListOptions, type SnapshotEntry, type SnapshotListing, type SnapshotSummary } from './list.ts';
export { prune, forget, type PruneOptions, type PruneResult, type ForgetOptions } from './lifecycle/prune.ts';
export type { CollectOptions, CollectResult, ObjectCount } from './lifecycle/gc.ts';
export { verify, type Damage, type VerifyOptions, type VerifyResult } from './lifecycle/verify.ts';
export { applyPolicy, checkPolicy, type RetentionPolicy } from './lifecycle/policy.ts';
export { PageSource } from './source/index.ts';
export type { ConsistencyMode, PageBatch, PageSourceOptions, PageSourceResult, SourceFacts } from './source/index.ts';
export { openStorage, redactUrl, type StorageClient, type StorageOptions } from './storage/index.ts';
export {
  AbortedError,
  BugError,
  ConflictError,
  IntegrityError,
  PagevaultError,
  PruneAfterSnapshotError,
  SourceError,
  StorageError,
  TargetExistsError,
  UsageError,
} from './errors.ts';
