// verify() through the library on file:// vaults: what the CLI cases (lifecycle-suite.ts) do not reach.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { snapshot, verify } from '../../src/index.ts';
import { createDatabase, tempDir } from '../helpers/sqlite.ts';
import { touchDatabase } from '../e2e/suite.ts';

async function vaultOfTwo(t: import('node:test').TestContext) {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { journalMode: 'wal', rows: 1500 });
  const vault = join(dir, 'vault');
  const url = `file://${vault}`;
  const a = await snapshot({ source: db, url, sourceCheck: 'none' });
  touchDatabase(db);
  const b = await snapshot({ source: db, url, sourceCheck: 'none' });
  return { vault, url, ids: [a.id, b.id] };
}

test('a damaged manifest and a missing extent table are each named, with the one snapshot they break', async (t) => {
  const { vault, url, ids } = await vaultOfTwo(t);
  writeFileSync(join(vault, 'manifests', ids[0]!), 'garbage');
  rmSync(join(vault, 'extents', ids[1]!));
  const r = await verify({ url, readData: true });
  assert.equal(r.ok, false);
  assert.deepEqual(
    r.damaged.map((d) => [d.object, d.code, d.snapshots]),
    [
      [`extents/${ids[1]}`, 'EXTENTS_MISSING', [ids[1]]],
      [`manifests/${ids[0]}`, 'MANIFEST_DAMAGED', [ids[0]]],
    ],
  );
  assert.deepEqual(r.brokenSnapshots, ids);
});

test('bad options are refused before anything is read, and an abort stops it', async (t) => {
  const { url } = await vaultOfTwo(t);
  for (const readDataSubset of [0, -1, 101, Number.NaN]) {
    await assert.rejects(verify({ url, readDataSubset }), { name: 'UsageError', code: 'BAD_OPTION' });
  }
  await assert.rejects(verify({ url, snapshot: 'latest' }), { name: 'UsageError', code: 'BAD_SNAPSHOT_ID' });
  await assert.rejects(verify({ url, snapshot: '20990101T000000000Z-0000000000' }), { name: 'StorageError', code: 'NOT_FOUND' });
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  await assert.rejects(verify({ url, readData: true, signal: controller.signal }), { name: 'AbortedError' });
});
