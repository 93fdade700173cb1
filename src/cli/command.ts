// What every command module shares: the context main.ts hands it, the shape of its result, and the storage
// settings its S3 flags make. The command table (commands.ts) imports the modules lazily; they import this,
// never the table.
import type { Logger } from 'pino';
import { UsageError } from '../errors.ts';
import type { StorageOptions } from '../index.ts';
import type { Progress } from './progress.ts';
import { parseDuration } from './units.ts';

/** What main.ts hands a command besides its flags. */
export interface Context {
  /** Fires on the first SIGINT/SIGTERM. */
  signal: AbortSignal;
  logger: Logger;
  /** A progress bar on stderr (a no-op unless stderr is a TTY and --json is off). */
  progress(format: 'pages' | 'bytes'): Progress;
}

/** A command's outcome: `value` is what --json prints, `text` what a person reads. */
export interface CommandResult {
  value: unknown;
  text: string;
  /**
   * The command did what it could and still failed (an `ls` that met damaged objects): `text` is printed, then
   * the error, and the error decides the exit code; with --json, `value`'s fields go beside `error`.
   */
  error?: unknown;
  /** A success that is not all right (9: a snapshot published of a source that failed its check); default 0. */
  exitCode?: number;
}

export interface CommandModule {
  run(args: Record<string, unknown>, context: Context): Promise<CommandResult>;
}

/** Storage settings from the S3 flags; unset flags are left to the store's defaults and the environment. */
export function storageOptionsFrom(args: Record<string, unknown>): Pick<StorageOptions, 's3' | 'retry'> {
  const s3: NonNullable<StorageOptions['s3']> = {};
  if (typeof args.endpoint === 'string') s3.endpoint = args.endpoint;
  if (typeof args.region === 'string') s3.region = args.region;
  if (typeof args.pathStyle === 'boolean') s3.forcePathStyle = args.pathStyle;
  if (typeof args.storageClass === 'string') s3.storageClass = args.storageClass;
  if (args.sse === 'AES256' || args.sse === 'aws:kms') s3.sse = args.sse;
  if (typeof args.sseKmsKeyId === 'string') s3.kmsKeyId = args.sseKmsKeyId;
  if (args.retryBudget === undefined) return { s3 };
  const budgetMs = parseDuration(args.retryBudget as string, 'retry-budget');
  if (budgetMs <= 0) throw new UsageError('BAD_OPTION', `--retry-budget must be longer than 0, got ${JSON.stringify(String(args.retryBudget))}`);
  return { s3, retry: { budgetMs } };
}
