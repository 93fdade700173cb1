// Snapshots that must not silently store the wrong thing (issue 9, items 4 and 7), through the CLI: a damaged
// source is published, checked, recorded and reported with exit 9; another database is refused from a vault
// that backs up a different one, until --new-source. Real databases, real files, the CLI as a child process.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { decodeManifest } from '../../src/vault/manifest.ts';
import { runCli } from '../helpers/cli.ts';
import { createDatabase, integrityCheck, tempDir } from '../helpers/sqlite.ts';
import { corruptOnePage } from '../snapshot/corrupt.ts';
import { assertExit } from './suite.ts';

/** The manifest of snapshot `id` in the file:// vault at `dir`, decoded as any reader would. */
function manifest(dir: string, id: string) {
  return decodeManifest(readFileSync(join(dir, 'manifests', id)), id);
}

function manifestIds(dir: string): string[] {
  return readdirSync(join(dir, 'manifests')).sort();
}

/** The pino lines on stderr, parsed. */
function logLines(stderr: string): { level: number; msg: string; [k: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

describe('a damaged source (one page overwritten)', () => {
  it('is snapshotted with exit 9, a warning naming the database and its errors, and the check in the manifest', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 3000, journalMode: 'wal' });
    const { page, readableId } = corruptOnePage(db);
    // As the issue met it: queries of other rows work, the integrity check does not.
    const open = new Database(db, { readonly: true });
    assert.equal((open.prepare('SELECT id FROM items WHERE id = ?').get(readableId) as { id: number }).id, readableId);
    open.close();
    assert.throws(() => integrityCheck(db), /malformed/);

    const vault = join(dir, 'vault');
    const r = await runCli(['snapshot', db, `file://${vault}`, '--json']);
    assertExit(r, 9);
    const check = r.json.sourceCheck;
    assert.equal(check.kind, 'quick_check');
    assert.equal(check.ok, false);
    assert.equal(check.sameState, true);
    assert.match(check.errors[0], new RegExp(`Tree \\d+ page ${page}\\b`));
    assert.ok(check.errors.length <= 20);
    assert.match(r.stderr, new RegExp(`pagevault: warning: source database ${db} FAILED PRAGMA quick_check; snapshot ${r.json.id} was published`));
    assert.ok(r.stderr.includes(check.errors[0]), 'the first error is on stderr');
    const warn = logLines(r.stderr).find((l) => l.level === 40 && /failed PRAGMA quick_check/.test(l.msg));
    assert.ok(warn, `a warn log line\n${r.stderr}`);
    assert.equal(warn.source, db);

    // Published: the manifest is there and holds the same record.
    assert.deepEqual(manifestIds(vault), [r.json.id]);
    assert.deepEqual(manifest(vault, r.json.id).source.check, check);

    // In text, the result says it too, and the exit code is the same.
    const text = await runCli(['snapshot', db, `file://${vault}`, '--source-check', 'full']);
    assertExit(text, 9);
    assert.match(text.stdout, /source check: PRAGMA integrity_check FAILED: Tree \d+ page \d+/);
    assert.equal(manifest(vault, manifestIds(vault).at(-1)!).source.check?.kind, 'integrity_check');

    // --source-check none: nothing checked, nothing recorded, exit 0.
    const none = await runCli(['snapshot', db, `file://${vault}`, '--json', '--source-check', 'none']);
    assertExit(none, 0);
    assert.equal(none.json.sourceCheck, null);
    assert.equal(manifest(vault, none.json.id).source.check, null);
  });

  it('a healthy source exits 0 and records its check ok', async (t) => {
    const dir = tempDir(t);
    const vault = join(dir, 'vault');
    for (const journalMode of ['wal', 'delete'] as const) {
      const db = join(dir, `${journalMode}.db`);
      createDatabase(db, { rows: 3000, journalMode });
      const r = await runCli(['snapshot', db, `file://${vault}-${journalMode}`, '--json']);
      assertExit(r, 0);
      assert.deepEqual({ ...r.json.sourceCheck, durationMs: 0 }, { kind: 'quick_check', ok: true, errors: [], durationMs: 0, sameState: true });
      assert.deepEqual(manifest(`${vault}-${journalMode}`, r.json.id).source.check, r.json.sourceCheck);
      assert.doesNotMatch(r.stderr, /warning/);
    }
  });
});

describe('another database into a vault', () => {
  it('is refused with exit 3 and SOURCE_MISMATCH, nothing published; --new-source publishes it and makes it the source', async (t) => {
    const dir = tempDir(t);
    const a = join(dir, 'orders.db');
    const b = join(dir, 'users.db');
    createDatabase(a, { rows: 500, journalMode: 'wal' });
    createDatabase(b, { rows: 200, journalMode: 'wal' });
    const vault = join(dir, 'vault');
    const url = `file://${vault}`;
    const first = await runCli(['snapshot', a, url, '--json']);
    assertExit(first, 0);
    const packs = readdirSync(join(vault, 'packs'));

    const refused = await runCli(['snapshot', b, url, '--json']);
    assertExit(refused, 3);
    assert.equal(refused.json.error.code, 'SOURCE_MISMATCH');
    assert.equal(refused.json.error.exitCode, 3);
    assert.match(refused.stderr, new RegExp(`pagevault: source ${b} is not the database vault ${url} backs up: its path ${b}, not ${a}; file name users\\.db, not orders\\.db`));
    assert.match(refused.stderr, /pagevault: hint: .*--new-source/);
    assert.deepEqual(manifestIds(vault), [first.json.id], 'nothing new published');
    assert.deepEqual(readdirSync(join(vault, 'packs')), packs, 'nothing uploaded');

    const accepted = await runCli(['snapshot', b, url, '--json', '--new-source']);
    assertExit(accepted, 0);
    assert.equal(accepted.json.newSource, true);
    assert.deepEqual(manifestIds(vault), [first.json.id, accepted.json.id]);
    const m = manifest(vault, accepted.json.id);
    assert.deepEqual([m.source.path, m.source.fileName, m.source.applicationId, m.source.encoding], [b, 'users.db', 0, 'UTF-8']);

    // The vault's source is users.db now; orders.db is refused, and ls shows which database each snapshot is of.
    assertExit(await runCli(['snapshot', b, url]), 0);
    assertExit(await runCli(['snapshot', a, url]), 3);
    const ls = await runCli(['ls', url, '--json']);
    assertExit(ls, 0);
    const listed = ls.json.snapshots as { source: string }[];
    assert.deepEqual(
      listed.map((s) => s.source),
      [a, b, b],
    );
  });
});
