import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import {
  configKey,
  manifestKey,
  manifestPrefix,
  packKey,
  packPrefix,
  parsePackKey,
  snapshotIdFromManifestKey,
} from '../../src/vault/layout.ts';

const ID = '20261124T020304123Z-9f2c41d07a';

function isBadKey(err: unknown): boolean {
  return err instanceof UsageError && err.code === 'BAD_KEY';
}

test('keys: config, manifests and packs, with 10-digit pages and a seq suffix', () => {
  assert.equal(configKey, 'pagevault.json');
  assert.equal(manifestKey(ID), `manifests/${ID}`);
  assert.ok(manifestKey(ID).startsWith(manifestPrefix));
  assert.equal(snapshotIdFromManifestKey(manifestKey(ID)), ID);
  assert.equal(packPrefix(ID), `packs/${ID}/`);
  assert.equal(packKey(ID, 1, 64), `packs/${ID}/0000000001-0000000064`);
  assert.equal(packKey(ID, 65, 4294967294, 0), `packs/${ID}/0000000065-4294967294`);
  assert.equal(packKey(ID, 1, 64, 2), `packs/${ID}/0000000001-0000000064.2`);
  assert.ok(packKey(ID, 1, 64, 1).startsWith(packPrefix(ID)));
});

test('pack keys round-trip and sort by first page, a seq after its base', () => {
  const cases = [
    [1, 1, 0],
    [1, 262144, 0],
    [1, 262144, 1],
    [1, 262144, 999_999_999],
    [262145, 524288, 0],
    [9_999_999_999, 9_999_999_999, 3],
  ] as const;
  const keys = cases.map(([first, last, seq]) => packKey(ID, first, last, seq));
  cases.forEach(([firstPage, lastPage, seq], i) => {
    assert.deepEqual(parsePackKey(keys[i]!), { snapshotId: ID, firstPage, lastPage, seq });
  });
  assert.deepEqual([...keys].sort(), keys);
});

test('nonsense keys and arguments are refused with BAD_KEY', () => {
  for (const key of [
    'manifests/',
    `manifests/${ID}/x`,
    `manifest/${ID}`,
    'manifests/20261124T020304123Z',
    `packs/${ID}/manifests`,
  ]) {
    assert.throws(() => snapshotIdFromManifestKey(key), isBadKey, key);
  }
  for (const key of [
    `packs/${ID}/1-64`,
    `packs/${ID}/0000000001-0000000064.0`,
    `packs/${ID}/0000000001-0000000064.01`,
    `packs/${ID}/0000000064-0000000001`,
    `packs/${ID}/0000000000-0000000001`,
    `packs/${ID}/0000000001-0000000064/x`,
    `packs/not-an-id/0000000001-0000000064`,
    `manifests/${ID}`,
    `packs/${ID}/0000000001-0000000064.1000000000`,
  ]) {
    assert.throws(() => parsePackKey(key), isBadKey, key);
  }
  assert.throws(() => manifestKey('x'), isBadKey);
  assert.throws(() => packPrefix('../x'), isBadKey);
  for (const [first, last, seq] of [
    [0, 1, 0],
    [2, 1, 0],
    [1.5, 2, 0],
    [1, 10_000_000_000, 0],
    [1, 2, -1],
    [1, 2, 0.5],
    [1, 2, 1_000_000_000],
    [Number.NaN, 2, 0],
  ]) {
    assert.throws(() => packKey(ID, first!, last!, seq), isBadKey, `${first}-${last}.${seq}`);
  }
});
