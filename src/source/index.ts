export { PageSource } from './page-source.ts';
export type { ConsistencyMode, PageBatch, PageSourceOptions, PageSourceResult, SourceFacts } from './page-source.ts';
export { parseHeader, readSourceHeader, type DatabaseHeader } from './validate.ts';
export type { WalCleanup } from './wal-files.ts';
