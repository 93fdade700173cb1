// A Target (suite.ts) on file:// vaults: each vault a directory under one temp root; objects are its files.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Target } from './suite.ts';

export function walk(dir: string, root = dir): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), root) : [relative(root, join(dir, e.name))]))
    .sort();
}

/** Objects of a file vault: its files, without the store's temp and upload directories. */
export function objects(dir: string): string[] {
  return walk(dir).filter((k) => !k.startsWith('.pagevault-'));
}

export function fileTarget(): Target {
  const root = mkdtempSync(join(tmpdir(), 'pagevault-e2e-vaults-'));
  let n = 0;
  const dirOf = (url: string) => fileURLToPath(url);
  return {
    freshUrl: async () => `file://${join(root, `vault-${n++}`)}`,
    env: {},
    storageOptions: {},
    list: async (url) => objects(dirOf(url)),
    read: (url, key) => readFile(join(dirOf(url), key)),
    write: async (url, key, data) => {
      const path = join(dirOf(url), key);
      chmodSync(path, 0o644);
      await writeFile(path, data);
    },
    stop: async () => rmSync(root, { recursive: true, force: true }),
  };
}
