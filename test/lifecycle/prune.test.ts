// prune() and forget() through the library on file:// vaults with a grace period of a second: what is forgotten,
// marked, waits and is deleted, checked on the vault's objects; every kept snapshot restored and compared.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { ConflictError, forget, prune, restore, snapshot, type SnapshotResult } from '../../src/index.ts';
import { openStorage } from '../../src/storage/index.ts';
import { checkPublishable } from '../../src/snapshot/publish-check.ts';
import { createDatabase, fileDigest, integrityCheck, tempDir } from '../helpers/sqlite.ts';
import pino from 'pino';

const GRACE = 1000;

/** Every file under the vault, relative, with size and mtime: a dry run must leave all of it as it was. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => {
      const path = join(d.parentPath, d.name);
      const st = statSync(path);
      return `${path.slice(dir.length + 1)} ${st.size} ${st.mtimeMs}`;
    })
    .sort();
}

function keys(dir: string, prefix: string): string[] {
  return tree(dir)
    .map((l) => l.split(' ')[0]!)
    .filter((k) => k.startsWith(prefix));
}

function change(path: string, from: number, to: number): void {
  const db = new Database(path);
  db.prepare(`UPDATE items SET doc = json_object('v', hex(randomblob(200))) WHERE id BETWEEN ? AND ?`).run(from, to);
  db.close();
}

interface Fixture {
  dir: string;
  db: string;
  vault: string;
  url: string;
  snaps: { result: SnapshotResult; digest: string }[];
}

/** A vault of `n` snapshots, each after a change to a different range of rows. */
async function fixture(t: TestContext, n: number): Promise<Fixture> {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { journalMode: 'wal', rows: 3000 });
  const vault = join(dir, 'vault');
  const url = `file://${vault}`;
  const snaps = [];
  for (let i = 0; i < n; i++) {
    if (i > 0) change(db, i * 500, i * 500 + 400);
    snaps.push({ result: await snapshot({ source: db, url, sourceCheck: "none" }), digest: fileDigest(db) });
  }
  return { dir, db, vault, url, snaps };
}

async function restoresAs(f: Fixture, id: string, digest: string): Promise<void> {
  const out = join(f.dir, `restored-${id}.db`);
  rmSync(out, { force: true });
  await restore({ url: f.url, path: out, snapshot: id });
  assert.equal(fileDigest(out), digest, `snapshot ${id} restores to the source as it was`);
  assert.equal(integrityCheck(out), 'ok');
}

/** The pack keys the kept manifests list, from the manifests on disk, through the library. */
async function referencedPacks(url: string): Promise<Set<string>> {
  const { listSnapshotIds, readManifest } = await import('../../src/vault/repository.ts');
  const storage = openStorage(url);
  try {
    const packs = new Set<string>();
    for (const id of await listSnapshotIds(storage)) for (const p of (await readManifest(storage, id)).packs) packs.add(p.key);
    return packs;
  } finally {
    await storage.close();
  }
}

test('prune --keep-last 1: forgets at once, marks what the kept one does not reference, deletes it only after the grace period', async (t) => {
  const f = await fixture(t, 4);
  const newest = f.snaps[3]!;
  const before = keys(f.vault, 'packs/');
  const first = await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  assert.deepEqual(first.kept, [newest.result.id]);
  assert.deepEqual(first.forgotten, f.snaps.slice(0, 3).map((s) => s.result.id));
  assert.deepEqual(keys(f.vault, 'manifests/'), [`manifests/${newest.result.id}`], 'the forgotten manifests are gone at once');
  assert.deepEqual(keys(f.vault, 'packs/'), before, 'no pack is deleted by the run that forgets');
  assert.equal(first.deleted.objects, 0);
  assert.ok(first.waiting.objects > 0, 'the forgotten snapshots leave unreferenced objects waiting');
  assert.equal(keys(f.vault, 'gc/marks/').length, 3, 'one forget mark per forgotten snapshot');
  assert.deepEqual(keys(f.vault, 'gc/runs/'), [], 'the run record goes at the end of the run');
  assert.ok(first.requests.total > 0 && (first.requests.byOp.get ?? 0) >= 4, `requests are counted: ${JSON.stringify(first.requests)}`);
  // Within the grace period a second prune deletes nothing.
  const early = await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  assert.equal(early.deleted.objects, 0);
  assert.deepEqual(keys(f.vault, 'packs/'), before);
  await restoresAs(f, newest.result.id, newest.digest);

  await sleep(GRACE + 200);
  const late = await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  const live = await referencedPacks(f.url);
  assert.ok(late.deleted.objects > 0 && late.deleted.bytes > 0, JSON.stringify(late.deleted));
  assert.deepEqual(keys(f.vault, 'packs/'), [...live].sort(), 'exactly the packs the kept snapshot references remain');
  assert.deepEqual(keys(f.vault, 'extents/'), [`extents/${newest.result.id}`]);
  assert.deepEqual(keys(f.vault, 'gc/'), [], 'the marks are done with and removed');
  assert.equal(late.waiting.objects, 0);
  assert.equal(late.stored.objects, keys(f.vault, '').filter((k) => k !== 'pagevault.json').length);
  await restoresAs(f, newest.result.id, newest.digest);
});

test('every rule keeps what it names; kept snapshots restore after their neighbours are deleted', async (t) => {
  const f = await fixture(t, 4);
  const tagged = f.snaps[1]!;
  // A tag added by hand would change the manifest's digest: snapshot again with a tag instead.
  change(f.db, 2000, 2100);
  const withTag = await snapshot({ source: f.db, url: f.url, sourceCheck: "none", tags: ['keep-me'] });
  const tagDigest = fileDigest(f.db);
  change(f.db, 2200, 2300);
  const last = await snapshot({ source: f.db, url: f.url, sourceCheck: "none" });
  const lastDigest = fileDigest(f.db);
  const r = await prune({ url: f.url, policy: { keepTags: ['keep-me'], keepWithinMs: 0 }, graceMs: GRACE });
  assert.deepEqual(r.kept, [withTag.id, last.id]);
  assert.deepEqual(r.decisions.find((d) => d.id === withTag.id)?.reasons, ['tag:keep-me']);
  assert.ok(r.forgotten.includes(tagged.result.id));
  await sleep(GRACE + 200);
  await prune({ url: f.url, policy: { keepLast: 2 }, graceMs: GRACE });
  await restoresAs(f, withTag.id, tagDigest);
  await restoresAs(f, last.id, lastDigest);
});

test('--dry-run reports and changes nothing, to the byte and the mtime', async (t) => {
  const f = await fixture(t, 3);
  await prune({ url: f.url, policy: { keepLast: 2 }, graceMs: GRACE });
  await sleep(GRACE + 200);
  const before = tree(f.vault);
  const dry = await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE, dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.deepEqual(dry.forgotten, [f.snaps[1]!.result.id]);
  assert.ok(dry.deleted.objects > 0, 'the first forgotten snapshot is past its grace period: the dry run says it would delete');
  assert.deepEqual(tree(f.vault), before);
});

test('a prune without a rule is refused before anything is read or written', async (t) => {
  const f = await fixture(t, 1);
  const before = tree(f.vault);
  await assert.rejects(prune({ url: f.url, policy: {}, graceMs: GRACE }), { name: 'UsageError', code: 'NO_POLICY' });
  await assert.rejects(prune({ url: f.url, policy: { keepLast: 1 }, graceMs: 10 }), { name: 'UsageError', code: 'BAD_OPTION' });
  assert.deepEqual(tree(f.vault), before);
});

test('forget: named snapshots go, a missing one fails before anything is written, and the rest restore', async (t) => {
  const f = await fixture(t, 3);
  const before = tree(f.vault);
  await assert.rejects(forget({ url: f.url, ids: ['20990101T000000000Z-0000000000'], graceMs: GRACE }), { name: 'StorageError', code: 'NOT_FOUND' });
  await assert.rejects(forget({ url: f.url, ids: ['nope'], graceMs: GRACE }), { name: 'UsageError', code: 'BAD_SNAPSHOT_ID' });
  assert.deepEqual(tree(f.vault), before, 'nothing written by a forget that failed');
  const middle = f.snaps[1]!.result.id;
  const r = await forget({ url: f.url, ids: [middle], graceMs: GRACE });
  assert.deepEqual(r.forgotten, [middle]);
  assert.ok(!keys(f.vault, 'manifests/').includes(`manifests/${middle}`));
  await sleep(GRACE + 200);
  await forget({ url: f.url, ids: [f.snaps[0]!.result.id], graceMs: GRACE });
  await sleep(GRACE + 200);
  await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  await restoresAs(f, f.snaps[2]!.result.id, f.snaps[2]!.digest);
});

test('a damaged manifest is kept and stops every deletion until it is forgotten by name', async (t) => {
  const f = await fixture(t, 3);
  const damaged = f.snaps[0]!.result.id;
  writeFileSync(join(f.vault, 'manifests', damaged), 'not a manifest');
  await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  await sleep(GRACE + 200);
  const blocked = await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  assert.deepEqual(blocked.damaged, [damaged]);
  assert.ok(blocked.kept.includes(damaged));
  assert.equal(blocked.deleted.objects, 0);
  assert.match(blocked.deletionBlocked ?? '', /cannot be read/);
  await forget({ url: f.url, ids: [damaged], graceMs: GRACE });
  await sleep(GRACE + 200);
  const done = await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  assert.equal(done.deletionBlocked, undefined);
  assert.ok(done.deleted.objects > 0);
  assert.deepEqual(keys(f.vault, 'packs/'), [...(await referencedPacks(f.url))].sort());
  await restoresAs(f, f.snaps[2]!.result.id, f.snaps[2]!.digest);
});

test('a killed snapshot\'s packs are marked, then deleted a grace period later', async (t) => {
  const f = await fixture(t, 1);
  const stray = 'packs/20260101T000000000Z-00000000aa/0000000001-0000000010';
  mkdirSync(join(f.vault, 'packs', '20260101T000000000Z-00000000aa'), { recursive: true });
  writeFileSync(join(f.vault, stray), Buffer.alloc(1000, 7));
  const first = await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  assert.deepEqual(first.marked, { objects: 1, bytes: 1000 });
  assert.ok(keys(f.vault, 'packs/').includes(stray));
  await sleep(GRACE + 200);
  const second = await prune({ url: f.url, policy: { keepLast: 1 }, graceMs: GRACE });
  assert.deepEqual(second.deleted, { objects: 1, bytes: 1000 });
  assert.ok(!keys(f.vault, 'packs/').includes(stray));
  await restoresAs(f, f.snaps[0]!.result.id, f.snaps[0]!.digest);
});

test('the publish check: a snapshot past its window, or whose parent was marked forgotten too long ago, publishes nothing', async (t) => {
  const f = await fixture(t, 2);
  const storage = openStorage(f.url);
  t.after(() => storage.close());
  const log = pino({ level: 'silent' });
  const signal = new AbortController().signal;
  const parent = f.snaps[0]!.result.id;
  const child = f.snaps[1]!.result.id; // its extent table exists: the check reads the store's clock from it
  const check = (startedAt: number, graceMs = 60_000) => checkPublishable({ storage, id: child, parent, startedAt, graceMs, signal, log });
  await check(performance.now());
  await assert.rejects(check(performance.now() - 40_000), (err: unknown) => err instanceof ConflictError && err.code === 'SNAPSHOT_EXPIRED' && /took 40\.0 s/.test(err.message));
  // A prune forgets the parent (a full snapshot is newer): a fresh mark leaves time to publish ...
  await forget({ url: f.url, ids: [parent], graceMs: 2000 });
  await checkPublishable({ storage, id: child, parent, startedAt: performance.now(), graceMs: 2000, signal, log });
  // ... a mark whose grace period is over does not. (The store's time is read from the snapshot's extent table,
  // which a real snapshot has just written: make it so.)
  await sleep(2100);
  utimesSync(join(f.vault, 'extents', child), new Date(), new Date());
  await assert.rejects(
    checkPublishable({ storage, id: child, parent, startedAt: performance.now(), graceMs: 2000, signal, log }),
    (err: unknown) => err instanceof ConflictError && err.code === 'SNAPSHOT_EXPIRED' && err.message.includes(`gc/marks/${parent}/`),
  );
});

test('a snapshot that runs past half its grace period publishes nothing and says why', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { journalMode: 'wal', rows: 3000 });
  const vault = join(dir, 'vault');
  await assert.rejects(
    snapshot({
      source: db,
      url: `file://${vault}`,
      graceMs: 1000,
      sourceCheck: 'none',
      // A host that sleeps mid-snapshot.
      onProgress: () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600),
    }),
    (err: unknown) => err instanceof ConflictError && err.code === 'SNAPSHOT_EXPIRED',
  );
  assert.deepEqual(keys(vault, 'manifests/'), [], 'nothing published');
});
