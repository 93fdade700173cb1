// The CLI cases that every vault backend must pass, written once: a round trip, an incremental snapshot after
// a small change, a flipped byte in a pack and in a manifest, and (for S3) a missing bucket. Each backend's
// test file supplies a Target: how to name a fresh vault, the CLI's environment, and how to inspect and tamper
// with the stored objects without going through pagevault.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import type { StorageOptions } from '../../src/index.ts';
import { describeRun, runCli, type CliResult } from '../helpers/cli.ts';
import { createDatabase, fileDigest, integrityCheck, tempDir } from '../helpers/sqlite.ts';

export interface Target {
  /** A URL of a fresh, empty vault. */
  freshUrl(): Promise<string>;
  /** Variables for the CLI (endpoint, credentials). */
  env: Record<string, string>;
  /** The same for the library in this process (snapshot(), restore(), prune() ...). */
  storageOptions: StorageOptions;
  /** Keys stored under a vault, relative to it, sorted. */
  list(url: string): Promise<string[]>;
  read(url: string, key: string): Promise<Buffer>;
  /** Replaces an object's bytes (tampering). */
  write(url: string, key: string, data: Buffer): Promise<void>;
  /** A vault URL in a bucket that does not exist (S3 only). */
  missingBucketUrl?: string;
  /** A secret the CLI was given, which must never appear in its output. */
  secret?: string;
  stop(): Promise<void>;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Asserts the exit code, with the run's output in the message. */
export function assertExit(r: CliResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

/** Flips the lowest bit of the middle byte. */
export function flipByte(data: Buffer): void {
  const i = Math.floor(data.length / 2);
  data[i] = data[i]! ^ 0x01;
}

/** One small change: an unindexed column of one row, so one leaf page and the header page change. */
export function touchDatabase(path: string): void {
  const db = new Database(path);
  try {
    db.prepare(`UPDATE items SET doc = '{"changed":true}' WHERE id = 17`).run();
  } finally {
    db.close();
  }
}

export function cliSuite(name: string, start: () => Promise<Target>): void {
  describe(`pagevault CLI on ${name}`, () => {
    let target: Target;
    const cli = (args: string[], timeoutMs?: number) => runCli(args, { env: target.env, ...(timeoutMs ? { timeoutMs } : {}) });
    const noSecret = (r: CliResult) => {
      if (target.secret) assert.ok(!r.stderr.includes(target.secret) && !r.stdout.includes(target.secret), `the secret leaked:\n${describeRun(r)}`);
    };

    before(async () => {
      target = await start();
    });
    after(async () => {
      await target?.stop();
    });

    it('round trip, then an incremental snapshot after a small change uploads little; each snapshot restores by id', async (t) => {
      const dir = tempDir(t);
      const db = join(dir, 'app.db');
      createDatabase(db, { journalMode: 'wal', rows: 2000 });
      const first = fileDigest(db);
      const url = await target.freshUrl();

      const full = await cli(['snapshot', db, url, '--json']);
      assertExit(full, 0);
      const s1 = full.json;
      for (const field of ['id', 'pageSize', 'pageCount', 'bytesRead', 'bytesUploaded', 'chunksNew', 'chunksReused', 'durationMs']) {
        assert.ok(field in s1, `snapshot --json lacks ${field}: ${full.stdout}`);
      }
      assert.equal(s1.bytesRead, s1.pageCount * s1.pageSize);
      assert.equal(s1.chunksReused, 0);
      assert.ok(s1.chunksNew > 4, `a ${s1.bytesRead}-byte database should take several chunks, got ${s1.chunksNew}`);
      noSecret(full);

      const restored = join(dir, 'restored.db');
      const r1 = await cli(['restore', url, restored, '--json']);
      assertExit(r1, 0);
      assert.equal(r1.json.id, s1.id);
      assert.equal(fileDigest(restored), first);
      assert.equal(integrityCheck(restored), 'ok');

      touchDatabase(db);
      const second = fileDigest(db);
      const incr = await cli(['snapshot', db, url, '--json']);
      assertExit(incr, 0);
      const s2 = incr.json;
      assert.equal(s2.parent, s1.id);
      assert.ok(s2.chunksNew >= 1 && s2.chunksNew <= 3, `one changed row should touch at most 3 chunks (its leaf page, the header), got ${s2.chunksNew}`);
      assert.ok(s2.chunksReused >= s1.chunksNew - 3, `unchanged chunks should be reused: ${incr.stdout}`);
      assert.ok(s2.bytesUploaded * 4 < s1.bytesUploaded, `incremental uploaded ${s2.bytesUploaded} bytes, the full one ${s1.bytesUploaded}`);

      const ls = await cli(['ls', url, '--json']);
      assertExit(ls, 0);
      assert.deepEqual(
        ls.json.snapshots.map((s: { id: string }) => s.id),
        [s1.id, s2.id],
      );
      for (const s of ls.json.snapshots) assert.ok(!Number.isNaN(Date.parse(s.createdAt)), `createdAt ${s.createdAt}`);
      assert.deepEqual(
        ls.json.snapshots.map((s: { bytesUploaded: number }) => s.bytesUploaded),
        [s1.bytesUploaded, s2.bytesUploaded],
        'ls reports what each snapshot said it uploaded',
      );
      const text = await cli(['ls', url]);
      assertExit(text, 0);
      assert.match(text.stdout, new RegExp(`${s1.id}.*\\n.*${s2.id}`));

      const latest = join(dir, 'latest.db');
      assertExit(await cli(['restore', url, latest]), 0);
      assert.equal(fileDigest(latest), second);
      const older = join(dir, 'older.db');
      const byId = await cli(['restore', url, older, '--snapshot', s1.id, '--quick-check', '--json']);
      assertExit(byId, 0);
      assert.equal(byId.json.check, 'quick_check');
      assert.equal(fileDigest(older), first);
    });

    it('a flipped byte in a pack, then in the manifest: restore exits 5 naming the object, the target untouched', async (t) => {
      const dir = tempDir(t);
      const db = join(dir, 'app.db');
      createDatabase(db, { rows: 1500 });
      const url = await target.freshUrl();
      const snap = await cli(['snapshot', db, url, '--json']);
      assertExit(snap, 0);
      const id: string = snap.json.id;
      const keys = await target.list(url);
      const pack = keys.find((k) => k.startsWith(`packs/${id}/`));
      const manifest = `manifests/${id}`;
      assert.ok(pack && keys.includes(manifest), `expected a pack and the manifest, got ${keys.join(', ')}`);

      // The target exists and --force is given, so the restore gets as far as reading and verifying.
      const existing = join(dir, 'existing.db');
      createDatabase(existing, { rows: 10 });
      const before = sha256File(existing);

      const packBytes = await target.read(url, pack);
      flipByte(packBytes);
      await target.write(url, pack, packBytes);
      const badPack = await cli(['restore', url, existing, '--force']);
      assertExit(badPack, 5);
      assert.match(badPack.stderr, /^pagevault: /m);
      assert.ok(badPack.stderr.includes(pack), `the message should name ${pack}:\n${badPack.stderr}`);
      assert.doesNotMatch(badPack.stderr, /\n\s+at /, 'no stack trace without --verbose');
      assert.equal(sha256File(existing), before);
      noSecret(badPack);

      const manifestBytes = await target.read(url, manifest);
      flipByte(manifestBytes);
      await target.write(url, manifest, manifestBytes);
      const badManifest = await cli(['restore', url, existing, '--force', '--verbose']);
      assertExit(badManifest, 5);
      assert.ok(badManifest.stderr.includes(id), `the message should name the manifest of ${id}:\n${badManifest.stderr}`);
      assert.match(badManifest.stderr, /\n\s+at /, '--verbose prints the stack');
      assert.equal(sha256File(existing), before);
      noSecret(badManifest);
    });

    if (name !== 'file') {
      it('a missing bucket is exit 4, naming the bucket', async (t) => {
        const dir = tempDir(t);
        const db = join(dir, 'app.db');
        createDatabase(db, { rows: 50 });
        const url = target.missingBucketUrl!;
        const bucket = new URL(url).host;
        for (const args of [['snapshot', db, url], ['ls', url]]) {
          const r = await cli(args);
          assertExit(r, 4);
          assert.ok(r.stderr.includes(bucket), `the message should name ${bucket}:\n${r.stderr}`);
          noSecret(r);
        }
      });
    }
  });
}
