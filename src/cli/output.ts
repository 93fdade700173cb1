// Where the CLI's output goes: the result on stdout (JSON with --json, text otherwise), logs (pino) and
// errors on stderr. Errors are one line "pagevault: <message>" and perhaps a hint; --verbose adds the stack
// and the cause chain. Secrets from the environment are scrubbed from everything written to stderr.
import { pino, type Level, type Logger } from 'pino';
import { BugError, IntegrityError, PagevaultError, StorageError, UsageError } from '../errors.ts';
import { toolVersion } from '../version.ts';
import { exitCodes } from './exit-codes.ts';

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

/** With --json the value, as one line of JSON (--quiet or not: it was asked for); otherwise the text, unless --quiet. */
export function printResult(options: Pick<OutputOptions, 'json' | 'quiet'>, value: unknown, text: string): void {
  if (options.json) process.stdout.write(`${JSON.stringify(value)}\n`);
  else if (!options.quiet && text !== '') process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
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

const configCodes = new Set(['CONFIG_MISSING', 'CONFIG_DAMAGED', 'CONFIG_VERSION']);

// `command` is the command that failed ("snapshot", "restore", "ls"), when known: a hint must not send the user back to it.
function integrityHint(err: IntegrityError, command: string | undefined): string | undefined {
  // The message of a config error says what to do; ls has already listed what the vault still holds.
  if (configCodes.has(err.code)) return command === 'ls' ? undefined : '`pagevault ls` lists the snapshots the vault still holds';
  if (command === 'ls') return 'the rows marked DAMAGED cannot be restored; `pagevault restore --snapshot <id>` restores any other';
  if (command === 'restore') return 'the object named above is damaged or was altered; `pagevault ls` lists the snapshots, `--snapshot <id>` restores an earlier one';
  return 'the object named above is damaged or was altered; `pagevault ls` lists the snapshots and marks those that cannot be read';
}

/** A broken invariant is ours, not the user's: no flag will fix it. */
export function bugHint(): string {
  return `this is a bug in pagevault ${toolVersion}, not a problem with your flags or data; please report it with this message and the output of --verbose`;
}

function hintFor(err: unknown, command: string | undefined): string | undefined {
  if (err instanceof BugError) return bugHint();
  // The thrower knows best when it says (e.g. which snapshots still restore without a lost pack).
  if (err instanceof PagevaultError && err.hint) return err.hint;
  if (err instanceof StorageError) return storageHints[err.code];
  if (err instanceof UsageError) return command ? `see pagevault ${command} --help` : 'see pagevault --help';
  if (err instanceof IntegrityError) return integrityHint(err, command);
  return undefined;
}

/** The error's stable code: a PagevaultError's own, UNEXPECTED for anything else (exit code 1's errors). */
export function errorCode(err: unknown): string {
  return err instanceof PagevaultError ? err.code : 'UNEXPECTED';
}

/** The lines printed on stderr for a failed command. */
export function formatError(err: unknown, verbose: boolean, command?: string): string {
  const message = err instanceof Error ? err.message : String(err);
  const lines = [`pagevault: ${message}`];
  const hint = hintFor(err, command);
  if (hint) lines.push(`pagevault: hint: ${hint}`);
  if ((!(err instanceof PagevaultError) || err instanceof BugError) && !verbose) lines.push('pagevault: run again with --verbose for the stack trace');
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

/**
 * What --json prints on stdout for a failed command: one line, `{"error":{"code","exitCode","message","hint"}}`
 * (hint only when there is one), scrubbed as stderr is; `partial`'s fields (what the command still found) go
 * beside `error`.
 */
export function jsonError(err: unknown, exitCode: number, command: string | undefined, partial?: unknown): string {
  const hint = hintFor(err, command);
  const error = {
    // Whatever error an abort surfaced as, a signal's exit is an abort (see exitCodeFor).
    code: exitCode === exitCodes.sigint.code || exitCode === exitCodes.sigterm.code ? 'ABORTED' : errorCode(err),
    exitCode,
    message: scrub(err instanceof Error ? err.message : String(err)),
    ...(hint ? { hint: scrub(hint) } : {}),
  };
  const extra = typeof partial === 'object' && partial !== null && !Array.isArray(partial) ? partial : {};
  return `${JSON.stringify({ error, ...extra })}\n`;
}

/**
 * Rows of cells as aligned columns, numbers right-aligned. A row shorter than the header ends in a cell that
 * spans the remaining columns (a DAMAGED row): it does not widen them.
 */
export function table(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const spans = (r: unknown[], i: number) => r.length < header.length && i === r.length - 1;
  const widths = header.map((_, i) => Math.max(...all.map((r) => (i < r.length && !spans(r, i) ? r[i]!.length : 0))));
  return all
    .map((r, ri) =>
      r
        .map((cell, i) => {
          if (spans(r, i)) return cell;
          return ri > 0 && typeof rows[ri - 1]![i] === 'number' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
