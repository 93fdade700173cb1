// `pagevault ls <url>`: flags -> ListOptions -> listSnapshots().
import { listSnapshots, type SnapshotSummary } from '../index.ts';
import { storageOptionsFrom, type CommandResult, type Context } from './commands.ts';
import { table } from './output.ts';
import { formatBytes } from './units.ts';

export async function run(args: Record<string, unknown>, context: Context): Promise<CommandResult> {
  const snapshots = await listSnapshots({ url: args.url as string, storageOptions: storageOptionsFrom(args), signal: context.signal });
  return { value: snapshots, text: describe(snapshots) };
}

function describe(snapshots: SnapshotSummary[]): string {
  if (snapshots.length === 0) return 'no snapshots';
  return table(
    ['ID', 'CREATED', 'SIZE', 'PAGES', 'UPLOADED', 'NEW', 'REUSED'],
    snapshots.map((s) => [s.id, s.createdAt, formatBytes(s.size), s.pageCount, formatBytes(s.bytesUploaded), s.chunksNew, s.chunksReused]),
  );
}
