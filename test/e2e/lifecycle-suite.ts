// Retention and garbage collection end to end, written once for every vault backend: prune with each rule and
// --dry-run, the concurrent-host race (a slow incremental snapshot in its own process while another host
// snapshots --full and prunes its parent away), two prunes at once, prune killed with SIGKILL at random moments,
// and the space bound with repack on write. Every snapshot a case keeps is restored and compared with the source.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { listSnapshots, prune, restore, snapshot } from '../../src/index.ts';
import { describeRun, runCli, spawnCli } from '../helpers/cli.ts';
import { fileDigest, tempDir } from '../helpers/sqlite.ts';
import { assertExit, type Target } from './suite.ts';

export interface LifecycleScale {
  /** Rounds of the concurrent-host race. */
  races: number;
  /** Prunes killed with SIGKILL. */
  kills: number;
  /** Rounds of two prunes at once. */
  pairs: number;
}

/** The grace period of the cases: short, so that the second phase comes within the test. */
const GRACE = 3000;
const GRACE_FLAG = ['--grace', `${GRACE}ms`];

/** A table of 3 KB random blobs, one page each: an update rewrites exactly the pages of the rows it names. */
function createBlobDatabase(path: string, rows: number): void {
  const db = new Database(path);
  db.pragma('journal_mode = wal');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)');
  const insert = db.prepare('INSERT INTO t(b) VALUES (randomblob(3000))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run();
  })();
  db.close();
}

function rewrite(path: string, from: number, count: number): void {
  const db = new Database(path);
  db.prepare('UPDATE t SET b = randomblob(3000) WHERE id >= ? AND id < ?').run(from, from + count);
  db.close();
}

export function lifecycleSuite(name: string, start: () => Promise<Target>, scale: LifecycleScale): void {
  describe(`retention and garbage collection on ${name}`, () => {
    let target: Target;
    const cli = (args: string[]) => runCli(args, { env: target.env });
    const lib = (url: string) => ({ url, storageOptions: target.storageOptions });

    before(async () => {
      target = await start();
    });
    after(async () => {
      await target?.stop();
    });

    /** Restores every snapshot the vault lists and compares it with the digest recorded for it. */
    async function everyListedRestores(t: TestContext, url: string, digests: Map<string, string>): Promise<string[]> {
      const { snapshots } = await listSnapshots(lib(url));
      const dir = tempDir(t);
      for (const s of snapshots) {
        assert.equal(s.damaged, undefined, `snapshot ${s.id} reads`);
        const out = join(dir, `${s.id}.db`);
        await restore({ ...lib(url), path: out, snapshot: s.id });
        assert.equal(fileDigest(out), digests.get(s.id), `snapshot ${s.id} restores to its source's state`);
        rmSync(out);
      }
      return snapshots.map((s) => s.id);
    }

    /** After the marks have aged: exactly the kept snapshots' objects remain, and no garbage collection object. */
    async function onlyReferencedRemain(url: string): Promise<void> {
      await sleep(GRACE + 300);
      await prune({ ...lib(url), policy: { keepLast: 1000 }, graceMs: GRACE }); // marks what a killed run left unmarked
      await sleep(GRACE + 300);
      const last = await prune({ ...lib(url), policy: { keepLast: 1000 }, graceMs: GRACE });
      assert.equal(last.waiting.objects, 0, JSON.stringify(last.waiting));
      const { readManifest } = await import('../../src/vault/repository.ts');
      const { openStorage } = await import('../../src/storage/index.ts');
      const storage = openStorage(url, target.storageOptions);
      const expected = new Set(['pagevault.json']);
      try {
        for (const s of (await listSnapshots({ ...lib(url), storage })).snapshots) {
          const m = await readManifest(storage, s.id);
          for (const k of [`manifests/${s.id}`, `extents/${s.id}`, ...m.packs.map((p) => p.key)]) expected.add(k);
        }
      } finally {
        await storage.close();
      }
      assert.deepEqual(await target.list(url), [...expected].sort());
    }

    it('prune with each rule and --dry-run; objects go only a grace period after they were marked; what is kept restores', async (t) => {
      const dir = tempDir(t);
      const db = join(dir, 'app.db');
      createBlobDatabase(db, 1500);
      const url = await target.freshUrl();
      const digests = new Map<string, string>();
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        if (i > 0) rewrite(db, 1 + i * 300, 200);
        const r = await snapshot({ ...lib(url), source: db, sourceCheck: 'none', ...(i === 1 ? { tags: ['weekly'] } : {}) });
        digests.set(r.id, fileDigest(db));
        ids.push(r.id);
      }

      const listing = await target.list(url);
      const dry = await cli(['prune', url, '--keep-last', '2', '--dry-run', '--json', ...GRACE_FLAG]);
      assertExit(dry, 0);
      assert.deepEqual(dry.json.forgotten, ids.slice(0, 2));
      assert.equal(dry.json.dryRun, true);
      assert.deepEqual(await target.list(url), listing, '--dry-run changed nothing');

      const none = await cli(['prune', url, '--json']);
      assertExit(none, 2);
      assert.equal(none.json.error.code, 'NO_POLICY');
      const within = await cli(['prune', url, '--keep-within', '1h', '--json', ...GRACE_FLAG]);
      assertExit(within, 0);
      assert.deepEqual(within.json.forgotten, [], '--keep-within 1h keeps snapshots taken seconds apart');

      const tagged = await cli(['prune', url, '--keep-tag', 'weekly', '--keep-last', '1', '--json', ...GRACE_FLAG]);
      assertExit(tagged, 0);
      assert.deepEqual(tagged.json.kept, [ids[1], ids[3]]);
      assert.deepEqual(tagged.json.forgotten, [ids[0], ids[2]]);
      assert.equal(tagged.json.deleted.objects, 0, 'the run that forgets deletes nothing');
      assert.ok(tagged.json.waiting.objects > 0 && tagged.json.requests.total > 0);
      const text = await cli(['ls', url]);
      assert.ok(!text.stdout.includes(ids[0]!) && text.stdout.includes(ids[1]!), text.stdout);
      await everyListedRestores(t, url, digests);

      const hourly = await cli(['prune', url, '--keep-hourly', '1', '--tz', 'Europe/Berlin', '--json', ...GRACE_FLAG]);
      assertExit(hourly, 0);
      assert.deepEqual(hourly.json.kept, [ids[3]], 'one hour bucket holds them all: its newest is kept');
      const badZone = await cli(['prune', url, '--keep-daily', '1', '--tz', 'Mars/Olympus']);
      assertExit(badZone, 2);

      await sleep(GRACE + 300);
      const late = await cli(['prune', url, '--keep-last', '1', '--json', ...GRACE_FLAG]);
      assertExit(late, 0);
      assert.ok(late.json.deleted.objects > 0 && late.json.deleted.bytes > 0, describeRun(late));
      assert.deepEqual(await everyListedRestores(t, url, digests), [ids[3]]);
      await onlyReferencedRemain(url);
    });

    it('a slow incremental snapshot on another host while this host snapshots --full and prunes its parent: every listed snapshot restores', async (t) => {
      const dir = tempDir(t);
      const outcomes: string[] = [];
      for (let round = 0; round < scale.races; round++) {
        const db = join(dir, `race-${round}.db`);
        createBlobDatabase(db, 1500);
        const url = await target.freshUrl();
        const digests = new Map<string, string>();
        const parent = await snapshot({ ...lib(url), source: db, sourceCheck: 'none' });
        digests.set(parent.id, fileDigest(db));
        rewrite(db, 1, 600); // about 2 MB for the incremental to upload
        const state = fileDigest(db);
        // Host A: throttled so that it takes from a fraction of its window to twice it.
        const rate = [6400, 600, 1600, 300, 3200][round % 5]!;
        const a = spawnCli(['snapshot', db, url, '--json', '--source-check', 'none', '--max-bytes-per-second', `${rate}KiB`, ...GRACE_FLAG], { env: target.env });
        // Host B, at a different moment each round: a full snapshot, a prune that forgets A's parent, and a prune
        // a while later that may delete its packs.
        await sleep((round * 397) % 1500);
        // (B's own snapshot and prunes run one after another: its snapshot needs no short window.)
        const full = await cli(['snapshot', db, url, '--full', '--json', '--source-check', 'none']);
        assertExit(full, 0);
        digests.set(full.json.id, state);
        assertExit(await cli(['prune', url, '--keep-last', '1', '--json', ...GRACE_FLAG]), 0);
        await sleep((round * 1733) % (GRACE + 1000));
        assertExit(await cli(['prune', url, '--keep-last', '1', '--json', ...GRACE_FLAG]), 0);
        const ra = await a.finished;
        if (ra.code === 0) {
          digests.set(ra.json.id, state);
          outcomes.push(`published (parent ${ra.json.parent === parent.id ? 'forgotten' : 'the full one'})`);
        } else {
          assert.equal(ra.code, 11, describeRun(ra));
          assert.equal(ra.json.error.code, 'SNAPSHOT_EXPIRED');
          assert.match(ra.stderr, /nothing was published/);
          outcomes.push('refused to publish');
        }
        await everyListedRestores(t, url, digests);
        if (round === scale.races - 1) {
          // Whatever A left (a published snapshot's packs, or an unpublished one's) goes in time.
          await onlyReferencedRemain(url);
          await everyListedRestores(t, url, digests);
        }
      }
      t.diagnostic(`host A: ${outcomes.join('; ')}`);
    });

    it('two prunes at once never lose a snapshot', async (t) => {
      const dir = tempDir(t);
      const db = join(dir, 'app.db');
      createBlobDatabase(db, 1200);
      const url = await target.freshUrl();
      const digests = new Map<string, string>();
      for (let round = 0; round < scale.pairs; round++) {
        for (let i = 0; i < 3; i++) {
          rewrite(db, 1 + ((round * 3 + i) * 173) % 1000, 150);
          const r = await snapshot({ ...lib(url), source: db, sourceCheck: 'none' });
          digests.set(r.id, fileDigest(db));
        }
        if (round > 0) await sleep(GRACE + 300);
        const [x, y] = await Promise.all([
          runCli(['prune', url, '--keep-last', '2', '--json', ...GRACE_FLAG], { env: target.env }),
          runCli(['prune', url, '--keep-last', '3', '--json', ...GRACE_FLAG], { env: target.env }),
        ]);
        assertExit(x, 0);
        assertExit(y, 0);
        const kept = await everyListedRestores(t, url, digests);
        assert.ok(kept.length >= 2, `the newest two survive both: ${kept.join(', ')}`);
      }
      await onlyReferencedRemain(url);
      await everyListedRestores(t, url, digests);
    });

    it(`prune killed with SIGKILL at random moments (${scale.kills} runs) leaves every listed snapshot restorable; the next prune finishes`, async (t) => {
      const dir = tempDir(t);
      const db = join(dir, 'app.db');
      createBlobDatabase(db, 1200);
      const url = await target.freshUrl();
      const digests = new Map<string, string>();
      const add = async () => {
        rewrite(db, 1 + Math.floor(Math.random() * 1000), 150);
        const r = await snapshot({ ...lib(url), source: db, sourceCheck: 'none' });
        digests.set(r.id, fileDigest(db));
      };
      for (let i = 0; i < 3; i++) await add();
      let killed = 0;
      for (let run = 0; run < scale.kills; run++) {
        await add();
        if (run % 4 === 3) await sleep(GRACE + 300); // so that some runs have deletions to be killed in
        const p = spawnCli(['prune', url, '--keep-last', '2', '--json', ...GRACE_FLAG], { env: target.env });
        await sleep(300 + Math.random() * 1700);
        if (p.child.exitCode === null) {
          p.child.kill('SIGKILL');
          killed++;
        }
        const r = await p.finished;
        assert.ok(r.signal === 'SIGKILL' || r.code === 0, describeRun(r));
        await everyListedRestores(t, url, digests);
      }
      t.diagnostic(`${killed} of ${scale.kills} prunes were killed mid-run`);
      assert.ok(killed > 0, 'some prune was killed before it finished');
      await onlyReferencedRemain(url);
      await everyListedRestores(t, url, digests);
    });

    it('verify: clean; a deleted pack, a truncated pack and (with --read-data only) a flipped byte are named with the snapshots they break', async (t) => {
      const dir = tempDir(t);
      const db = join(dir, 'app.db');
      createBlobDatabase(db, 1500);
      const url = await target.freshUrl();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        if (i > 0) rewrite(db, 1 + i * 400, 300);
        ids.push((await snapshot({ ...lib(url), source: db, sourceCheck: 'none' })).id);
      }
      const clean = await cli(['verify', url, '--read-data', '--json']);
      assertExit(clean, 0);
      assert.equal(clean.json.ok, true);
      assert.equal(clean.json.snapshots, 3);
      assert.equal(clean.json.packsRead, clean.json.packs, 'each pack read once');
      const packs = (await target.list(url)).filter((k) => k.startsWith('packs/'));
      const sizes = await Promise.all(packs.map(async (k) => (await target.read(url, k)).length));
      assert.ok(clean.json.bytesRead <= sizes.reduce((a, b) => a + b, 0), 'no byte read twice');
      const subset = await cli(['verify', url, '--read-data-subset', '1', '--json']);
      assertExit(subset, 0);
      assert.equal(subset.json.packsRead, 1, 'one pack at least');

      // The first snapshot's pack is shared by all three; each later one wrote its own.
      const shared = packs.find((k) => k.startsWith(`packs/${ids[0]}/`))!;
      const own = packs.find((k) => k.startsWith(`packs/${ids[2]}/`))!;
      const bytes = await target.read(url, shared);
      const flipped = Buffer.from(bytes);
      flipped[Math.floor(flipped.length / 3)]! ^= 0x40;
      await target.write(url, shared, flipped);
      const structural = await cli(['verify', url, '--json']);
      assertExit(structural, 0);
      const deep = await cli(['verify', url, '--read-data', '--json']);
      assertExit(deep, 5);
      assert.equal(deep.json.error.code, 'VAULT_DAMAGED');
      const hit = deep.json.damaged.find((d: { object: string }) => d.object === shared);
      assert.ok(hit && /CHUNK_(DIGEST|DAMAGED)/.test(hit.code), describeRun(deep));
      assert.ok(hit.snapshots.length >= 1 && hit.snapshots.every((s: string) => ids.includes(s)), JSON.stringify(hit));
      const text = await cli(['verify', url, '--read-data']);
      assertExit(text, 5);
      assert.ok(text.stdout.includes(`DAMAGED ${shared}`), text.stdout);
      await target.write(url, shared, bytes);

      await target.write(url, own, (await target.read(url, own)).subarray(0, 10));
      const truncated = await cli(['verify', url, '--json']);
      assertExit(truncated, 5);
      assert.deepEqual(truncated.json.damaged.map((d: { object: string; code: string; snapshots: string[] }) => [d.object, d.code, d.snapshots]), [[own, 'PACK_TRUNCATED', [ids[2]]]]);
      const { openStorage } = await import('../../src/storage/index.ts');
      const storage = openStorage(url, target.storageOptions);
      await storage.deleteMany([shared]);
      await storage.close();
      const missing = await cli(['verify', url, '--json']);
      assertExit(missing, 5);
      const gone = missing.json.damaged.find((d: { object: string }) => d.object === shared);
      assert.deepEqual([gone.code, gone.snapshots], ['PACK_MISSING', ids], 'a pack all three use breaks all three');
      assert.deepEqual(missing.json.brokenSnapshots, ids);
      const one = await cli(['verify', url, '--snapshot', ids[1]!, '--json']);
      assertExit(one, 5);
      assert.equal(one.json.snapshots, 1);
      assert.deepEqual(one.json.brokenSnapshots, [ids[1]]);
    });

    it('space stays bounded: after 30 incrementals that each rewrite a different 10%, a prune and one more snapshot, the vault is at most 1.5x a fresh full snapshot', async (t) => {
      const dir = tempDir(t);
      const db = join(dir, 'app.db');
      const rows = 2000;
      createBlobDatabase(db, rows);
      const url = await target.freshUrl();
      await snapshot({ ...lib(url), source: db, sourceCheck: 'none' });
      let seed = 11;
      for (let i = 0; i < 30; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        rewrite(db, 1 + (seed % (rows - rows / 10)), rows / 10);
        await snapshot({ ...lib(url), source: db, sourceCheck: 'none' });
      }
      await prune({ ...lib(url), policy: { keepLast: 1 }, graceMs: GRACE });
      const last = await snapshot({ ...lib(url), source: db, sourceCheck: 'none' });
      const digest = fileDigest(db);
      await prune({ ...lib(url), policy: { keepLast: 1 }, graceMs: GRACE });
      await onlyReferencedRemain(url);
      const stored = (await prune({ ...lib(url), policy: { keepLast: 1 }, graceMs: GRACE, dryRun: true })).stored.bytes;
      const fresh = await target.freshUrl();
      await snapshot({ ...lib(fresh), source: db, sourceCheck: 'none', full: true });
      const freshBytes = (await prune({ ...lib(fresh), policy: { keepLast: 1 }, graceMs: GRACE, dryRun: true })).stored.bytes;
      t.diagnostic(`vault ${stored} bytes, fresh full snapshot ${freshBytes} bytes: ${(stored / freshBytes).toFixed(2)}x; the last snapshot repacked ${last.repacked.length} packs`);
      assert.ok(stored <= 1.5 * freshBytes, `${stored} <= 1.5 x ${freshBytes}`);
      await everyListedRestores(t, url, new Map([[last.id, digest]]));
    });
  });
}
