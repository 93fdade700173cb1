// The CLI's commands and flags, declared in one table. main.ts builds the yargs parser from it; each command's
// module is imported only when that command runs, and turns the parsed flags into options for one library call.
import type { Options, PositionalOptions } from 'yargs';
import { gcDefaults, snapshotDefaults, sourceDefaults, storageDefaults } from '../config/defaults.ts';
import type { CommandModule } from './command.ts';
import { formatBytes } from './units.ts';

export interface CommandSpec {
  /** yargs command string: name and positionals. */
  command: string;
  describe: string;
  positionals: Record<string, PositionalOptions>;
  options: Record<string, Options>;
  examples: [string, string][];
  load(): Promise<CommandModule>;
}

const url: PositionalOptions = {
  type: 'string',
  describe: 'vault URL: s3://bucket/prefix, file:///absolute/dir or file://./relative/dir',
};

/** Flags of every command. */
export const globalOptions: Record<string, Options> = {
  json: { type: 'boolean', describe: 'print one JSON result on stdout (logs stay on stderr)' },
  verbose: { type: 'boolean', alias: 'v', describe: 'debug logs; errors with their stack and causes' },
  quiet: { type: 'boolean', alias: 'q', describe: 'log errors only' },
  'log-level': {
    type: 'string',
    choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    describe: 'pino log level on stderr (default info; warn while a progress bar shows)',
  },
};

/** Flags of every command that talks to S3. Credentials come from the AWS SDK's provider chain only. */
const s3Options: Record<string, Options> = {
  endpoint: { type: 'string', group: 'S3:', describe: 'S3 endpoint URL (default AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS)' },
  region: { type: 'string', group: 'S3:', describe: `region (default AWS_REGION, the profile's, or ${storageDefaults.customEndpointRegion} for a custom endpoint)` },
  'path-style': { type: 'boolean', group: 'S3:', describe: 'path-style addressing (default on for a custom endpoint, off for AWS)' },
  'retry-budget': {
    type: 'string',
    group: 'S3:',
    describe: `how long one storage request may spend on retries before the command fails, a duration like 30s or 5m; a bare number is seconds (default ${storageDefaults.retryBudgetMs / 1000}s)`,
  },
};

const s3WriteOptions: Record<string, Options> = {
  'storage-class': { type: 'string', group: 'S3:', describe: 'storage class of new objects (STANDARD, STANDARD_IA, ...)' },
  sse: { type: 'string', group: 'S3:', choices: ['AES256', 'aws:kms'], describe: 'server-side encryption of new objects' },
  'sse-kms-key-id': { type: 'string', group: 'S3:', describe: 'KMS key for --sse aws:kms (default the bucket key)' },
};

const keep = (what: string): Options => ({ type: 'number', group: 'Retention:', describe: `keep ${what}` });

const dryRun: Options = { type: 'boolean', describe: 'print what would be forgotten and deleted, and change nothing' };

/** The retention flags of prune, and of snapshot (which prunes after publishing when one is given). */
const retentionOptions: Record<string, Options> = {
  'keep-last': keep('the N newest snapshots'),
  'keep-hourly': keep('the newest snapshot of each of the last N hours that have one'),
  'keep-daily': keep('the newest snapshot of each of the last N days that have one'),
  'keep-weekly': keep('the newest snapshot of each of the last N ISO weeks (Monday to Sunday) that have one'),
  'keep-monthly': keep('the newest snapshot of each of the last N months that have one'),
  'keep-yearly': keep('the newest snapshot of each of the last N years that have one'),
  'keep-within': { type: 'string', group: 'Retention:', describe: 'keep every snapshot taken within this long before the newest one: 90m, 36h, 7d, 2w, 1y' },
  'keep-tag': { type: 'string', array: true, group: 'Retention:', describe: 'keep every snapshot with this tag (repeatable)' },
  tz: { type: 'string', group: 'Retention:', describe: 'IANA time zone of the hour/day/week/month/year buckets (default UTC), e.g. Europe/Berlin' },
  grace: {
    type: 'string',
    group: 'Retention:',
    describe:
      `how long an unreferenced object stays before it is deleted; snapshots must finish within half of it, so give every snapshot and prune ` +
      `of a vault the same one (default ${gcDefaults.graceMs / 3_600_000}h)`,
  },
};

const size = (describe: string): Options => ({ type: 'string', group: 'Throttle:', describe: `${describe}; a size like 8MiB, 64M, 1G` });

export const commands: CommandSpec[] = [
  {
    command: 'snapshot <db> <url>',
    describe: 'snapshot a live SQLite database into a vault (only changed chunks are uploaded)',
    positionals: { db: { type: 'string', describe: 'the SQLite database file' }, url },
    options: {
      ...s3Options,
      ...s3WriteOptions,
      full: { type: 'boolean', describe: 'upload every chunk, ignoring the previous snapshot' },
      'chunk-size': size(
        `bytes per chunk, the unit of dedup (default ${formatBytes(snapshotDefaults.minChunkSize)}, doubling as the database grows past ` +
          `${formatBytes(snapshotDefaults.minChunkSize * snapshotDefaults.targetMaxChunks)}, or the previous snapshot's)`,
      ),
      'upload-concurrency': { type: 'number', group: 'Throttle:', describe: `multipart parts uploaded at once (default ${snapshotDefaults.uploadConcurrency})` },
      'part-size': size(`multipart part size (default ${formatBytes(storageDefaults.partSize)}, at least 5MiB)`),
      'max-bytes-per-second': size('upload bandwidth cap (default none)'),
      'max-bytes-in-flight': size(`part buffers, the memory bound of the upload (default ${formatBytes(snapshotDefaults.maxBytesInFlight)})`),
      'busy-timeout': {
        type: 'string',
        describe: `how long a locked source database is waited for before the snapshot fails (exit 3), a duration like 500ms, 30s or 2m; a bare number is seconds (default ${sourceDefaults.busyTimeoutMs / 1000}s)`,
      },
      'source-check': {
        type: 'string',
        choices: ['quick', 'full', 'none'],
        describe:
          `check the source while it is copied: quick = PRAGMA quick_check, full = integrity_check (default ${snapshotDefaults.sourceCheck}); ` +
          'a source that fails is still snapshotted, with a warning and exit 9',
      },
      'new-source': {
        type: 'boolean',
        describe: "accept a database other than the one the vault's snapshots are of (other path, file name, page size or application_id); it becomes the vault's source",
      },
      tag: {
        type: 'string',
        array: true,
        describe: 'a label stored with the snapshot, repeatable (--tag daily --tag before-deploy): 1-128 characters, no spaces or commas; ls shows it',
      },
      ...retentionOptions,
    },
    examples: [
      ['$0 snapshot app.db s3://backups/app --keep-hourly 24 --keep-daily 7', 'snapshot, then prune by a retention policy (exit 10 if only the prune failed)'],
      ['$0 snapshot /var/lib/app/app.db s3://backups/app', 'an incremental snapshot into a bucket'],
      ['$0 snapshot app.db file:///srv/vault --full --json', 'a full snapshot into a directory, the result as JSON'],
    ],
    load: () => import('./snapshot.ts'),
  },
  {
    command: 'restore <url> <path>',
    describe: 'restore a snapshot into a database file, verified before it is put in place',
    positionals: { url, path: { type: 'string', describe: 'where the database goes' } },
    options: {
      ...s3Options,
      snapshot: { type: 'string', describe: 'the snapshot id to restore (default the newest)' },
      at: { type: 'string', describe: 'restore the newest snapshot created at or before this ISO 8601 time with a zone (2026-11-24T01:00:00Z, 2026-11-24T02:00:00+01:00)' },
      force: { type: 'boolean', describe: 'replace an existing target (its -wal and -shm go too)' },
      'even-if-open': {
        type: 'boolean',
        describe: 'replace the target even while another process has it open (that process loses its later commits); without it that is exit 7',
      },
      'if-not-exists': { type: 'boolean', describe: 'exit 0 without touching an existing target' },
      'if-replica-exists': { type: 'boolean', describe: 'exit 0 when the vault holds no snapshot' },
      'quick-check': { type: 'boolean', describe: 'PRAGMA quick_check instead of integrity_check' },
      'accept-damaged': {
        type: 'boolean',
        describe: 'restore a snapshot whose digests verify but that fails the integrity check (its source was damaged); the report goes beside it',
      },
    },
    examples: [
      ['$0 restore s3://backups/app /var/lib/app/app.db --if-not-exists', 'restore the newest snapshot unless the database is there'],
      ['$0 restore s3://backups/app old.db --at 2026-11-24T01:00:00Z', 'the state as of a time'],
    ],
    load: () => import('./restore.ts'),
  },
  {
    command: 'ls <url>',
    describe: 'list the snapshots in a vault, oldest first',
    positionals: { url },
    options: { ...s3Options },
    examples: [['$0 ls s3://backups/app --json', 'the snapshots as a JSON array']],
    load: () => import('./ls.ts'),
  },
  {
    command: 'prune <url>',
    describe: 'forget the snapshots a retention policy does not keep, and delete what nothing references once its grace period is over',
    positionals: { url },
    options: {
      ...s3Options,
      ...retentionOptions,
      'dry-run': dryRun,
    },
    examples: [
      ['$0 prune s3://backups/app --keep-daily 7 --keep-weekly 5 --keep-monthly 12', 'a classic rotation'],
      ['$0 prune file:///srv/vault --keep-last 10 --dry-run', 'what a prune would do'],
    ],
    load: () => import('./prune.ts'),
  },
  {
    command: 'forget <url> <ids..>',
    describe: 'forget the named snapshots; their objects are deleted by a later prune once their grace period is over',
    positionals: { url, ids: { type: 'string', array: true, describe: 'snapshot ids (pagevault ls shows them)' } },
    options: {
      ...s3Options,
      grace: retentionOptions.grace!,
      'dry-run': dryRun,
    },
    examples: [['$0 forget s3://backups/app 20261124T020304123Z-9f2c41d07a', 'forget one snapshot']],
    load: () => import('./forget.ts'),
  },
  {
    command: 'verify <url>',
    describe: 'check that every snapshot is whole: manifests, extent tables and packs; with --read-data every stored chunk too',
    positionals: { url },
    options: {
      ...s3Options,
      'read-data': { type: 'boolean', describe: "download every stored chunk once and check its digest (the vault's stored bytes)" },
      'read-data-subset': { type: 'string', describe: 'read the data of this percentage of the packs, chosen at random (5, 12.5%)' },
      snapshot: { type: 'string', describe: 'verify this snapshot only' },
    },
    examples: [
      ['$0 verify s3://backups/app', 'every manifest, extent table and pack is there and whole'],
      ['$0 verify s3://backups/app --read-data-subset 5', 'and the data of a random 5% of the packs'],
    ],
    load: () => import('./verify.ts'),
  },
];
