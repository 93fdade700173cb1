// Benchmark databases are built once into .bench/ (gitignored) and reused by later runs; a build that is
// interrupted leaves only a .partial file, which the next run throws away.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = fileURLToPath(new URL('../../.bench/', import.meta.url));

/** The path of .bench/<name>, creating it with `create(path)` first if it is not there yet. */
export function cachedDatabase(name: string, create: (path: string) => void): string {
  mkdirSync(benchDir, { recursive: true });
  const path = join(benchDir, name);
  if (!existsSync(path)) {
    const partial = `${path}.partial`;
    rmSync(partial, { force: true });
    process.stderr.write(`creating ${name} (once; kept in .bench/)...\n`);
    create(partial);
    renameSync(partial, path);
  }
  return path;
}
