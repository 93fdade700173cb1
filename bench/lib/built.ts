// The built package (dist/, what the pagevault CLI and a library user run), for benchmarks whose figures a user
// would see: under tsx, every codec worker thread would load the TypeScript loader too (about 40 MB of RSS).
// bench/main.ts compiles dist/ before any benchmark runs, so it is never stale.
import type * as Library from '../../src/index.ts';

export const built = (await import(new URL('../../dist/index.js', import.meta.url).href)) as typeof Library;
