// The pagevault CLI end to end on file:// vaults: the shared cases (suite.ts), and those that need a live
// writer, a killed or signalled snapshot, an existing target, or a bad source, URL or endpoint.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, it } from 'node:test';
import { describeRun, runCli, spawnCli } from '../helpers/cli.ts';
import { startWriter } from '../helpers/processes.ts';
import { createDatabase, fileDigest, integrityCheck, tempDir } from '../helpers/sqlite.ts';
import { fileTarget, objects, walk } from './file-target.ts';
import { assertExit, cliSuite, sha256File } from './suite.ts';

const MiB = 1024 * 1024;

cliSuite('file', async () => fileTarget());

/** Grows a database by `bytes` of random (incompressible) blobs. */
function addBlobs(path: string, bytes: number): void {
  const db = new Database(path);
  try {
    db.exec('CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, data BLOB)');
    const insert = db.prepare('INSERT INTO blobs(data) VALUES (randomblob(?))');
    db.transaction(() => {
      for (let i = 0; i < bytes / MiB; i++) insert.run(MiB);
    })();
  } finally {
    db.close();
  }
}

/**
 * Resolves once the file vault at `dir` has its config and a pack's temp file (the snapshot is uploading);
 * rejects after `ms`.
 */
async function uploading(dir: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(join(dir, 'pagevault.json')) || walk(join(dir, '.pagevault-tmp')).length === 0) {
    if (Date.now() > deadline) throw new Error(`no upload began in ${dir} within ${ms} ms: ${walk(dir).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('pagevault CLI on file: live sources, kills, signals, bad input', () => {
  it('a snapshot while another process writes restores to a committed state', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'live.db');
    createDatabase(db, { journalMode: 'wal', rows: 3000 });
    const url = `file://${join(dir, 'vault')}`;
    const writer = startWriter(db, { busyTimeoutMs: 5000 });
    let stats;
    try {
      await writer.ready;
      // Slow enough that the writer commits many times while the snapshot runs.
      const snap = await runCli(['snapshot', db, url, '--json', '--max-bytes-per-second', '4MiB']);
      assertExit(snap, 0);
    } finally {
      stats = await writer.stop();
    }
    const restored = join(dir, 'restored.db');
    assertExit(await runCli(['restore', url, restored]), 0);
    assert.equal(integrityCheck(restored), 'ok');
    const r = new Database(restored, { readonly: true });
    try {
      const { n } = r.prepare('SELECT n FROM counter').get() as { n: number };
      const { count, max } = r.prepare('SELECT count(*) AS count, max(id) AS max FROM items').get() as { count: number; max: number };
      // Every commit adds row k and sets the counter to k: a committed state has both, and nothing after.
      assert.ok(n > 3000, `the writer had committed before the snapshot began, counter ${n}`);
      assert.equal(max, n, 'the newest row and the counter come from the same commit');
      assert.equal(count, n, 'rows 1..n, none missing');
      assert.ok(stats.lastId > n, `the writer kept committing during the snapshot (last ${stats.lastId}, snapshot at ${n})`);
    } finally {
      r.close();
    }
  });

  it('kill -9 mid-snapshot: nothing listed or published for it, the earlier snapshot restores, the next one works', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'big.db');
    createDatabase(db, { rows: 500 });
    const small = fileDigest(db);
    const vault = join(dir, 'vault');
    const url = `file://${vault}`;
    const first = await runCli(['snapshot', db, url, '--json']);
    assertExit(first, 0);
    addBlobs(db, 40 * MiB);

    // ~40 MiB at 8 MiB/s: about five seconds of uploading to kill it in.
    const { child, finished } = spawnCli(['snapshot', db, url, '--json', '--max-bytes-per-second', '8MiB']);
    await uploading(vault);
    child.kill('SIGKILL');
    const killed = await finished;
    assert.equal(killed.signal, 'SIGKILL', describeRun(killed));
    assert.deepEqual(
      objects(vault).filter((k) => k.startsWith('manifests/')),
      [`manifests/${first.json.id}`],
    );

    const ls = await runCli(['ls', url, '--json']);
    assertExit(ls, 0);
    assert.deepEqual(
      ls.json.snapshots.map((s: { id: string }) => s.id),
      [first.json.id],
    );
    const restored = join(dir, 'restored.db');
    assertExit(await runCli(['restore', url, restored]), 0);
    assert.equal(fileDigest(restored), small);

    const next = await runCli(['snapshot', db, url, '--json']);
    assertExit(next, 0);
    assert.equal(next.json.parent, first.json.id);
    const after = await runCli(['ls', url, '--json']);
    assert.deepEqual(
      after.json.snapshots.map((s: { id: string }) => s.id),
      [first.json.id, next.json.id],
    );
  });

  it('SIGTERM and SIGINT mid-snapshot abort the uploads, publish nothing, and exit 143 and 130', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'big.db');
    createDatabase(db, { rows: 100 });
    addBlobs(db, 24 * MiB);
    for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
      const vault = join(dir, `vault-${signal}`);
      const { child, finished } = spawnCli(['snapshot', db, `file://${vault}`, '--json', '--max-bytes-per-second', '4MiB']);
      await uploading(vault);
      child.kill(signal);
      const r = await finished;
      assertExit(r, code);
      const { error, ...result } = JSON.parse(r.stdout);
      assert.deepEqual([error.code, error.exitCode, result], ['ABORTED', code, {}], 'no result on stdout, only the error');
      assert.match(r.stderr, /pagevault: .*abort/i);
      assert.deepEqual(objects(vault).filter((k) => !k.startsWith('pagevault.json')), [], 'no manifest and no pack');
      assert.deepEqual(walk(join(vault, '.pagevault-tmp')), [], 'the pack write was cleaned up');
    }
  });

  it('restore onto an existing file: refused (exit 6) without --force, kept with --if-not-exists, replaced with --force', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 800 });
    const url = `file://${join(dir, 'vault')}`;
    assertExit(await runCli(['snapshot', db, url]), 0);
    const existing = join(dir, 'existing.db');
    createDatabase(existing, { rows: 5 });
    const before = sha256File(existing);

    const refused = await runCli(['restore', url, existing]);
    assertExit(refused, 6);
    assert.ok(refused.stderr.includes(existing), `the message should name ${existing}:\n${refused.stderr}`);
    assert.match(refused.stderr, /--force/);
    assert.equal(sha256File(existing), before);

    const kept = await runCli(['restore', url, existing, '--if-not-exists', '--json']);
    assertExit(kept, 0);
    assert.equal(kept.json.skipped, 'target-exists');
    assert.equal(sha256File(existing), before);

    assertExit(await runCli(['restore', url, existing, '--force']), 0);
    assert.equal(fileDigest(existing), fileDigest(db));
  });

  it('restore from an empty vault: exit 4, or 0 with --if-replica-exists', async (t) => {
    const dir = tempDir(t);
    const url = `file://${join(dir, 'empty-vault')}`;
    const target = join(dir, 'target.db');
    const missing = await runCli(['restore', url, target]);
    assertExit(missing, 4);
    assert.match(missing.stderr, /no snapshot/);
    const skipped = await runCli(['restore', url, target, '--if-replica-exists', '--json']);
    assertExit(skipped, 0);
    assert.equal(skipped.json.skipped, 'no-snapshot');
    assert.ok(!existsSync(target));
  });

  it('restore --at picks the newest snapshot at or before the time; one before every snapshot is exit 4', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 300 });
    const first = fileDigest(db);
    const url = `file://${join(dir, 'vault')}`;
    const s1 = await runCli(['snapshot', db, url, '--json']);
    assertExit(s1, 0);
    const db2 = new Database(db);
    db2.exec("DELETE FROM items WHERE id % 2 = 0");
    db2.close();
    const s2 = await runCli(['snapshot', db, url, '--json']);
    assertExit(s2, 0);
    const ls = await runCli(['ls', url, '--json']);
    const [c1, c2] = ls.json.snapshots.map((s: { createdAt: string }) => Date.parse(s.createdAt));
    assert.ok(c1 < c2);

    const between = new Date(c1 + Math.floor((c2 - c1) / 2)).toISOString();
    const target = join(dir, 'at.db');
    const r = await runCli(['restore', url, target, '--at', between, '--json']);
    assertExit(r, 0);
    assert.equal(r.json.id, s1.json.id);
    assert.equal(fileDigest(target), first);

    const tooEarly = await runCli(['restore', url, join(dir, 'early.db'), '--at', '2000-01-01T00:00:00Z']);
    assertExit(tooEarly, 4);
    const badTime = await runCli(['restore', url, join(dir, 'bad.db'), '--at', 'yesterday']);
    assertExit(badTime, 2);
  });

  it('a source that is not SQLite, or missing, is exit 3 naming the file; nothing is published', async (t) => {
    const dir = tempDir(t);
    const vault = join(dir, 'vault');
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'these are not the pages you are looking for\n'.repeat(200));
    for (const source of [text, join(dir, 'missing.db')]) {
      const r = await runCli(['snapshot', source, `file://${vault}`, '--json']);
      assertExit(r, 3);
      assert.ok(r.stderr.includes(source), `the message should name ${source}:\n${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).error.code, source === text ? 'SOURCE_NOT_SQLITE' : 'SOURCE_MISSING', 'the error, and no result');
    }
    assert.deepEqual(objects(vault).filter((k) => k.startsWith('manifests/')), []);
  });

  it('bad usage is exit 2 with a one-line message: URLs, flags, sizes, commands', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 10 });
    const existing = join(dir, 'existing.db');
    createDatabase(existing, { rows: 1 });
    const before = sha256File(existing);
    const cases: [string[], RegExp][] = [
      [['snapshot', db, 'ftp://x'], /ftp:\/\//],
      [['ls', 's3://'], /s3:\/\//],
      [['restore', 'ftp://x', existing], /ftp:\/\//],
      [['snapshot', db, `file://${dir}/v`, '--bogus-flag'], /bogus-flag/],
      [['snapshot', db, `file://${dir}/v`, '--part-size', 'lots'], /--part-size/],
      [['restore', `file://${dir}/v`, join(dir, 'x.db'), '--snapshot', 'not-an-id'], /not-an-id/],
      [['frobnicate'], /frobnicate/],
      [[], /command/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      assertExit(r, 2);
      assert.match(r.stderr, /^pagevault: /);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    assert.equal(sha256File(existing), before, 'a failed restore leaves the target as it was');
  });

  it('an unreachable endpoint is exit 4 within a bounded time, and the secret never shows', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 10 });
    const port = await closedPort();
    const secret = 'e2e-secret-3f9a1c77d2';
    const r = await runCli(['snapshot', db, 's3://pagevault-e2e/app', '--endpoint', `http://127.0.0.1:${port}`, '--verbose'], {
      env: { AWS_ACCESS_KEY_ID: 'e2e-access', AWS_SECRET_ACCESS_KEY: secret },
      timeoutMs: 90_000,
    });
    assertExit(r, 4);
    assert.ok(r.durationMs < 60_000, `took ${r.durationMs} ms`);
    assert.ok(r.stderr.includes(`127.0.0.1:${port}`), `the message should name the endpoint:\n${r.stderr}`);
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret));
  });
});
