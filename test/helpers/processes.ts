// Child processes for tests: a concurrent SQLite writer (test/helpers/writer.mjs) and a python3 process that
// holds a database open as an application does (test/helpers/hold.py).
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

const holderScript = fileURLToPath(new URL('./hold.py', import.meta.url));

export interface Holder {
  pid: number;
  /** Resolves once the holder has the database open and has committed its first row. */
  ready: Promise<void>;
  /** Sends one command line ("insert 5", "count") and resolves with the holder's answer line. */
  send(command: string): Promise<string>;
  /** "exit": the holder closes its connection as an application would; resolves with its exit code. */
  close(): Promise<number | null>;
  /** SIGKILL: the holder dies as a crashed application does, leaving its -wal and -shm. */
  kill(): Promise<void>;
}

/** A python3 process holding `db` open through Python's sqlite3 module (test/helpers/hold.py). */
export function startHolder(db: string, mode: 'wal' | 'delete'): Holder {
  const child = spawn('python3', [holderScript, db, mode], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const l = lines.shift();
      if (l !== undefined) return resolve(l);
      waiting.push(resolve);
      void exited.then(([code]) => reject(new Error(`holder exited with ${code}: ${stderr}`)));
    });
  return {
    pid: child.pid!,
    ready: nextLine().then((l) => {
      if (l !== 'ready') throw new Error(`holder said ${l}: ${stderr}`);
    }),
    send(command) {
      child.stdin.write(`${command}\n`);
      return nextLine();
    },
    async close() {
      child.stdin.write('exit\n');
      return (await exited)[0];
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
