// Which database a vault backs up. A snapshot compares its source with the newest readable manifest in the
// vault and refuses another database unless told (`newSource`): otherwise a wrong path in one cron line would
// make a stranger's database what a plain restore returns.
//
// Identity is what a database keeps for its whole life, wherever it runs: its path, its file name, its page
// size, its application_id and its text encoding. Not identity: the hostname (a Kubernetes CronJob's pod or a
// container has a new one every run), user_version and the schema (migrations change them), the journal mode
// (configuration), the size and the change counter (every write), the inode (a restore makes a new file).
import { SourceError } from '../errors.ts';
import type { SourceFacts } from '../source/page-source.ts';
import type { Manifest } from '../vault/model.ts';

/** The facts compared, as a manifest records them. */
export interface SourceIdentity {
  path: string | null;
  fileName: string | null;
  pageSize: number;
  applicationId: number;
  encoding: string;
}

export function identityOf(facts: Pick<SourceFacts, 'path' | 'fileName' | 'pageSize' | 'applicationId' | 'encoding'>): SourceIdentity {
  return { path: facts.path ?? null, fileName: facts.fileName ?? null, pageSize: facts.pageSize, applicationId: facts.applicationId, encoding: facts.encoding };
}

export function identityInManifest(m: Pick<Manifest, 'pageSize' | 'source'>): SourceIdentity {
  const { path, fileName, applicationId, encoding } = m.source;
  return { path, fileName, pageSize: m.pageSize, applicationId, encoding };
}

const show = (v: string | number | null): string => (v === null ? 'none (in memory)' : typeof v === 'string' ? v : String(v));

/** How `now` differs from `before`, one phrase per fact ("file name b.db, not a.db"); empty when they agree. */
export function identityDifferences(before: SourceIdentity, now: SourceIdentity): string[] {
  const facts: [keyof SourceIdentity, string][] = [
    ['path', 'path'],
    ['fileName', 'file name'],
    ['pageSize', 'page size'],
    ['applicationId', 'application_id'],
    ['encoding', 'encoding'],
  ];
  return facts.filter(([k]) => before[k] !== now[k]).map(([k, name]) => `${name} ${show(now[k])}, not ${show(before[k])}`);
}

/**
 * Throws SourceError SOURCE_MISMATCH when the source is not the database the vault's newest snapshot was
 * taken of, naming what differs and how to go on.
 */
export function refuseAnotherSource(previous: Pick<Manifest, 'id' | 'pageSize' | 'source'>, now: SourceIdentity, vault: string): void {
  const differences = identityDifferences(identityInManifest(previous), now);
  if (differences.length === 0) return;
  const name = now.path ?? 'the application database';
  const host = previous.source.hostname;
  throw new SourceError(
    'SOURCE_MISMATCH',
    `source ${name} is not the database vault ${vault} backs up: its ${differences.join('; ')} ` +
      `(snapshot ${previous.id}, from host ${host}); nothing was uploaded`,
    {
      hint:
        'give the vault of this database (one vault per database), or, if this database replaces that one (moved, ' +
        'or recreated), pass --new-source (library: newSource: true): its snapshots then are what a restore returns',
    },
  );
}
