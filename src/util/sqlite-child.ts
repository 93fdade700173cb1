// The one way pagevault runs SQLite in a process of its own (the source check, the restore's integrity check):
// plain CommonJS given to `node -e`, so it needs no TypeScript loader, talking over an IPC channel. A process,
// not a worker thread, because a thread inside a PRAGMA cannot be stopped and Node's exit waits for it; a
// process is killed at once.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';

/**
 * Starts `source` with better-sqlite3's path as its first argument, then `args`. NODE_OPTIONS is dropped: it
 * may load a TypeScript loader or set heap limits meant for the parent. stderr is the parent's unless `pipe`.
 */
export function spawnSqliteChild(source: string, args: string[], options: { stderr: 'inherit' | 'pipe' }): ChildProcess {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return spawn(process.execPath, ['-e', source, sqlite, ...args], { stdio: ['ignore', 'ignore', options.stderr, 'ipc'], env });
}
