// The pagevault CLI as a child process, run from source through tsx: what a user's shell or cron would see
// (exit code, stdout, stderr), with an environment that never reaches for real AWS credentials or metadata.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

export interface CliOptions {
  /** Added to (and overriding) the base environment; an undefined value removes a variable. */
  env?: Record<string, string | undefined>;
  /** Default: the repository root. */
  cwd?: string;
  /** The child is killed (SIGKILL) after this long and the call rejects. Default 120 s. */
  timeoutMs?: number;
  /** Run as this user (by name; the test must run as root), e.g. 'nobody' for a directory it cannot write. */
  asUser?: string;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is JSON. */
  json?: any;
  durationMs: number;
}

/** The child's environment: the parent's without AWS settings or PAGEVAULT_* flags, then `extra`. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(AWS_|PAGEVAULT_)/.test(k)) env[k] = v;
  }
  Object.assign(env, {
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    // No instance metadata, no shared profile: a missing credential fails at once.
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    AWS_CONFIG_FILE: '/nonexistent',
  });
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts `pagevault args...`; the caller waits for it with `finished`. */
export function spawnCli(args: string[], options: CliOptions = {}): { child: ChildProcess; finished: Promise<CliResult> } {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', tsx, main, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.asUser ? userIds(options.asUser) : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timeoutMs = options.timeoutMs ?? 120_000;
  const finished = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pagevault ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result: CliResult = { code, signal, stdout, stderr, durationMs: Date.now() - started };
      try {
        result.json = JSON.parse(stdout);
      } catch {
        // not JSON: text output, or nothing
      }
      resolve(result);
    });
  });
  return { child, finished };
}

/** uid and gid of a local user, from `id`. */
function userIds(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Runs `pagevault args...` to completion. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, options).finished;
}

/** A short description of a run for assertion messages. */
export function describeRun(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
