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
  // A JSON reader gets the array when all is well, and { error, snapshots } when it is not.
  return error ? { value: { snapshots: listing.snapshots }, text, error } : { value: listing.snapshots, text };
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

function describe({ snapshots, configError }: SnapshotListing): string {
  const config = configError ? `DAMAGED: ${configError.message}` : '';
  if (snapshots.length === 0) return config || 'no snapshots';
  const rows = table(
    ['ID', 'CREATED', 'SOURCE', 'HOST', 'SIZE', 'PAGES', 'UPLOADED', 'NEW', 'REUSED', 'TAGS'],
    snapshots.map(row),
  );
  return config ? `${rows}\n${config}` : rows;
}

function row(s: SnapshotEntry): (string | number)[] {
  if (s.damaged !== undefined) return [s.id, `DAMAGED: ${s.damaged}`];
  return [s.id, s.createdAt, s.source ?? '-', s.hostname, formatBytes(s.size), s.pageCount, formatBytes(s.bytesUploaded), s.chunksNew, s.chunksReused, s.tags.join(',') || '-'];
}
