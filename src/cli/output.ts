// Where the CLI's output goes: the result on stdout (JSON with --json, text otherwise), logs (pino) and
// errors on stderr. Errors are one line "pagevault: <message>" and perhaps a hint; --verbose adds the stack
// and the cause chain. Secrets from the environment are scrubbed from everything written to stderr.
import { pino, type Level, type Logger } from 'pino';
import { IntegrityError, PagevaultError, StorageError, UsageError } from '../errors.ts';

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  logLevel: string | undefined;
  /** A progress bar is showing: logs below warn would tear it. */
  progress: boolean;
}

export function logLevel(options: OutputOptions): Level | 'silent' {
  if (options.verbose) return 'debug';
  if (options.quiet) return 'error';
  if (options.logLevel) return options.logLevel as Level | 'silent';
  return options.progress ? 'warn' : 'info';
}

/** pino on stderr, written synchronously so that nothing is lost when the process exits. */
export function createLogger(options: OutputOptions): Logger {
  return pino(
    { name: 'pagevault', level: logLevel(options), base: { pid: process.pid } },
    pino.destination({ dest: 2, sync: true }),
  );
}

/** With --json the value, as one line of JSON; otherwise the text. */
export function printResult(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : text.endsWith('\n') || text === '' ? text : `${text}\n`);
}

/** Values of credential variables, which must never reach the terminal or a log file. */
function secrets(env: NodeJS.ProcessEnv): string[] {
  return ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN']
    .map((name) => env[name])
    .filter((v): v is string => typeof v === 'string' && v.length >= 4);
}

export function scrub(text: string, env: NodeJS.ProcessEnv = process.env): string {
  let out = text;
  for (const secret of secrets(env)) out = out.split(secret).join('***');
  return out;
}

const storageHints: Record<string, string> = {
  ACCESS_DENIED: 'check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance role) and the bucket policy',
  NO_SUCH_BUCKET: 'check the bucket name and --endpoint; pagevault does not create buckets',
  UNREACHABLE: 'check --endpoint (or AWS_ENDPOINT_URL_S3) and the network',
  TIMEOUT: 'check --endpoint (or AWS_ENDPOINT_URL_S3) and the network; --retry-budget bounds how long pagevault keeps trying',
  RETRIES_EXHAUSTED: 'the server kept failing; try again later, or raise --retry-budget',
};

function hintFor(err: unknown): string | undefined {
  if (err instanceof StorageError) return storageHints[err.code];
  if (err instanceof UsageError) return 'see pagevault --help';
  if (err instanceof IntegrityError) return 'the object named above is damaged or was altered; `pagevault ls` lists the snapshots, `--snapshot <id>` restores an earlier one';
  return undefined;
}

/** The lines printed for a failed command. */
export function formatError(err: unknown, verbose: boolean): string {
  const message = err instanceof Error ? err.message : String(err);
  const lines = [`pagevault: ${message}`];
  const hint = hintFor(err);
  if (hint) lines.push(`pagevault: hint: ${hint}`);
  if (!(err instanceof PagevaultError) && !verbose) lines.push('pagevault: run again with --verbose for the stack trace');
  if (verbose) {
    let e: unknown = err;
    for (let depth = 0; e !== undefined && depth < 10; depth++) {
      const stack = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
      const code = e instanceof PagevaultError ? ` [${e.code}]` : '';
      lines.push(`${depth === 0 ? '' : 'caused by: '}${stack}${code}`);
      e = e instanceof Error ? e.cause : undefined;
    }
  }
  return scrub(lines.join('\n'));
}

/** Rows of cells as aligned columns, numbers right-aligned. */
export function table(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all
    .map((r, ri) =>
      r
        .map((cell, i) => (ri > 0 && typeof rows[ri - 1]![i] === 'number' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
