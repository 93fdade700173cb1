// `pagevault verify <url>`: flags -> VerifyOptions -> verify(). Clean is exit 0; any damage is listed (each
// object, what is wrong, the snapshots it breaks) and exits 5 (IntegrityError VAULT_DAMAGED).
import { IntegrityError, UsageError, verify, type VerifyResult } from '../index.ts';
import { storageOptionsFrom, type CommandResult, type Context } from './command.ts';
import { formatBytes, formatDuration } from './units.ts';

export async function run(args: Record<string, unknown>, context: Context): Promise<CommandResult> {
  const subset = args.readDataSubset;
  let readDataSubset: number | undefined;
  if (subset !== undefined) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(String(subset));
    readDataSubset = m ? Number(m[1]) : NaN;
    if (!(readDataSubset > 0 && readDataSubset <= 100)) throw new UsageError('BAD_OPTION', `--read-data-subset must be a percentage above 0 and at most 100 (5, 5%, 12.5), got ${JSON.stringify(String(subset))}`);
  }
  const progress = context.progress('bytes');
  try {
    const result = await verify({
      url: args.url as string,
      storageOptions: storageOptionsFrom(args),
      readData: args.readData === true,
      ...(readDataSubset !== undefined ? { readDataSubset } : {}),
      ...(args.snapshot !== undefined ? { snapshot: String(args.snapshot) } : {}),
      signal: context.signal,
      logger: context.logger,
      onProgress: (p) => progress.update(p.packsRead, p.packsToRead, p.bytesRead),
    });
    const text = describe(result);
    if (result.ok) return { value: result, text };
    const error = new IntegrityError(
      'VAULT_DAMAGED',
      `${result.damaged.length} damaged or missing objects break ${result.brokenSnapshots.length} of ${result.snapshots} snapshots: ${result.brokenSnapshots.join(', ')}`,
      { hint: 'restore a snapshot not named here; forget the broken ones (pagevault forget) so that the next snapshot does not build on them' },
    );
    return { value: result, text, error };
  } finally {
    progress.stop();
  }
}

function describe(r: VerifyResult): string {
  const lines = r.damaged.map((d) => `DAMAGED ${d.object}: ${d.code}: ${d.problem}\n  breaks ${d.snapshots.length > 0 ? d.snapshots.join(', ') : 'no snapshot'}`);
  lines.push(
    `verified ${r.snapshots} snapshots and ${r.packs} packs in ${r.url}` +
      (r.packsRead > 0 ? `, read ${r.packsRead} packs (${formatBytes(r.bytesRead)}, ${r.extentsChecked} extents checked)` : '') +
      ` in ${formatDuration(r.durationMs)}: ${r.ok ? 'no damage' : `${r.damaged.length} damaged objects`}`,
  );
  return lines.join('\n');
}
