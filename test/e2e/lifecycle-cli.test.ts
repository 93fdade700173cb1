// The lifecycle commands' CLI on file:// vaults, where the cases need to reach into the store: snapshot --keep-*
// (one cron line), a prune that fails after the snapshot was published (exit 10), forget, and the sweep of a
// killed snapshot's unfinished write.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeRun, runCli } from '../helpers/cli.ts';
import { createDatabase, fileDigest, tempDir } from '../helpers/sqlite.ts';
import { objects } from './file-target.ts';
import { assertExit, touchDatabase } from './suite.ts';

// Long enough that a snapshot on a loaded machine stays inside its half; these cases do not wait for it.
const grace = ['--grace', '20s'];

test('snapshot --keep-last 1 snapshots and prunes in one run; ls and the result agree', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { journalMode: 'wal', rows: 800 });
  const url = `file://${join(dir, 'vault')}`;
  const first = await runCli(['snapshot', db, url, '--json', ...grace]);
  assertExit(first, 0);
  touchDatabase(db);
  const second = await runCli(['snapshot', db, url, '--keep-last', '1', '--json', ...grace]);
  assertExit(second, 0);
  assert.deepEqual(second.json.prune.kept, [second.json.id]);
  assert.deepEqual(second.json.prune.forgotten, [first.json.id]);
  const text = await runCli(['snapshot', db, url, '--keep-last', '1', ...grace]);
  assertExit(text, 0);
  assert.match(text.stdout, /\nprune:\n  file:\/\/.*: kept 1 snapshots, forgot 1 /);
  const ls = await runCli(['ls', url, '--json']);
  assert.equal(ls.json.snapshots.length, 1);
  const out = join(dir, 'out.db');
  assertExit(await runCli(['restore', url, out]), 0);
  assert.equal(fileDigest(out), fileDigest(db));
});

test('a prune that fails after the snapshot was published: exit 10, the message says the snapshot is published, and it restores', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { journalMode: 'wal', rows: 800 });
  const vault = join(dir, 'vault');
  const url = `file://${vault}`;
  assertExit(await runCli(['snapshot', db, url]), 0);
  // A file where the prune's run records go: its first write fails, after the snapshot is in.
  mkdirSync(join(vault, 'gc'));
  writeFileSync(join(vault, 'gc', 'runs'), 'in the way');
  touchDatabase(db);
  const r = await runCli(['snapshot', db, url, '--keep-last', '1', '--json', ...grace]);
  assertExit(r, 10);
  assert.equal(r.json.error.code, 'PRUNE_FAILED');
  assert.match(r.stderr, /snapshot \S+ was published; the prune after it failed/);
  const id = r.json.snapshot.id as string;
  assert.ok(objects(vault).includes(`manifests/${id}`), describeRun(r));
  const text = await runCli(['snapshot', db, url, '--keep-last', '1', ...grace]);
  assertExit(text, 10);
  assert.match(text.stdout, /^snapshot \S+ in file:/, 'the published snapshot is described before the error');
  const out = join(dir, 'out.db');
  assertExit(await runCli(['restore', url, out, '--snapshot', id]), 0);
});

test('forget by id; an unknown id is exit 4 and a bad one exit 2, with nothing changed; --dry-run forgets nothing', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { journalMode: 'wal', rows: 800 });
  const vault = join(dir, 'vault');
  const url = `file://${vault}`;
  const a = await runCli(['snapshot', db, url, '--json']);
  touchDatabase(db);
  const b = await runCli(['snapshot', db, url, '--json']);
  const before = objects(vault);
  assertExit(await runCli(['forget', url, '20990101T000000000Z-0000000000']), 4);
  assertExit(await runCli(['forget', url, 'latest']), 2);
  const dry = await runCli(['forget', url, a.json.id, '--dry-run', '--json']);
  assertExit(dry, 0);
  assert.deepEqual(dry.json.forgotten, [a.json.id]);
  assert.deepEqual(objects(vault), before);
  const r = await runCli(['forget', url, b.json.id, '--json', ...grace]);
  assertExit(r, 0);
  assert.deepEqual(r.json.forgotten, [b.json.id]);
  assert.deepEqual(r.json.kept, [a.json.id]);
  assert.ok(!objects(vault).includes(`manifests/${b.json.id}`));
  const out = join(dir, 'out.db');
  assertExit(await runCli(['restore', url, out]), 0);
  assert.equal((await runCli(['restore', url, join(dir, 'x.db'), '--snapshot', b.json.id])).code, 4, 'the forgotten snapshot is gone');
});

test("prune removes a killed snapshot's unfinished write once it is older than the grace period", async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { journalMode: 'wal', rows: 300 });
  const vault = join(dir, 'vault');
  const url = `file://${vault}`;
  assertExit(await runCli(['snapshot', db, url]), 0);
  mkdirSync(join(vault, '.pagevault-tmp'), { recursive: true });
  const old = join(vault, '.pagevault-tmp', 'killed-upload');
  const fresh = join(vault, '.pagevault-tmp', 'running-upload');
  writeFileSync(old, Buffer.alloc(100));
  writeFileSync(fresh, Buffer.alloc(100));
  utimesSync(old, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
  const r = await runCli(['prune', url, '--keep-last', '1', '--grace', '10m', '--json']);
  assertExit(r, 0);
  assert.equal(r.json.abortedUploads, 1);
  assert.ok(!existsSync(old) && existsSync(fresh));
});
