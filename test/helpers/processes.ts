// Child processes for tests: a concurrent SQLite writer (test/helpers/writer.mjs).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const writerScript = fileURLToPath(new URL('./writer.mjs', import.meta.url));

export interface WriterStats {
  commits: number;
  busy: number;
  lastId: number;
}

export interface Writer {
  /** Resolves after the writer's first commit. */
  ready: Promise<void>;
  /** SIGTERM, then the writer's own count of commits and SQLITE_BUSY failures. */
  stop(): Promise<WriterStats>;
}

export function startWriter(db: string, options: { busyTimeoutMs?: number; pauseMs?: number } = {}): Writer {
  const args = [writerScript, db, '--busy-timeout', String(options.busyTimeoutMs ?? 0), '--pause', String(options.pauseMs ?? 0)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  const ready = new Promise<void>((resolve, reject) => {
    const check = () => {
      if (stdout.includes('ready\n')) resolve();
    };
    child.stdout.on('data', check);
    void exited.then(([code]) => reject(new Error(`writer exited with ${code} before its first commit: ${stderr}`)));
  });
  return {
    ready,
    async stop() {
      child.kill('SIGTERM');
      const [code] = await exited;
      if (code !== 0) throw new Error(`writer exited with ${code}: ${stderr}`);
      const last = stdout.trim().split('\n').pop()!;
      return JSON.parse(last) as WriterStats;
    },
  };
}
