// `pagevault prune <url>`: the --keep-* flags -> a RetentionPolicy -> prune(). The text says what was kept
// (and why), forgotten, deleted and still waiting; --json prints the PruneResult.
import { prune, UsageError, type CollectResult, type PruneResult } from '../index.ts';
import { graceFrom, policyFrom, storageOptionsFrom, type CommandResult, type Context } from './command.ts';
import { table } from './output.ts';
import { formatBytes, formatDuration } from './units.ts';

export async function run(args: Record<string, unknown>, context: Context): Promise<CommandResult> {
  const policy = policyFrom(args);
  if (!policy) {
    throw new UsageError(
      'NO_POLICY',
      'prune needs at least one --keep-* rule (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within or --keep-tag); it never forgets every snapshot',
    );
  }
  const result = await prune({
    url: args.url as string,
    storageOptions: storageOptionsFrom(args),
    policy,
    graceMs: graceFrom(args),
    dryRun: args.dryRun === true,
    signal: context.signal,
    logger: context.logger,
  });
  return { value: result, text: describePrune(result) };
}

export function describePrune(r: PruneResult): string {
  const rows = table(
    ['ID', r.dryRun ? 'WOULD' : 'DONE', 'KEPT BY'],
    r.decisions.map((d) => [d.id, d.keep ? 'keep' : 'forget', d.reasons.join(',') || '-']),
  );
  return `${r.decisions.length > 0 ? `${rows}\n` : ''}${describeCollect(r)}`;
}

/** What a prune or a forget did, in a few lines. */
export function describeCollect(r: CollectResult): string {
  const would = r.dryRun ? 'would ' : '';
  const lines = [
    `${r.dryRun ? 'dry run: nothing was changed; ' : ''}${r.url}: kept ${r.kept.length} snapshots, ${would}${r.dryRun ? 'forget' : 'forgot'} ${r.forgotten.length}` +
      (r.forgotten.length > 0 && r.forgotten.length <= 10 ? ` (${r.forgotten.join(', ')})` : ''),
    `  ${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted.objects} objects (${formatBytes(r.deleted.bytes)}); ` +
      `${r.waiting.objects} unreferenced objects (${formatBytes(r.waiting.bytes)}) wait for their grace period of ${formatDuration(r.graceMs)}` +
      (r.waiting.nextAt ? `, the first until ${r.waiting.nextAt}` : ''),
    `  the vault holds ${r.stored.objects} objects (${formatBytes(r.stored.bytes)}); ${r.requests.total} requests` +
      (r.abortedUploads > 0 ? `; aborted ${r.abortedUploads} stale multipart uploads` : ''),
  ];
  if (r.deletionBlocked) lines.push(`  deleted nothing: ${r.deletionBlocked}`);
  return lines.join('\n');
}
