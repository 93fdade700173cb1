// The vault format v2 (docs/FORMAT.md): snapshot ids, key layout, the manifest, the extent table and the
// repository config encodings.
export * from './model.ts';
export * from './ids.ts';
export * from './layout.ts';
export * from './manifest.ts';
export * from './extent-table.ts';
export * from './config.ts';
export * from './mark.ts';
