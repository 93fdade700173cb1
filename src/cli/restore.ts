// `pagevault restore <url> <path>`: flags -> RestoreOptions -> restore().
import { restore, type RestoreResult } from '../index.ts';
import { storageOptionsFrom, type CommandResult, type Context } from './command.ts';
import { formatBytes, formatDuration, parseTime } from './units.ts';

export async function run(args: Record<string, unknown>, context: Context): Promise<CommandResult> {
  const progress = context.progress('bytes');
  try {
    const result = await restore({
      url: args.url as string,
      path: args.path as string,
      storageOptions: storageOptionsFrom(args),
      snapshot: args.snapshot as string | undefined,
      at: args.at === undefined ? undefined : parseTime(String(args.at), 'at'),
      force: args.force === true,
      evenIfOpen: args.evenIfOpen === true,
      ifNotExists: args.ifNotExists === true,
      ifReplicaExists: args.ifReplicaExists === true,
      quickCheck: args.quickCheck === true,
      acceptDamaged: args.acceptDamaged === true,
      signal: context.signal,
      logger: context.logger,
      onProgress: (p) => progress.update(p.bytesDownloaded, p.bytesTotal),
    });
    return { value: result, text: describe(result) };
  } finally {
    progress.stop();
  }
}

function describe(r: RestoreResult): string {
  if (r.skipped === 'target-exists') return `${r.path} exists: left as it is (--if-not-exists)`;
  if (r.skipped === 'no-snapshot') return `the vault holds no snapshot: nothing restored (--if-replica-exists)`;
  const aside = (r.movedAside ?? []).map((m) =>
    m.kept ? `\n  moved ${m.from} aside to ${m.to} (SQLite would have replayed it into the restored database)` : `\n  removed ${m.from} of the replaced database`,
  );
  return (
    `restored snapshot ${r.id} (taken ${r.createdAt}) to ${r.path}\n` +
    `  ${r.pageCount} pages of ${r.pageSize} B (${formatBytes(r.pageCount! * r.pageSize!)}), ` +
    `downloaded ${formatBytes(r.bytesDownloaded ?? 0)}, ${r.damaged ? `${r.check} FAILED (--accept-damaged)` : `${r.check} ok`}, in ${formatDuration(r.durationMs)}` +
    (r.damaged ? `\n  the database is damaged as its source was: ${r.damaged.lines[0]}\n  the check's report: ${r.damaged.report}` : '') +
    aside.join('')
  );
}
