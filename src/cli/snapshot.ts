// `pagevault snapshot <db> <url>`: flags -> SnapshotOptions -> snapshot().
import { resolve } from 'node:path';
import { PruneAfterSnapshotError, snapshot, type SnapshotResult } from '../index.ts';
import type { SourceCheckChoice } from '../snapshot/source-check.ts';
import type { SourceCheckRecord } from '../vault/model.ts';
import { exitCodes } from './exit-codes.ts';
import { graceFrom, policyFrom, storageOptionsFrom, type CommandResult, type Context } from './command.ts';
import { describeCollect } from './prune.ts';
import { formatBytes, formatDuration, parseDuration, parseSize } from './units.ts';

function sizeFlag(args: Record<string, unknown>, key: string, flag: string): number | undefined {
  const value = args[key];
  return value === undefined ? undefined : parseSize(value as string, flag);
}

export async function run(args: Record<string, unknown>, context: Context): Promise<CommandResult> {
  const progress = context.progress('pages');
  const concurrency = args.uploadConcurrency as number | undefined;
  const keep = policyFrom(args);
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
      ...(args.sourceCheck !== undefined ? { sourceCheck: args.sourceCheck as SourceCheckChoice } : {}),
      newSource: args.newSource === true,
      ...(args.tag !== undefined ? { tags: (args.tag as unknown[]).map(String) } : {}),
      ...(keep ? { keep } : {}),
      graceMs: graceFrom(args),
      signal: context.signal,
      logger: context.logger,
      onProgress: (p) => progress.update(p.pagesRead, p.pagesEstimated, p.bytesUploaded),
    });
    const check = result.sourceCheck;
    if (check && !check.ok) {
      // Published, and still an alarm: stderr, whatever --json and --quiet say; exit 9.
      const errors = check.errors.slice(0, 5).map((line) => `pagevault:   ${line}\n`).join('');
      const unchecked = check.errors[0]?.startsWith('the check did not complete') === true;
      const what = unchecked
        ? `could not be checked (PRAGMA ${check.kind}); snapshot ${result.id} was published unchecked`
        : `FAILED PRAGMA ${check.kind}; snapshot ${result.id} was published and holds it as it is, damage included`;
      process.stderr.write(
        `pagevault: warning: source database ${resolve(args.db as string)} ${what}:\n${errors}` +
          `pagevault: hint: repair the database (sqlite3's .recover) or restore a snapshot whose check passed (\`pagevault ls\`), then snapshot again\n`,
      );
      return { value: result, text: describe(result), exitCode: exitCodes.sourceDamaged.code };
    }
    return { value: result, text: describe(result) };
  } catch (err) {
    // The snapshot is published: say so, with its result, and let the prune's failure decide the exit code (10).
    if (err instanceof PruneAfterSnapshotError) return { value: { snapshot: err.snapshot }, text: describe(err.snapshot as SnapshotResult), error: err };
    throw err;
  } finally {
    progress.stop();
  }
}

function describe(r: SnapshotResult): string {
  const chunks = `${r.chunksNew} new, ${r.chunksReused} reused, ${r.chunksZero} zero chunks`;
  return (
    `snapshot ${r.id} in ${r.url}${r.parent ? ` (after ${r.parent})` : ' (full)'}${r.newSource ? ', a new source for this vault' : ''}\n` +
    `  ${r.pageCount} pages of ${r.pageSize} B (${formatBytes(r.pageCount * r.pageSize)}), read ${formatBytes(r.bytesRead)}, ` +
    `uploaded ${formatBytes(r.bytesUploaded)} (${chunks}) in ${formatDuration(r.durationMs)}\n` +
    `  source check: ${describeCheck(r.sourceCheck)}` +
    (r.tags.length > 0 ? `\n  tags: ${r.tags.join(', ')}` : '') +
    (r.repacked.length > 0 ? `\n  repacked: the live chunks of ${r.repacked.length} mostly dead packs were uploaded again` : '') +
    (r.prune ? `\nprune:\n${describeCollect(r.prune).replace(/^/gm, '  ')}` : '')
  );
}

function describeCheck(c: SourceCheckRecord | null): string {
  if (!c) return 'none';
  const state = c.sameState ? '' : ' (of a state a moment apart from the snapshot)';
  if (c.ok) return `PRAGMA ${c.kind} ok in ${formatDuration(c.durationMs)}${state}`;
  return `PRAGMA ${c.kind} FAILED${state}: ${c.errors[0] ?? ''}${c.errors.length > 1 ? ` (and ${c.errors.length - 1} more lines)` : ''}`;
}
