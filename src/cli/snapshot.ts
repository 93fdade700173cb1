// `pagevault snapshot <db> <url>`: flags -> SnapshotOptions -> snapshot().
import { snapshot, type SnapshotResult } from '../index.ts';
import { storageOptionsFrom, type CommandResult, type Context } from './commands.ts';
import { formatBytes, formatDuration, parseDuration, parseSize } from './units.ts';

function sizeFlag(args: Record<string, unknown>, key: string, flag: string): number | undefined {
  const value = args[key];
  return value === undefined ? undefined : parseSize(value as string, flag);
}

export async function run(args: Record<string, unknown>, context: Context): Promise<CommandResult> {
  const progress = context.progress('pages');
  const concurrency = args.uploadConcurrency as number | undefined;
  try {
    const result = await snapshot({
      source: args.db as string,
      url: args.url as string,
      storageOptions: storageOptionsFrom(args),
      full: args.full === true,
      chunkSize: sizeFlag(args, 'chunkSize', 'chunk-size'),
      uploadConcurrency: concurrency,
      partSize: sizeFlag(args, 'partSize', 'part-size'),
      maxBytesPerSecond: sizeFlag(args, 'maxBytesPerSecond', 'max-bytes-per-second'),
      maxBytesInFlight: sizeFlag(args, 'maxBytesInFlight', 'max-bytes-in-flight'),
      busyTimeoutMs: args.busyTimeout === undefined ? undefined : parseDuration(args.busyTimeout as string, 'busy-timeout'),
      signal: context.signal,
      logger: context.logger,
      onProgress: (p) => progress.update(p.pagesRead, p.pagesEstimated, p.bytesUploaded),
    });
    return { value: result, text: describe(result) };
  } finally {
    progress.stop();
  }
}

function describe(r: SnapshotResult): string {
  const chunks = `${r.chunksNew} new, ${r.chunksReused} reused, ${r.chunksZero} zero chunks`;
  return (
    `snapshot ${r.id} in ${r.url}${r.parent ? ` (after ${r.parent})` : ' (full)'}\n` +
    `  ${r.pageCount} pages of ${r.pageSize} B (${formatBytes(r.pageCount * r.pageSize)}), read ${formatBytes(r.bytesRead)}, ` +
    `uploaded ${formatBytes(r.bytesUploaded)} (${chunks}) in ${formatDuration(r.durationMs)}`
  );
}
