// Restores that must never hand back the wrong database (issue 9): stale -wal/-shm beside the target, a target
// another process holds, a vault that lost its config or a pack, owner and mode of a replaced file, times
// without a zone, a directory that cannot be written, a restore killed or interrupted, a symlinked target.
// Real files, the CLI as a child process, python3's sqlite3 as the application holding the database.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  openSync,
  readSync,
  writeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { describeRun, runCli, spawnCli } from '../helpers/cli.ts';
import { startHolder } from '../helpers/processes.ts';
import { createDatabase, createLargeDatabase, differingPages, fileDigest, integrityCheck, tempDir } from '../helpers/sqlite.ts';
import { assertExit, sha256File, touchDatabase } from './suite.ts';

const isRoot = process.getuid?.() === 0;

/** A database snapshotted into a fresh file:// vault; returns the vault URL and the snapshot's id and content digest. */
async function snapshotted(dir: string, rows = 400): Promise<{ db: string; url: string; vault: string; id: string; digest: string }> {
  const db = join(dir, 'source.db');
  createDatabase(db, { rows, journalMode: 'wal' });
  const vault = join(dir, 'vault');
  const url = `file://${vault}`;
  const r = await runCli(['snapshot', db, url, '--json']);
  assertExit(r, 0);
  return { db, url, vault, id: r.json.id, digest: fileDigest(db) };
}

/** Rows in table `held` of `path` (the holder's table), or undefined without one. */
function heldRows(path: string): number | undefined {
  const db = new Database(path, { readonly: true });
  try {
    const t = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'held'").get();
    return t ? (db.prepare('SELECT count(*) FROM held').pluck().get() as number) : undefined;
  } finally {
    db.close();
  }
}

/** A crashed application's leftovers at `path`: its -wal (with commits never checkpointed) and -shm. */
async function crashedApplication(path: string): Promise<void> {
  const holder = startHolder(path, 'wal');
  await holder.ready;
  for (let i = 1; i <= 40; i++) await holder.send(`insert ${i}`);
  await holder.kill();
}

/** A snapshot in a vault, and app.db beside it held open by a python3 process (killed after the test). */
async function heldTarget(t: TestContext, mode: 'wal' | 'delete') {
  const dir = tempDir(t);
  const vault = await snapshotted(dir);
  const target = join(dir, 'app.db');
  const holder = startHolder(target, mode);
  t.after(() => holder.kill().catch(() => undefined));
  await holder.ready;
  return { ...vault, dir, target, holder };
}

/** A snapshot of a database of random blobs of about `bytes`, and an empty directory `out` to restore into. */
async function largeVault(t: TestContext, bytes: number): Promise<{ url: string; out: string; target: string }> {
  const dir = tempDir(t);
  const db = join(dir, 'big.db');
  createLargeDatabase(db, bytes);
  const url = `file://${join(dir, 'vault')}`;
  assertExit(await runCli(['snapshot', db, url]), 0);
  const out = join(dir, 'out');
  mkdirSync(out);
  return { url, out, target: join(out, 'app.db') };
}

/** Resolves once a restore's temp file shows in `dir`. */
async function tempFileAppears(dir: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!readdirSync(dir).some((f) => f.includes('.pagevault-'))) {
    if (Date.now() > deadline) throw new Error('the restore never created its temp file');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('restore: files beside the target', () => {
  it('a stale -wal and -shm beside a missing target are moved aside under the names printed, never replayed', async (t) => {
    const dir = tempDir(t);
    const { url, id, digest } = await snapshotted(dir);
    const target = join(dir, 'app.db');
    // Another database's WAL, as when an admin removes app.db after a crash and restores.
    await crashedApplication(target);
    unlinkSync(target);
    const walBytes = readFileSync(`${target}-wal`);
    assert.ok(walBytes.length > 40 * 2000, `the crashed application left its commits in the -wal (${walBytes.length} bytes)`);

    const r = await runCli(['restore', url, target, '--json']);
    assertExit(r, 0);
    assert.equal(r.json.id, id);
    assert.equal(r.json.movedAside.length, 2, describeRun(r));
    for (const m of r.json.movedAside) {
      assert.equal(m.kept, true);
      assert.ok(!existsSync(m.from), `${m.from} is gone from beside the target`);
      assert.match(m.to, /-(wal|shm)\.pagevault-aside-\d{8}T\d{6}Z$/);
    }
    const wal = r.json.movedAside.find((m: { from: string }) => m.from.endsWith('-wal'));
    assert.deepEqual(readFileSync(wal.to), walBytes, 'the moved -wal is kept byte for byte');
    // The first open (what the application does next) sees exactly the snapshot, not the other database's WAL.
    assert.equal(fileDigest(target), digest);
    assert.equal(heldRows(target), undefined, 'no table of the crashed database was replayed in');
    assert.equal(integrityCheck(target), 'ok');

    // The text output names both moves.
    const again = join(dir, 'again.db');
    await crashedApplication(again);
    unlinkSync(again);
    const text = await runCli(['restore', url, again]);
    assertExit(text, 0);
    assert.match(text.stdout, new RegExp(`moved ${again}-wal aside to ${again}-wal\\.pagevault-aside-`));
    assert.equal(fileDigest(again), digest);
  });

  it('--force over a crashed database: its -wal goes with it, and the restored file opens as the snapshot', async (t) => {
    const dir = tempDir(t);
    const { url, digest } = await snapshotted(dir);
    const target = join(dir, 'app.db');
    await crashedApplication(target);
    assert.ok(existsSync(`${target}-wal`));
    const r = await runCli(['restore', url, target, '--force', '--json']);
    assertExit(r, 0);
    assert.deepEqual(
      r.json.movedAside.map((m: { from: string; kept: boolean }) => [m.from, m.kept]),
      [
        [`${target}-wal`, false],
        [`${target}-shm`, false],
      ],
    );
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('app.db')), ['app.db'], 'nothing of the replaced database is left');
    assert.equal(fileDigest(target), digest);
  });

  it('a stale -journal beside a missing target is moved aside too', async (t) => {
    const dir = tempDir(t);
    const { url, digest } = await snapshotted(dir);
    const target = join(dir, 'app.db');
    writeFileSync(`${target}-journal`, Buffer.alloc(4096, 7));
    const r = await runCli(['restore', url, target, '--json']);
    assertExit(r, 0);
    assert.deepEqual(r.json.movedAside.map((m: { from: string }) => m.from), [`${target}-journal`]);
    assert.equal(fileDigest(target), digest);
  });
});

describe('restore: a target another process holds', () => {
  it('WAL: refused with exit 7 naming the process, the holder keeps its database and its commits; --even-if-open overrides', async (t) => {
    const { url, digest, dir, target, holder } = await heldTarget(t, 'wal');
    await holder.send('insert 1');
    const before = sha256File(target);
    const walBefore = readFileSync(`${target}-wal`);

    const r = await runCli(['restore', url, target, '--force']);
    assertExit(r, 7);
    assert.match(r.stderr, new RegExp(`pid ${holder.pid} \\(python3\\)`));
    assert.match(r.stderr, /stop that process/);
    assert.equal(sha256File(target), before, 'the target is untouched');
    assert.deepEqual(readFileSync(`${target}-wal`), walBefore, 'its -wal is untouched');
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.pagevault-')), [], 'no temp file is left');

    // The holder's next commit lands in the database everyone sees.
    assert.equal(await holder.send('insert 2'), 'ok 2');
    assert.equal(await holder.close(), 0);
    assert.equal(heldRows(target), 3);

    const held = startHolder(target, 'wal');
    await held.ready;
    const forced = await runCli(['restore', url, target, '--force', '--even-if-open']);
    assertExit(forced, 0);
    await held.kill();
    assert.equal(fileDigest(target), digest);
  });

  it('rollback journal: an idle connection holds no lock but is found by its open file (exit 7)', async (t) => {
    const { url, target, holder } = await heldTarget(t, 'delete');
    const before = sha256File(target);
    const r = await runCli(['restore', url, target, '--force']);
    assertExit(r, 7);
    assert.match(r.stderr, new RegExp(`pid ${holder.pid} \\(python3\\) has ${target} open`));
    assert.equal(sha256File(target), before);
  });

  it('a deleted database whose process still runs: its -wal and -shm are in use, so even a new target is refused', async (t) => {
    const { url, target, holder } = await heldTarget(t, 'wal');
    await holder.send('insert 1');
    unlinkSync(target);
    const r = await runCli(['restore', url, target]);
    assertExit(r, 7);
    assert.match(r.stderr, new RegExp(`${target}-wal`));
    assert.ok(!existsSync(target), 'nothing was restored');
    assert.ok(existsSync(`${target}-wal`) && existsSync(`${target}-shm`), 'the running process keeps its files');
  });
});

describe('restore: what the vault is missing', () => {
  it('a vault without pagevault.json is an integrity error naming it, for restore, --if-replica-exists and snapshot alike', async (t) => {
    const dir = tempDir(t);
    const { db, url, vault } = await snapshotted(dir);
    touchDatabase(db);
    assertExit(await runCli(['snapshot', db, url]), 0);
    unlinkSync(join(vault, 'pagevault.json'));
    const keys = readdirSync(join(vault, 'manifests')).sort();

    const target = join(dir, 'restored.db');
    for (const args of [[], ['--if-replica-exists']]) {
      const r = await runCli(['restore', url, target, ...args]);
      assertExit(r, 5);
      assert.match(r.stderr, /pagevault\.json is missing/);
      assert.ok(!existsSync(target));
    }
    const s = await runCli(['snapshot', db, url]);
    assertExit(s, 5);
    assert.match(s.stderr, /pagevault\.json is missing/);
    assert.ok(!existsSync(join(vault, 'pagevault.json')), 'the config was not quietly recreated');
    assert.deepEqual(readdirSync(join(vault, 'manifests')).sort(), keys, 'no snapshot was published');
  });

  it('a vault with packs or extent tables but no manifest is not empty: exit 5, also with --if-replica-exists', async (t) => {
    const dir = tempDir(t);
    const { url, vault, id } = await snapshotted(dir);
    rmSync(join(vault, 'manifests'), { recursive: true });
    const r = await runCli(['restore', url, join(dir, 'r.db'), '--if-replica-exists']);
    assertExit(r, 5);
    assert.match(r.stderr, new RegExp(`holds snapshot data \\(extents/${id}\\) but no manifest`));
    rmSync(join(vault, 'extents'), { recursive: true });
    const packsOnly = await runCli(['restore', url, join(dir, 'r.db'), '--if-replica-exists']);
    assertExit(packsOnly, 5);
    assert.match(packsOnly.stderr, /holds snapshot data \(packs\/.*\) but no manifest/);
    assert.ok(!existsSync(join(dir, 'r.db')));
  });

  it('a snapshot whose extent table is gone or replaced is exit 5 (EXTENTS_MISSING, EXTENTS_DAMAGED), the target untouched', async (t) => {
    const dir = tempDir(t);
    const { db, url, vault, id: first } = await snapshotted(dir);
    touchDatabase(db);
    const second = await runCli(['snapshot', db, url, '--json']);
    assertExit(second, 0);
    const table = join(vault, 'extents', second.json.id);
    // Another snapshot's table in its place: a valid object, but not the one the manifest names.
    const saved = readFileSync(table);
    writeFileSync(table, readFileSync(join(vault, 'extents', first)));
    const swapped = await runCli(['restore', url, join(dir, 'r.db'), '--json']);
    assertExit(swapped, 5);
    assert.equal(swapped.json.error.code, 'EXTENTS_DAMAGED');
    assert.match(swapped.stderr, new RegExp(`the extent table of snapshot ${second.json.id} is damaged: it is not the table its manifest names`));
    rmSync(table);
    const missing = await runCli(['restore', url, join(dir, 'r.db'), '--json']);
    assertExit(missing, 5);
    assert.equal(missing.json.error.code, 'EXTENTS_MISSING');
    assert.ok(!existsSync(join(dir, 'r.db')));
    // The earlier snapshot does not need it.
    writeFileSync(table, saved);
    const older = await runCli(['restore', url, join(dir, 'r.db'), '--snapshot', first, '--json']);
    assertExit(older, 0);
  });

  it('a missing or truncated pack is exit 5, and the hint names the snapshots that do not need it', async (t) => {
    const dir = tempDir(t);
    const { db, url, vault, id: first } = await snapshotted(dir);
    touchDatabase(db);
    const second = await runCli(['snapshot', db, url, '--json']);
    assertExit(second, 0);
    const packDir = join(vault, 'packs', second.json.id);
    const [pack] = readdirSync(packDir);
    const packPath = join(packDir, pack!);
    const bytes = readFileSync(packPath);

    truncateSync(packPath, Math.floor(bytes.length / 2));
    const truncated = await runCli(['restore', url, join(dir, 'a.db')]);
    assertExit(truncated, 5);
    assert.match(truncated.stderr, /truncated/);
    assert.match(truncated.stderr, new RegExp(`hint: .*--snapshot ${first}`));

    unlinkSync(packPath);
    const missing = await runCli(['restore', url, join(dir, 'b.db')]);
    assertExit(missing, 5);
    assert.match(missing.stderr, new RegExp(`pack .*${pack} is missing`));
    assert.match(missing.stderr, new RegExp(`hint: 1 snapshot\\(s\\) use that pack; these do not .*: ${first}`));
    assertExit(await runCli(['restore', url, join(dir, 'c.db'), '--snapshot', first]), 0);
    assert.ok(!existsSync(join(dir, 'a.db')) && !existsSync(join(dir, 'b.db')));
  });
});

describe('restore: a snapshot of a source that was already damaged', () => {
  it('fails its check (exit 5) with a hint that blames the source; --accept-damaged restores its exact bytes and leaves the report', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'damaged.db');
    createDatabase(db, { rows: 2000 });
    // A misdirected write: one leaf page of the table written over another. integrity_check reports it
    // (rows out of order, index entries missing) while other tables still read.
    const pages = statSync(db).size / 4096;
    const fd = openSync(db, 'r+');
    const page = Buffer.alloc(4096);
    readSync(fd, page, 0, 4096, Math.floor(pages / 4) * 4096);
    writeSync(fd, page, 0, 4096, Math.floor(pages / 2) * 4096);
    closeSync(fd);
    assert.match(integrityCheck(db), /out of order/);
    const c = new Database(db, { readonly: true });
    assert.equal(c.prepare('SELECT n FROM counter').pluck().get(), 0, 'queries of other pages still work');
    c.close();
    const url = `file://${join(dir, 'vault')}`;
    const snap = await runCli(['snapshot', db, url, '--json']);
    assertExit(snap, 9);
    assert.ok(snap.json?.id, 'the snapshot of a damaged source is published, and says so');

    const refused = await runCli(['restore', url, join(dir, 'r.db')]);
    assertExit(refused, 5);
    assert.match(refused.stderr, /PRAGMA (integrity|quick)_check.* of the restored database failed: .*out of order/);
    assert.match(refused.stderr, /hint: every chunk of snapshot .* verified .* the source database was already damaged when it was taken \(its PRAGMA quick_check failed then too: .*--accept-damaged/);
    assert.ok(!existsSync(join(dir, 'r.db')));

    const target = join(dir, 'accepted.db');
    const r = await runCli(['restore', url, target, '--accept-damaged', '--json']);
    assertExit(r, 0);
    assert.deepEqual(differingPages(db, target, 4096).filter((p) => p !== 1), [], 'the bytes the source had');
    assert.equal(r.json.damaged.report, `${target}.pagevault-integrity_check-${snap.json.id}.txt`);
    const report = readFileSync(r.json.damaged.report, 'utf8');
    assert.match(report, new RegExp(`restored snapshot ${snap.json.id}`));
    assert.match(report, /When the snapshot was taken, the source's PRAGMA quick_check failed:\n  .*out of order/);
    assert.ok(r.json.damaged.lines.length > 0 && r.json.damaged.lines.every((l: string) => report.includes(l)), 'the report holds the check lines');
    const text = await runCli(['restore', url, join(dir, 'accepted2.db'), '--accept-damaged']);
    assertExit(text, 0);
    assert.match(text.stdout, /integrity_check FAILED \(--accept-damaged\)/);
  });
});

describe('restore: owner, mode, times, symlinks', () => {
  it('--force keeps the replaced file owner, group and mode; a new file follows its directory', { skip: !isRoot && 'needs root to chown' }, async (t) => {
    const dir = tempDir(t);
    const { url, digest } = await snapshotted(dir);
    const target = join(dir, 'app.db');
    createDatabase(target, { rows: 3 });
    chownSync(target, 65534, 65534);
    chmodSync(target, 0o660);
    assertExit(await runCli(['restore', url, target, '--force']), 0);
    const s = statSync(target);
    assert.deepEqual([s.uid, s.gid, (s.mode & 0o7777).toString(8)], [65534, 65534, '660']);
    assert.equal(fileDigest(target), digest);

    const appDir = join(dir, 'app');
    mkdirSync(appDir);
    chownSync(appDir, 65534, 65534);
    chmodSync(appDir, 0o750);
    const fresh = join(appDir, 'app.db');
    assertExit(await runCli(['restore', url, fresh]), 0);
    const f = statSync(fresh);
    assert.deepEqual([f.uid, f.gid, (f.mode & 0o7777).toString(8)], [65534, 65534, '640']);
  });

  it('--at needs a zone; the resolved snapshot and its time are printed', async (t) => {
    const dir = tempDir(t);
    const { url, id } = await snapshotted(dir);
    for (const bad of ['2026-11-24', '2026-11-24T01:00:00', 'yesterday']) {
      const r = await runCli(['restore', url, join(dir, 'x.db'), '--at', bad]);
      assertExit(r, 2);
      assert.match(r.stderr, /ISO 8601 time with a zone, like 2026-11-24T01:00:00Z/);
    }
    const later = new Date(Date.now() + 3600_000);
    const offset = `${later.toISOString().slice(0, 19)}+00:00`;
    const r = await runCli(['restore', url, join(dir, 'at.db'), '--at', offset, '--json']);
    assertExit(r, 0);
    assert.equal(r.json.id, id);
    assert.match(r.json.createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const text = await runCli(['restore', url, join(dir, 'at2.db'), '--at', offset]);
    assertExit(text, 0);
    assert.ok(text.stdout.includes(`restored snapshot ${id} (taken ${r.json.createdAt})`), text.stdout);
  });

  it('--force over a symlink replaces the file it points to and keeps the link', async (t) => {
    const dir = tempDir(t);
    const { url, digest } = await snapshotted(dir);
    mkdirSync(join(dir, 'data'));
    const real = join(dir, 'data', 'app.db');
    createDatabase(real, { rows: 3 });
    const link = join(dir, 'app.db');
    symlinkSync(real, link);
    const refused = await runCli(['restore', url, link]);
    assertExit(refused, 6);
    const r = await runCli(['restore', url, link, '--force', '--json']);
    assertExit(r, 0);
    assert.equal(r.json.path, real);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readlinkSync(link), real);
    assert.equal(fileDigest(real), digest);
  });
});

describe('restore: a target that cannot be written, a restore killed or interrupted', () => {
  it('a missing directory is exit 8 saying create it', async (t) => {
    const dir = tempDir(t);
    const { url } = await snapshotted(dir);
    const r = await runCli(['restore', url, join(dir, 'nope', 'app.db')]);
    assertExit(r, 8);
    assert.match(r.stderr, /nope does not exist: create it/);
  });

  it('a directory the user cannot write is exit 8 naming it, before anything is downloaded', { skip: !isRoot && 'needs root to run as a second user' }, async (t) => {
    const dir = tempDir(t);
    chmodSync(dir, 0o755);
    const { url, vault } = await snapshotted(dir);
    spawnSync('chmod', ['-R', 'a+rX', vault]);
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o755 });
    const r = await runCli(['restore', url, join(locked, 'app.db')], { asUser: 'nobody' });
    assertExit(r, 8);
    assert.match(r.stderr, new RegExp(`${locked}/app.db: permission denied; run as a user who can write ${locked}`));
    assert.deepEqual(readdirSync(locked), []);
  });

  it('a disk too small for the database is exit 8 with the space needed, and leaves nothing', { skip: !isRoot && 'needs root to mount a tmpfs' }, async (t) => {
    const { url, out: small } = await largeVault(t, 12 * 1024 * 1024);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', small]);
    if (mounted.status !== 0) return t.skip(`cannot mount a tmpfs here: ${String(mounted.stderr).trim()}`);
    try {
      const r = await runCli(['restore', url, join(small, 'app.db')]);
      assertExit(r, 8);
      assert.match(r.stderr, /the database needs 12\.\d MiB and .* free/);
      assert.deepEqual(readdirSync(small), []);
    } finally {
      spawnSync('umount', [small]);
    }
  });

  it('a disk that fills during the restore is exit 8 naming the target, and the temp file is removed', { skip: !isRoot && 'needs root to mount a tmpfs' }, async (t) => {
    const { url, out } = await largeVault(t, 64 * 1024 * 1024);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', out]);
    if (mounted.status !== 0) return t.skip(`cannot mount a tmpfs here: ${String(mounted.stderr).trim()}`);
    try {
      const target = join(out, 'app.db');
      const { child, finished } = spawnCli(['restore', url, target]);
      await tempFileAppears(out);
      // Another writer takes what is left once the restore has checked the free space (racing the restore's
      // own writes, so until the disk says it is full).
      fillDisk(join(out, 'filler'));
      const r = await finished;
      assert.equal(child.exitCode, 8, describeRun(r));
      assert.match(r.stderr, new RegExp(`${target}: the disk is full \\(the database needs 64\\.\\d MiB\\); free space there`));
      assert.deepEqual(readdirSync(out), ['filler'], 'no temp file and no target are left');
    } finally {
      spawnSync('umount', [out]);
    }
  });

  it('kill -9 mid-restore leaves a temp file that the next restore of that target removes', async (t) => {
    const { url, out, target } = await largeVault(t, 96 * 1024 * 1024);
    const { child, finished } = spawnCli(['restore', url, target]);
    await tempFileAppears(out);
    child.kill('SIGKILL');
    await finished;
    const leaked = readdirSync(out);
    assert.equal(leaked.length, 1, `one temp file: ${leaked.join(', ')}`);
    assert.match(leaked[0]!, new RegExp(`^\\.app\\.db\\.pagevault-.+-${child.pid}-[0-9a-f]{8}$`));
    assert.ok(!existsSync(target));

    const r = await runCli(['restore', url, target]);
    assertExit(r, 0);
    assert.deepEqual(readdirSync(out), ['app.db'], 'the stale temp file is gone');
  });

  it('SIGTERM during the integrity check of a large restore exits 143 at once and leaves nothing', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'rows.db');
    // Many small rows under two indexes: integrity_check takes seconds, far longer than the download.
    const d = new Database(db);
    d.pragma('journal_mode = off');
    d.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b INTEGER); CREATE INDEX ta ON t(a); CREATE INDEX tb ON t(b);');
    d.exec('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 900000) INSERT INTO t SELECT x, hex(randomblob(16)), random() FROM c');
    d.close();
    const url = `file://${join(dir, 'vault')}`;
    assertExit(await runCli(['snapshot', db, url]), 0);
    const out = join(dir, 'out');
    mkdirSync(out);
    const { child, finished } = spawnCli(['restore', url, join(out, 'app.db')]);
    let verifying = false;
    child.stderr!.on('data', (chunk: string) => (verifying ||= chunk.includes('verifying the restored database')));
    const deadline = Date.now() + 60_000;
    while (!verifying && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.ok(verifying, 'the restore reached its integrity check');
    await new Promise((r) => setTimeout(r, 300));
    const signalled = Date.now();
    child.kill('SIGTERM');
    const r = await finished;
    const took = Date.now() - signalled;
    assertExit(r, 143);
    // The check alone takes about 3 s here: an exit that waited for it would take over 2 s.
    assert.ok(took < 1200, `exited ${took} ms after the signal`);
    assert.deepEqual(readdirSync(out), [], 'no target and no temp file');
  });

  it('a restore interrupted by SIGINT exits 130 and does not touch the target', async (t) => {
    const { url, out, target } = await largeVault(t, 96 * 1024 * 1024);
    createDatabase(target, { rows: 3 });
    const before = sha256File(target);
    const { child, finished } = spawnCli(['restore', url, target, '--force']);
    await tempFileAppears(out);
    child.kill('SIGINT');
    const r = await finished;
    assertExit(r, 130);
    assert.equal(sha256File(target), before);
    assert.deepEqual(readdirSync(out), ['app.db'], 'the temp file is removed');
  });
});

/** Writes `path` until the file system has no space left. */
function fillDisk(path: string): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(1024 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}
