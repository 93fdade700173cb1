// pagevault's public library API: re-exports only.
export { PageSource } from './source/index.ts';
export type { ConsistencyMode, PageBatch, PageSourceOptions, PageSourceResult, SourceFacts } from './source/index.ts';
export {
  AbortedError,
  IntegrityError,
  PagevaultError,
  SourceError,
  StorageError,
  TargetExistsError,
  UsageError,
} from './errors.ts';
