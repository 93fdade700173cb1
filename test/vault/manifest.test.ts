import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { IntegrityError } from '../../src/errors.ts';
import {
  chunkRange,
  databaseDigest,
  decodeManifest,
  encodeManifest,
  fixedChunkCount,
  openManifest,
  zeroDigest,
} from '../../src/vault/manifest.ts';
import type { Manifest } from '../../src/vault/model.ts';
import { baseManifest, bodyOf, ID, joinBody, PARENT, seal, smallManifest, splitBody, syntheticManifest, varint } from './fixtures.ts';

const GiB = 2 ** 30;
const KiB = 1024;

function damaged(code = 'MANIFEST_DAMAGED', message?: RegExp) {
  return (err: unknown): boolean => err instanceof IntegrityError && err.code === code && (!message || message.test(err.message));
}

test('round trip: parent, patch extents going back over earlier pages, zero and raw extents, several packs', () => {
  const m = smallManifest();
  const decoded = decodeManifest(encodeManifest(m), m.id);
  assert.deepEqual(decoded, m);
  // Byte-for-byte stable: what decodes re-encodes to the same body (zstd output is deterministic).
  assert.deepEqual(encodeManifest(decoded), encodeManifest(m));
});

test('extents given as a generator (made one at a time, as a snapshot does) encode to the same bytes as an array', () => {
  const m = smallManifest();
  let made = 0;
  const lazy = {
    ...m,
    extents: {
      *[Symbol.iterator]() {
        for (const e of m.extents) {
          made++;
          yield { ...e };
        }
      },
    },
  };
  assert.deepEqual(encodeManifest(lazy), encodeManifest(m));
  assert.equal(made, 2 * m.extents.length, 'two walks: the records, then the digests');
  assert.throws(() => encodeManifest({ ...m, extents: 7 as unknown as Manifest['extents'] }), TypeError);
  // A generator object walks once: the second walk finds nothing, which is refused rather than encoded.
  const once = (function* () {
    yield* m.extents;
  })();
  assert.throws(() => encodeManifest({ ...m, extents: once }), /the extents changed between two walks/);
});

test('openManifest checks every record up front and makes the extents on each walk', () => {
  const m = smallManifest();
  const bytes = encodeManifest(m);
  const view = openManifest(bytes, m.id);
  assert.equal(view.extentCount, m.extents.length);
  assert.deepEqual([...view.extents()], m.extents);
  assert.deepEqual([...view.extents()], m.extents, 'a second walk gives the same extents');
  assert.equal(view.byteLength, bytes.length);
  const { byteLength: _b, extentCount: _n, extents: _e, ...head } = view;
  const { extents: _m, ...expected } = m;
  assert.deepEqual(head, expected);
  // A record pointing at a pack the manifest does not list fails the open, not a later walk.
  const { json, rest } = splitBody(bodyOf(bytes));
  assert.throws(() => openManifest(seal(joinBody({ ...json, packs: (json.packs as string[]).slice(0, 1) }, rest))), damaged('MANIFEST_DAMAGED', /refers to pack 1/));
});

test('round trip: an empty database, a null databaseDigest, only zero extents, a null fileName', () => {
  const empty = baseManifest();
  assert.deepEqual(decodeManifest(encodeManifest(empty)), empty);
  const zeros = baseManifest({
    pageCount: 1000,
    databaseDigest: 'ab'.repeat(32),
    source: { ...baseManifest().source, fileName: null },
    extents: [
      { kind: 'zero', firstPage: 1, pageCount: 1000 },
      { kind: 'zero', firstPage: 1000, pageCount: 1 },
    ],
  });
  assert.deepEqual(decodeManifest(encodeManifest(zeros), ID), zeros);
  // Pages no extent covers are allowed (they are zero).
  const sparse = baseManifest({ pageCount: 10, extents: [{ kind: 'zero', firstPage: 5, pageCount: 2 }] });
  assert.deepEqual(decodeManifest(encodeManifest(sparse)), sparse);
});

test('round trip: large offsets and page numbers near the limits', () => {
  const m = baseManifest({
    pageSize: 65536,
    pageCount: 4_294_967_294,
    chunkPages: 4,
    packs: ['packs/20261124T020304123Z-9f2c41d07a/4294967291-4294967294'],
    extents: [
      { kind: 'stored', firstPage: 4_294_967_291, pageCount: 4, pack: 0, offset: 2 ** 52 - 10, length: 10, codec: 'zstd', digest: randomBytes(32) },
      { kind: 'stored', firstPage: 1, pageCount: 1, pack: 0, offset: 0, length: 65536, codec: 'raw', digest: randomBytes(32) },
    ],
  });
  assert.deepEqual(decodeManifest(encodeManifest(m)), m);
});

test('the decoded digests do not alias the input buffer', () => {
  const m = smallManifest();
  const bytes = encodeManifest(m);
  const decoded = decodeManifest(bytes);
  bytes.fill(0);
  assert.deepEqual(decoded, m);
});

test('a renamed manifest (the key names another id) is refused', () => {
  const bytes = encodeManifest(smallManifest());
  const other = '20261124T020304124Z-0000000000';
  assert.throws(() => decodeManifest(bytes, other), damaged('MANIFEST_DAMAGED', new RegExp(`manifest ${other} is damaged: .*holds snapshot ${ID}`)));
});

test('a newer format version is refused with MANIFEST_VERSION before anything else is checked', () => {
  const body = bodyOf(encodeManifest(smallManifest()));
  for (const bytes of [seal(body, { version: 2 }), seal(Buffer.from('a v2 body we cannot read'), { version: 2, flags: 0xffff })]) {
    assert.throws(
      () => decodeManifest(bytes, ID),
      damaged('MANIFEST_VERSION', new RegExp(`^manifest ${ID} was written by a newer pagevault \\(format 2\\); upgrade pagevault to read it$`)),
    );
  }
  assert.throws(() => decodeManifest(seal(body, { version: 0 })), damaged('MANIFEST_DAMAGED', /format 0/));
});

test('an uncompressed body (flag 0) is read too', () => {
  const m = smallManifest();
  assert.deepEqual(decodeManifest(seal(bodyOf(encodeManifest(m)), { compressed: false })), m);
});

test('encode refuses manifests that break the model', () => {
  const m = smallManifest();
  const bad: Array<[string, Manifest]> = [
    ['extent past the page count', { ...m, pageCount: 298 }],
    ['pack index out of range', { ...m, packs: m.packs.slice(0, 2) }],
    ['short digest', { ...m, extents: [{ ...(m.extents[0] as object), digest: new Uint8Array(31) } as Manifest['extents'][number]] }],
    ['raw length not pages * pageSize', { ...m, extents: [{ kind: 'stored', firstPage: 1, pageCount: 2, pack: 0, offset: 0, length: 8191, codec: 'raw', digest: randomBytes(32) }] }],
    ['stored extent larger than a chunk', { ...m, extents: [{ kind: 'stored', firstPage: 1, pageCount: 65, pack: 0, offset: 0, length: 9, codec: 'zstd', digest: randomBytes(32) }] }],
    ['zero pages', { ...m, extents: [{ kind: 'zero', firstPage: 3, pageCount: 0 }] }],
    ['page 0', { ...m, extents: [{ kind: 'zero', firstPage: 0, pageCount: 1 }] }],
    ['negative offset', { ...m, extents: [{ kind: 'stored', firstPage: 1, pageCount: 1, pack: 0, offset: -1, length: 9, codec: 'zstd', digest: randomBytes(32) }] }],
    ['unknown codec', { ...m, extents: [{ kind: 'stored', firstPage: 1, pageCount: 1, pack: 0, offset: 0, length: 9, codec: 'lz4' as 'raw', digest: randomBytes(32) }] }],
    ['bad id', { ...m, id: 'x' }],
    ['parent is itself', { ...m, parent: m.id }],
    ['page size not a power of two', { ...m, pageSize: 3000 }],
    ['bad pack key', { ...m, packs: [...m.packs.slice(0, 2), 'packs/x'] }],
    ['duplicate pack key', { ...m, packs: [m.packs[0]!, m.packs[1]!, m.packs[0]!] }],
    ['uppercase digest', { ...m, databaseDigest: 'AB'.repeat(32) }],
    ['local time', { ...m, createdAt: '2026-11-24T02:03:04.123+01:00' }],
    ['negative stat', { ...m, stats: { ...m.stats, restarts: -1 } }],
    ['unknown field', { ...m, note: 'x' } as Manifest],
    ['format version', { ...m, formatVersion: 2 as 1 }],
  ];
  for (const [name, manifest] of bad) {
    assert.throws(() => encodeManifest(manifest), (err: unknown) => err instanceof TypeError || err instanceof RangeError, name);
  }
});

// Damage with a valid digest: what a buggy writer, or tampering that recomputed the SHA-256, produces.
test('a sealed body that breaks the model is MANIFEST_DAMAGED, with a message that says what is wrong', () => {
  const m = smallManifest();
  const body = bodyOf(encodeManifest(m));
  const { json, rest } = splitBody(body);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['extent outside the page count', joinBody({ ...json, pageCount: 200 }, rest), /extent 3 covers pages 193\+64, outside the database's pages 1-200/],
    ['pack index out of range', joinBody({ ...json, packs: (json.packs as string[]).slice(0, 1) }, rest), /refers to pack 1, but the manifest lists 1 packs/],
    ['unknown JSON field', joinBody({ ...json, extra: 1 }, rest), /unknown fields: extra/],
    ['missing JSON field', joinBody({ ...json, stats: { ...(json.stats as object), restarts: undefined } }, rest), /stats lacks fields: restarts/],
    ['wrong JSON type', joinBody({ ...json, pageSize: '4096' }, rest), /pageSize must be an integer/],
    ['JSON not an object', joinBody([1, 2], rest), /must be an object/],
    ['JSON that does not parse', Buffer.concat([varint(3), Buffer.from('{x}'), rest]), /JSON fields do not parse/],
    ['JSON length past the end', Buffer.concat([varint(body.length + 1), body]), /ends inside the JSON fields/],
    ['no extent count', joinBody(json, Buffer.alloc(0)), /ends inside the extent count/],
    ['a varint running off the end', joinBody(json, Buffer.from([0x80])), /ends inside the extent count/],
    ['a varint longer than 8 bytes', joinBody(json, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), /longer than 8 bytes/],
    ['a non-canonical varint', joinBody(json, Buffer.from([0x81, 0x00])), /redundant trailing byte/],
    ['more extents than bytes', joinBody(json, varint(1_000_000)), /claims 1000000 extents/],
    ['unknown kind byte', joinBody(json, Buffer.from([1, 7, 0, 1])), /extent 0 has unknown kind byte 7/],
    ['missing digests', body.subarray(0, body.length - 32), /bytes of digests for 6 stored extents/],
    ['junk after the digests', Buffer.concat([body, Buffer.from([0])]), /bytes of digests for 6 stored extents/],
    ['invalid UTF-8 in the JSON', Buffer.concat([varint(2), Buffer.from([0xc3, 0x28]), rest]), /do not parse/],
    ['a renamed id inside', joinBody({ ...json, id: PARENT, parent: null }, rest), new RegExp(`manifest ${ID} is damaged: its key names snapshot ${ID} but it holds snapshot ${PARENT}`)],
  ];
  for (const [name, bad, message] of cases) {
    assert.throws(() => decodeManifest(seal(bad), ID), damaged('MANIFEST_DAMAGED', message), name);
  }
  // Without an expected id, the message names the id found inside once it is known.
  assert.throws(() => decodeManifest(seal(joinBody({ ...json, pageCount: 200 }, rest))), damaged('MANIFEST_DAMAGED', new RegExp(`^manifest ${ID} is damaged`)));
});

test("round trip: the source's identity and its check, passed, failed, or none", () => {
  const failed = { kind: 'integrity_check', ok: false, errors: ['Tree 2 page 854: btreeInitPage() returns error code 11', 'x'.repeat(500)], durationMs: 1234, sameState: false } as const;
  for (const source of [
    { ...baseManifest().source, check: { ...failed, errors: [...failed.errors] } },
    { ...baseManifest().source, applicationId: -2_147_483_648, encoding: 'UTF-16be', check: null },
    { ...baseManifest().source, path: null, fileName: null, applicationId: 0x0f055112, check: null },
  ]) {
    const m = baseManifest({ source });
    const decoded = decodeManifest(encodeManifest(m), m.id);
    assert.deepEqual(decoded.source, source);
  }
});

test('a source record that breaks the model is refused on encode and MANIFEST_DAMAGED on decode', () => {
  const base = baseManifest();
  const check = base.source.check!;
  const bad: Array<[string, unknown, RegExp]> = [
    ['relative path', { ...base.source, path: 'app.db' }, /source.path must be null or an absolute path/],
    ['unknown encoding', { ...base.source, encoding: 'latin1' }, /source.encoding must be one of/],
    ['application_id past 32 bits', { ...base.source, applicationId: 2 ** 31 }, /source.applicationId must be an integer from -2147483648 to 2147483647/],
    ['no check field', (({ check: _, ...rest }) => rest)(base.source), /source lacks fields: check/],
    ['unknown check kind', { ...base.source, check: { ...check, kind: 'fast_check' } }, /source.check.kind must be/],
    ['ok with errors', { ...base.source, check: { ...check, errors: ['x'] } }, /ok but lists errors/],
    ['failed without errors', { ...base.source, check: { ...check, ok: false } }, /failed but lists no error/],
    ['too many error lines', { ...base.source, check: { ...check, ok: false, errors: Array.from({ length: 21 }, () => 'x') } }, /at most 20 lines/],
    ['an error line too long', { ...base.source, check: { ...check, ok: false, errors: ['x'.repeat(501)] } }, /longer than 500 characters/],
    ['sameState missing', { ...base.source, check: { kind: 'quick_check', ok: true, errors: [], durationMs: 1 } }, /source.check lacks fields: sameState/],
  ];
  const { json, rest } = splitBody(bodyOf(encodeManifest(base)));
  for (const [name, source, message] of bad) {
    assert.throws(() => encodeManifest({ ...base, source: source as Manifest['source'] }), (err: unknown) => err instanceof TypeError && message.test(err.message), name);
    assert.throws(() => decodeManifest(seal(joinBody({ ...json, source }, rest)), ID), damaged('MANIFEST_DAMAGED', message), name);
  }
});

test('the frame and header must agree: wrong lengths, flags, magic and digest are MANIFEST_DAMAGED', () => {
  const good = encodeManifest(smallManifest());
  const reseal = (mutate: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good.subarray(0, good.length - 32));
    mutate(b);
    return Buffer.concat([b, createHash('sha256').update(b).digest()]);
  };
  const cases: Array<[string, Buffer, RegExp]> = [
    ['raw length', reseal((b) => b.writeUInt32BE(b.readUInt32BE(16) + 1, 16)), /not one zstd frame of the sizes the header gives/],
    ['stored length', reseal((b) => b.writeUInt32BE(b.readUInt32BE(12) - 1, 12)), /header says the body is/],
    ['unknown flag', reseal((b) => b.writeUInt16BE(3, 10)), /unknown flags 0x3/],
    ['magic', reseal((b) => b.write('X', 0)), /does not start with the pagevault manifest magic/],
    ['digest', Buffer.concat([good.subarray(0, good.length - 1), Buffer.from([good[good.length - 1]! ^ 1])]), /SHA-256 does not match/],
    ['uncompressed flag on a compressed body', reseal((b) => b.writeUInt16BE(0, 10)), /two lengths|JSON|ends inside|digests/],
    ['not a manifest at all', Buffer.from('{"id":"x"}'), /magic/],
    ['empty', Buffer.alloc(0), /magic/],
  ];
  for (const [name, bad, message] of cases) {
    assert.throws(() => decodeManifest(bad, ID), damaged('MANIFEST_DAMAGED', message), name);
  }
});

test('chunk arithmetic: fixed chunks cover the pages once, the last one short', () => {
  assert.equal(fixedChunkCount(0, 64), 0);
  assert.equal(fixedChunkCount(1, 64), 1);
  assert.equal(fixedChunkCount(128, 64), 2);
  assert.equal(fixedChunkCount(129, 64), 3);
  assert.deepEqual(chunkRange(0, 129, 64), { firstPage: 1, pageCount: 64 });
  assert.deepEqual(chunkRange(1, 129, 64), { firstPage: 65, pageCount: 64 });
  assert.deepEqual(chunkRange(2, 129, 64), { firstPage: 129, pageCount: 1 });
  let next = 1;
  for (let i = 0; i < fixedChunkCount(1000, 7); i++) {
    const r = chunkRange(i, 1000, 7);
    assert.equal(r.firstPage, next);
    next += r.pageCount;
  }
  assert.equal(next, 1001);
  assert.throws(() => chunkRange(3, 129, 64), RangeError);
  assert.throws(() => chunkRange(-1, 129, 64), RangeError);
  assert.throws(() => fixedChunkCount(10, 0), RangeError);
  assert.throws(() => fixedChunkCount(-1, 64), RangeError);
});

test('zeroDigest is SHA-256 of that many zero bytes, and callers cannot spoil the memo', () => {
  for (const n of [0, 1, 4096, 65536, 65537, 256 * KiB + 512]) {
    assert.deepEqual(zeroDigest(n), createHash('sha256').update(Buffer.alloc(n)).digest(), String(n));
  }
  zeroDigest(4096).fill(1);
  assert.deepEqual(zeroDigest(4096), createHash('sha256').update(Buffer.alloc(4096)).digest());
});

test('databaseDigest is SHA-256 of the concatenated chunk digests, in hex', () => {
  const digests = [randomBytes(32), zeroDigest(4096), randomBytes(32)];
  assert.equal(databaseDigest(digests), createHash('sha256').update(Buffer.concat(digests)).digest('hex'));
  assert.equal(databaseDigest([]), createHash('sha256').digest('hex'));
  assert.throws(() => databaseDigest([randomBytes(31)]), RangeError);
});

// Measured (tsx, Node 20): 14,263,436 bytes for 409,600 extents, i.e. 34.8 bytes an extent, of which 32 are the
// random digest that cannot compress (13,107,200 bytes in all). The bound leaves ~1.2 MB of room for zstd and
// varint variations; an encoding with hex digests (~27 MB) or fixed-width fields (~20 MB) fails it.
test('a 100 GiB database in 256 KiB chunks needs a manifest under 15.5 MB', () => {
  const m = syntheticManifest(100 * GiB, 256 * KiB);
  assert.equal(m.extents.length, 409_600);
  const bytes = encodeManifest(m);
  assert.ok(bytes.length < 15_500_000, `${bytes.length} bytes`);
  const decoded = decodeManifest(bytes, m.id);
  assert.equal(decoded.extents.length, m.extents.length);
  assert.deepEqual(decoded.extents[409_599], m.extents[409_599]);
});
