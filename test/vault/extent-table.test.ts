// The extent table (format v2): where every page of a snapshot is, bound to its manifest by length and SHA-256.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { BugError, IntegrityError } from '../../src/errors.ts';
import { encodeExtentTable, openExtentTable } from '../../src/vault/extent-table.ts';
import type { Extent } from '../../src/vault/model.ts';
import { baseManifest, bodyOf, encodeSnapshot, ID, packRecords, sealTable, smallManifest, syntheticManifest, varint, type Snapshot } from './fixtures.ts';

const GiB = 2 ** 30;
const KiB = 1024;

function damaged(message?: RegExp, code = 'EXTENTS_DAMAGED') {
  return (err: unknown): boolean => err instanceof IntegrityError && err.code === code && (!message || message.test(err.message));
}

function roundTrip(s: Snapshot): Extent[] {
  const { manifest, table } = encodeSnapshot(s);
  return [...openExtentTable(table.bytes, manifest).extents()];
}

test('round trip: patches going back over earlier pages, zero and raw extents, several packs', () => {
  const s = smallManifest();
  assert.deepEqual(roundTrip(s), s.extents);
  const { manifest, table } = encodeSnapshot(s);
  const opened = openExtentTable(table.bytes, manifest);
  assert.equal(opened.count, s.extents.length);
  assert.deepEqual([...opened.extents()], s.extents, 'a second walk gives the same extents');
});

test('a stored length independent of the page count: raw extents of any length (room for an AEAD)', () => {
  const s = baseManifest({
    pageCount: 4,
    packs: [smallManifest().packs[0]!],
    extents: [{ kind: 'stored', firstPage: 1, pageCount: 4, pack: 0, offset: 0, length: 4 * 4096 + 28, codec: 'raw', digest: randomBytes(32) }],
  });
  assert.deepEqual(roundTrip(s), s.extents);
});

test('extents given as a generator (made one at a time, as a snapshot does) encode to the same bytes as an array', () => {
  const s = smallManifest();
  const context = { id: s.id, pageCount: s.pageCount, chunkPages: s.chunkPages, packSizes: packRecords(s).map((p) => p.size) };
  let made = 0;
  const lazy = {
    *[Symbol.iterator]() {
      for (const e of s.extents) {
        made++;
        yield { ...e };
      }
    },
  };
  assert.deepEqual(encodeExtentTable(context, lazy).bytes, encodeExtentTable(context, s.extents).bytes);
  assert.equal(made, 2 * s.extents.length, 'two walks: the records, then the digests');
  const once = (function* () {
    yield* s.extents;
  })();
  assert.throws(() => encodeExtentTable(context, once), /the extents changed between two walks/);
});

test('round trip: large offsets and page numbers near the limits; sparse and zero-only tables', () => {
  const big = baseManifest({
    pageSize: 65536,
    pageCount: 4_294_967_294,
    chunkPages: 4,
    packs: ['packs/20261124T020304123Z-9f2c41d07a/4294967291-4294967294'],
    extents: [
      { kind: 'stored', firstPage: 4_294_967_291, pageCount: 4, pack: 0, offset: 5 * 2 ** 40 - 10, length: 10, codec: 'zstd', digest: randomBytes(32) },
      { kind: 'stored', firstPage: 1, pageCount: 1, pack: 0, offset: 0, length: 65536, codec: 'raw', digest: randomBytes(32) },
    ],
  });
  assert.deepEqual(roundTrip(big), big.extents);
  const sparse = baseManifest({ pageCount: 10, extents: [{ kind: 'zero', firstPage: 5, pageCount: 2 }] });
  assert.deepEqual(roundTrip(sparse), sparse.extents);
  assert.deepEqual(roundTrip(baseManifest()), []);
});

test('the digests do not alias the input buffer', () => {
  const s = smallManifest();
  const { manifest, table } = encodeSnapshot(s);
  const opened = openExtentTable(table.bytes, manifest);
  table.bytes.fill(0);
  assert.deepEqual([...opened.extents()], s.extents);
});

test('a table that is not the one its manifest names is refused before it is decoded', () => {
  const a = encodeSnapshot(smallManifest());
  const b = encodeSnapshot({ ...smallManifest() }); // other random digests: another table of the same shape
  assert.throws(() => openExtentTable(b.table.bytes, a.manifest), damaged(new RegExp(`the extent table of snapshot ${ID} is damaged: it is not the table its manifest names`)));
  const flipped = Buffer.from(a.table.bytes);
  flipped[30] = flipped[30]! ^ 1;
  assert.throws(() => openExtentTable(flipped, a.manifest), damaged(/not the table its manifest names/));
});

test('encode refuses extents that break the model (BugError)', () => {
  const s = smallManifest();
  const context = { id: s.id, pageCount: s.pageCount, chunkPages: s.chunkPages, packSizes: packRecords(s).map((p) => p.size) };
  const bad: Array<[string, Extent[], Partial<typeof context>?]> = [
    ['extent past the page count', s.extents, { pageCount: 298 }],
    ['pack index out of range', s.extents, { packSizes: context.packSizes.slice(0, 2) }],
    ['past the end of its pack', s.extents, { packSizes: [1, ...context.packSizes.slice(1)] }],
    ['short digest', [{ ...(s.extents[0] as Extent & { kind: 'stored' }), digest: new Uint8Array(31) }]],
    ['stored extent larger than a chunk', [{ kind: 'stored', firstPage: 1, pageCount: 65, pack: 0, offset: 0, length: 9, codec: 'zstd', digest: randomBytes(32) }]],
    ['zero pages', [{ kind: 'zero', firstPage: 3, pageCount: 0 }]],
    ['page 0', [{ kind: 'zero', firstPage: 0, pageCount: 1 }]],
    ['negative offset', [{ kind: 'stored', firstPage: 1, pageCount: 1, pack: 0, offset: -1, length: 9, codec: 'zstd', digest: randomBytes(32) }]],
    ['unknown codec', [{ kind: 'stored', firstPage: 1, pageCount: 1, pack: 0, offset: 0, length: 9, codec: 'lz4' as 'raw', digest: randomBytes(32) }]],
  ];
  for (const [name, extents, change] of bad) assert.throws(() => encodeExtentTable({ ...context, ...change }, extents), BugError, name);
  assert.throws(() => encodeExtentTable(context, 7 as unknown as Extent[]), BugError);
});

// Damage behind a valid digest (sealed again, and the manifest made to name it): the structural checks alone.
test('sealed records that break the model are EXTENTS_DAMAGED, with a message that says what is wrong', () => {
  const s = smallManifest();
  const body = bodyOf(encodeSnapshot(s).table.bytes);
  const rest = body.subarray(1); // after the one-byte extent count (8)
  const cases: Array<[string, Snapshot, Buffer, RegExp, number[]?]> = [
    ['extent outside the page count', { ...s, pageCount: 200 }, body, /extent 3 covers pages 193\+64, outside the database's pages 1-200/],
    ['pack index out of range', { ...s, packs: s.packs.slice(0, 1) }, body, /extent 0 refers to pack 1, but the manifest lists 1 packs/],
    ['past the end of its pack', s, body, /extent 0 ends at byte 20000 of pack 1, which is 19999 bytes/, [0, 19_999]],
    ['no extent count', s, Buffer.alloc(0), /ends inside the extent count/],
    ['a varint running off the end', s, Buffer.from([0x80]), /ends inside the extent count/],
    ['a varint longer than 8 bytes', s, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /longer than 8 bytes/],
    ['a non-canonical varint', s, Buffer.from([0x81, 0x00]), /redundant trailing byte/],
    ['another count than the manifest says', s, Buffer.concat([varint(7), rest]), /holds 7 extents, its manifest says 8/],
    ['unknown kind byte', baseManifest({ pageCount: 10, extents: [{ kind: 'zero', firstPage: 1, pageCount: 1 }] }), Buffer.from([1, 7, 0, 1]), /extent 0 has unknown kind byte 7/],
    ['missing digests', s, body.subarray(0, body.length - 32), /bytes of digests for 6 stored extents/],
    ['junk after the digests', s, Buffer.concat([body, Buffer.from([0])]), /bytes of digests for 6 stored extents/],
  ];
  for (const [name, snapshot, bad, message, sizes] of cases) {
    const { bytes, manifest } = sealTable(snapshot, bad, sizes);
    assert.throws(() => openExtentTable(bytes, manifest), damaged(message), name);
  }
  const { bytes, manifest } = sealTable(s, Buffer.concat([varint(1_000_000), rest]));
  assert.throws(() => openExtentTable(bytes, { ...manifest, extents: { ...manifest.extents, count: 1_000_000 } }), damaged(/claims 1000000 extents/));
});

// Measured (tsx, Node 20): 14,263,436 bytes for 409,600 extents, i.e. 34.8 bytes an extent, of which 32 are the
// random digest that cannot compress (13,107,200 bytes in all). The bound leaves ~1.2 MB of room for zstd and
// varint variations; an encoding with hex digests (~27 MB) or fixed-width fields (~20 MB) fails it.
test('a 100 GiB database in 256 KiB chunks needs an extent table under 15.5 MB, and a manifest under 2 KB', () => {
  const s = syntheticManifest(100 * GiB, 256 * KiB);
  assert.equal(s.extents.length, 409_600);
  const { manifest, bytes, table } = encodeSnapshot(s);
  assert.ok(table.bytes.length < 15_500_000, `${table.bytes.length} bytes`);
  assert.ok(bytes.length < 2000, `manifest: ${bytes.length} bytes`);
  const extents = [...openExtentTable(table.bytes, manifest).extents()];
  assert.equal(extents.length, s.extents.length);
  assert.deepEqual(extents[409_599], s.extents[409_599]);
});
