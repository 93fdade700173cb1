// The snapshot's per-chunk tables: content found by digest and raw length, chunk slots, growth past their
// first capacity.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { FixedChunks, Locations, UNSET, ZERO } from '../../src/snapshot/locations.ts';

const digestOf = (i: number) => createHash('sha256').update(`chunk ${i}`).digest();

test('locations are found by digest and raw length, and read back whole after the tables grew', () => {
  const l = new Locations();
  const n = 5000; // past the first capacity (1024) a few times
  for (let i = 0; i < n; i++) {
    const at = l.add({ pack: i % 7, offset: i * 70_000.5 * 2, length: 1000 + i, rawLength: 65536, codec: i % 2 ? 'zstd' : 'raw', digest: digestOf(i) });
    assert.equal(at, i);
  }
  assert.equal(l.count, n);
  for (const i of [0, 1, 1023, 1024, 4999]) {
    assert.equal(l.find(digestOf(i), 65536), i);
    assert.deepEqual(l.get(i), { pack: i % 7, offset: i * 140_001, length: 1000 + i, rawLength: 65536, codec: i % 2 ? 'zstd' : 'raw', digest: new Uint8Array(digestOf(i)) });
  }
  assert.equal(l.find(digestOf(3), 32768), -1, 'the same digest with another raw length is other content');
  assert.equal(l.find(digestOf(n), 65536), -1);
  // The same content again: a second location, but find() keeps giving the first.
  const again = l.add({ pack: 9, offset: 0, length: 1, rawLength: 65536, codec: 'raw', digest: digestOf(42) });
  assert.equal(again, n);
  assert.equal(l.find(digestOf(42), 65536), 42);
  assert.equal(l.get(again).pack, 9);
  // Thousands more: the hash table grows again (its buckets are rebuilt), and every content is still found at
  // its first location, the one recorded twice included.
  for (let i = n; i < 3 * n; i++) l.add({ pack: 0, offset: i, length: 1, rawLength: 65536, codec: 'raw', digest: digestOf(i) });
  for (let i = 0; i < 3 * n; i++) assert.equal(l.find(digestOf(i), 65536), i < n ? i : i + 1, `content ${i}`);
  assert.equal(l.find(digestOf(3 * n), 65536), -1);
});

test('fixed chunks: unset until set, zero or a location with its page count, cleared on a restart', () => {
  const f = new FixedChunks();
  assert.equal(f.end, 0);
  assert.equal(f.location(0), UNSET);
  f.set(3000, 17, 16, true);
  f.set(2, ZERO, 16, false);
  f.set(3001, 18, 5, false);
  assert.equal(f.end, 3002);
  assert.equal(f.location(1), UNSET, 'slots between stay unset when the table grows');
  assert.equal(f.location(2), ZERO);
  assert.deepEqual([f.location(3000), f.pageCount(3000), f.uploaded(3000)], [17, 16, true]);
  assert.deepEqual([f.location(3001), f.pageCount(3001), f.uploaded(3001)], [18, 5, false]);
  assert.equal(f.location(5000), UNSET);
  f.clear();
  assert.equal(f.end, 0);
  assert.equal(f.location(3000), UNSET);
  assert.equal(f.uploaded(3000), false);
});

test('digests that share their first 31 bits are told apart by the rest', () => {
  const l = new Locations(4);
  const a = new Uint8Array(32).fill(7);
  const b = new Uint8Array(32).fill(7);
  b[31] = 8; // same prefix, other content
  const c = new Uint8Array(32).fill(7);
  c[3] = 6; // differs only in the bit the prefix drops: same prefix too
  const ia = l.add({ pack: 0, offset: 0, length: 1, rawLength: 100, codec: 'raw', digest: a });
  const ib = l.add({ pack: 0, offset: 1, length: 1, rawLength: 100, codec: 'raw', digest: b });
  const ic = l.add({ pack: 0, offset: 2, length: 1, rawLength: 100, codec: 'raw', digest: c });
  const ia2 = l.add({ pack: 0, offset: 3, length: 1, rawLength: 200, codec: 'raw', digest: a });
  assert.deepEqual([l.find(a, 100), l.find(b, 100), l.find(c, 100), l.find(a, 200)], [ia, ib, ic, ia2]);
  const d = new Uint8Array(32).fill(7);
  d[20] = 1;
  assert.equal(l.find(d, 100), -1);
});
