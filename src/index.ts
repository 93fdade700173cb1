// pagevault's public library API: re-exports only.
export { snapshot, type SnapshotOptions, type SnapshotProgress, type SnapshotResult } from './snapshot/snapshot.ts';
export { restore, type RestoreOptions, type RestoreResult } from './restore/restore.ts';
export { listSnapshots, type DamagedSnapshot, type ListOptions, type SnapshotEntry, type SnapshotListing, type SnapshotSummary } from './list.ts';
export { PageSource } from './source/index.ts';
export type { ConsistencyMode, PageBatch, PageSourceOptions, PageSourceResult, SourceFacts } from './source/index.ts';
export { openStorage, redactUrl, type StorageClient, type StorageOptions } from './storage/index.ts';
export {
  AbortedError,
  BugError,
  IntegrityError,
  PagevaultError,
  SourceError,
  StorageError,
  TargetExistsError,
  UsageError,
} from './errors.ts';
