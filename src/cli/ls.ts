// `pagevault ls <url>`: flags -> ListOptions -> listSnapshots(). Every snapshot that can be read is listed;
// a damaged manifest is a DAMAGED row, a damaged repository config a line after the table, and either makes
// the command fail with the integrity code once the listing is out.
import { IntegrityError, listSnapshots, type SnapshotEntry, type SnapshotListing } from '../index.ts';
import { storageOptionsFrom, type CommandResult, type Context } from './command.ts';
import { table } from './output.ts';
import { formatBytes } from './units.ts';

export async function run(args: Record<string, unknown>, context: Context): Promise<CommandResult> {
  const url = args.url as string;
  const listing = await listSnapshots({ url, storageOptions: storageOptionsFrom(args), signal: context.signal, logger: context.logger });
  const error = damage(listing);
  const text = describe(listing);
  // A JSON reader gets { snapshots, stored, unreferenced }, and beside them `error` when something is damaged.
  const value = { snapshots: listing.snapshots, stored: listing.stored, unreferenced: listing.unreferenced };
  return error ? { value, text, error } : { value, text };
}

function damage({ snapshots, configError }: SnapshotListing): IntegrityError | undefined {
  const damaged = snapshots.filter((s) => s.damaged !== undefined);
  const manifests =
    damaged.length === 0
      ? ''
      : `${damaged.length} of ${snapshots.length} manifests cannot be read (${damaged.map((s) => s.id).join(', ')}); the others are listed`;
  if (configError) {
    return new IntegrityError(configError.code, manifests ? `${configError.message}; ${manifests}` : configError.message, { cause: configError });
  }
  return manifests ? new IntegrityError('MANIFEST_DAMAGED', manifests) : undefined;
}

function describe({ snapshots, configError, stored, unreferenced }: SnapshotListing): string {
  const config = configError ? `DAMAGED: ${configError.message}` : '';
  const totals =
    `${snapshots.length} snapshots; the vault stores ${formatBytes(stored.bytes)} in ${stored.objects} objects, ` +
    `${formatBytes(unreferenced.bytes)} of it (${unreferenced.objects} objects) referenced by no snapshot` +
    (unreferenced.objects > 0 ? ' (a prune deletes it once its grace period is over)' : '');
  if (snapshots.length === 0) return config || (stored.objects > 0 ? `no snapshots\n${totals}` : 'no snapshots');
  const rows = table(
    ['ID', 'CREATED', 'SOURCE', 'HOST', 'SIZE', 'PAGES', 'UPLOADED', 'NEW', 'REUSED', 'TAGS'],
    snapshots.map(row),
  );
  return [rows, totals, config].filter(Boolean).join('\n');
}

function row(s: SnapshotEntry): (string | number)[] {
  if (s.damaged !== undefined) return [s.id, `DAMAGED: ${s.damaged}`];
  return [s.id, s.createdAt, s.source ?? '-', s.hostname, formatBytes(s.size), s.pageCount, formatBytes(s.bytesUploaded), s.chunksNew, s.chunksReused, s.tags.join(',') || '-'];
}
