// What every command module shares: the context main.ts hands it, the shape of its result, and the storage
// settings its S3 flags make. The command table (commands.ts) imports the modules lazily; they import this,
// never the table.
import type { Logger } from 'pino';
import { UsageError } from '../errors.ts';
import type { RetentionPolicy, StorageOptions } from '../index.ts';
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

/** The retention policy of the --keep-* flags and --tz; undefined when no --keep-* flag is given. */
export function policyFrom(args: Record<string, unknown>): RetentionPolicy | undefined {
  const policy: RetentionPolicy = {};
  const counts = { keepLast: 'keep-last', keepHourly: 'keep-hourly', keepDaily: 'keep-daily', keepWeekly: 'keep-weekly', keepMonthly: 'keep-monthly', keepYearly: 'keep-yearly' } as const;
  for (const [key, flag] of Object.entries(counts) as [keyof typeof counts, string][]) {
    const n = args[key];
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new UsageError('BAD_OPTION', `--${flag} must be a whole number >= 0, got ${JSON.stringify(String(n))}`);
    policy[key] = n;
  }
  if (args.keepWithin !== undefined) policy.keepWithinMs = parseDuration(args.keepWithin as string, 'keep-within');
  if (args.keepTag !== undefined) policy.keepTags = (args.keepTag as unknown[]).map(String);
  const given = Object.keys(policy).length > 0;
  if (args.tz !== undefined) {
    if (!given) throw new UsageError('BAD_OPTION', '--tz names the zone of the --keep-hourly/daily/weekly/monthly/yearly buckets: give a --keep-* rule with it');
    policy.timeZone = String(args.tz);
  }
  return given ? policy : undefined;
}

/** --grace as milliseconds, or undefined for the default. */
export function graceFrom(args: Record<string, unknown>): number | undefined {
  return args.grace === undefined ? undefined : parseDuration(args.grace as string, 'grace');
}
