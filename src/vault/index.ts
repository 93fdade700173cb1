// The vault format v1 (docs/FORMAT.md): snapshot ids, key layout, manifest and repository config encodings.
export * from './model.ts';
export * from './ids.ts';
export * from './layout.ts';
export * from './manifest.ts';
export * from './config.ts';
