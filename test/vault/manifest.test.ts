// The manifest (format v2): the snapshot's summary, in its envelope. The extent table is extent-table.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { BugError, IntegrityError } from '../../src/errors.ts';
import { chunkRange, databaseDigest, decodeManifest, encodeManifest, fixedChunkCount, zeroDigest } from '../../src/vault/manifest.ts';
import type { Manifest } from '../../src/vault/model.ts';
import { baseManifest, bodyOf, encodeSnapshot, ID, jsonOf, PARENT, seal, sealJson, smallManifest } from './fixtures.ts';

const KiB = 1024;

function damaged(code = 'MANIFEST_DAMAGED', message?: RegExp) {
  return (err: unknown): boolean => err instanceof IntegrityError && err.code === code && (!message || message.test(err.message));
}

test('round trip: parent, tags, several packs with their sizes, the extent table reference', () => {
  const { manifest, bytes } = encodeSnapshot({ ...smallManifest(), tags: ['daily', 'before-deploy:v2.1'] });
  const decoded = decodeManifest(bytes, manifest.id);
  assert.deepEqual(decoded, manifest);
  assert.deepEqual(decoded.tags, ['daily', 'before-deploy:v2.1']);
  assert.equal(decoded.packs.length, 3);
  assert.equal(decoded.extents.count, 8);
  assert.equal(decoded.extents.stored, 6);
  // Byte-for-byte stable: what decodes re-encodes to the same object (zstd output is deterministic).
  assert.deepEqual(encodeManifest(decoded), bytes);
});

test('the manifest is small: it holds no extents, whatever the database size', () => {
  const { bytes } = encodeSnapshot(smallManifest());
  assert.ok(bytes.length < 1500, `${bytes.length} bytes`);
  assert.equal(Object.keys(jsonOf(bytes)).includes('extents'), true);
  assert.deepEqual(Object.keys(jsonOf(bytes).extents as object).sort(), ['count', 'length', 'sha256', 'stored']);
});

test('round trip: an empty database, a null databaseDigest, a null fileName', () => {
  for (const s of [baseManifest(), baseManifest({ pageCount: 1000, databaseDigest: 'ab'.repeat(32), source: { ...baseManifest().source, fileName: null } })]) {
    const { manifest, bytes } = encodeSnapshot(s);
    assert.deepEqual(decodeManifest(bytes, ID), manifest);
  }
});

test('a renamed manifest (the key names another id) is refused', () => {
  const { bytes } = encodeSnapshot(smallManifest());
  const other = '20261124T020304124Z-0000000000';
  assert.throws(() => decodeManifest(bytes, other), damaged('MANIFEST_DAMAGED', new RegExp(`manifest ${other} is damaged: .*holds snapshot ${ID}`)));
});

test('another format version is refused with MANIFEST_VERSION before anything else is checked', () => {
  const body = bodyOf(encodeSnapshot(smallManifest()).bytes);
  for (const bytes of [seal(body, { version: 3 }), seal(Buffer.from('a v3 body we cannot read'), { version: 3, flags: 0xffff })]) {
    assert.throws(
      () => decodeManifest(bytes, ID),
      damaged('MANIFEST_VERSION', new RegExp(`^manifest ${ID} was written by a newer pagevault \\(format 3\\); upgrade pagevault to read it$`)),
    );
  }
  // Format 1 (development builds only) is refused with what to do, not misread.
  assert.throws(() => decodeManifest(seal(Buffer.from('any v1 body'), { version: 1 }), ID), damaged('MANIFEST_VERSION', /format 1, which only development builds .* snapshot the database again into a new vault/));
  assert.throws(() => decodeManifest(seal(body, { version: 0 })), damaged('MANIFEST_DAMAGED', /format 0/));
});

test('an uncompressed body (flag 0) is read too; the reserved encrypted flag is refused', () => {
  const { manifest, bytes } = encodeSnapshot(smallManifest());
  assert.deepEqual(decodeManifest(seal(bodyOf(bytes), { compressed: false })), manifest);
  assert.throws(() => decodeManifest(seal(bodyOf(bytes), { flags: 3 }), ID), damaged('MANIFEST_DAMAGED', /says it is encrypted/));
});

test('encode refuses manifests that break the model (a bug of ours: BugError)', () => {
  const { manifest: m } = encodeSnapshot(smallManifest());
  const bad: Array<[string, Manifest]> = [
    ['bad id', { ...m, id: 'x' }],
    ['parent is itself', { ...m, parent: m.id }],
    ['page size not a power of two', { ...m, pageSize: 3000 }],
    ['bad pack key', { ...m, packs: [...m.packs.slice(0, 2), { key: 'packs/x', size: 1, used: 1 }] }],
    ['duplicate pack key', { ...m, packs: [m.packs[0]!, m.packs[1]!, m.packs[0]!] }],
    ['pack used more than its size', { ...m, packs: [{ ...m.packs[0]!, used: m.packs[0]!.size + 1 }, ...m.packs.slice(1)] }],
    ['empty pack', { ...m, packs: [{ ...m.packs[0]!, size: 0, used: 0 }, ...m.packs.slice(1)] }],
    ['uppercase digest', { ...m, databaseDigest: 'AB'.repeat(32) }],
    ['table digest not hex', { ...m, extents: { ...m.extents, sha256: 'x' } }],
    ['more stored extents than extents', { ...m, extents: { ...m.extents, stored: 9 } }],
    ['a tag with a space', { ...m, tags: ['a b'] }],
    ['a tag twice', { ...m, tags: ['a', 'a'] }],
    ['an empty tag', { ...m, tags: [''] }],
    ['local time', { ...m, createdAt: '2026-11-24T02:03:04.123+01:00' }],
    ['negative stat', { ...m, stats: { ...m.stats, restarts: -1 } }],
    ['unknown field', { ...m, note: 'x' } as Manifest],
    ['format version', { ...m, formatVersion: 1 as 2 }],
  ];
  for (const [name, manifest] of bad) assert.throws(() => encodeManifest(manifest), BugError, name);
});

// Damage with a valid digest: what a buggy writer, or tampering that recomputed the SHA-256, produces.
test('sealed fields that break the model are MANIFEST_DAMAGED, with a message that says what is wrong', () => {
  const json = jsonOf(encodeSnapshot(smallManifest()).bytes);
  const packs = json.packs as { key: string; size: number; used: number }[];
  const cases: Array<[string, Buffer, RegExp]> = [
    ['unknown JSON field', sealJson({ ...json, extra: 1 }), /unknown fields: extra/],
    ['missing JSON field', sealJson({ ...json, stats: { ...(json.stats as object), restarts: undefined } }), /stats lacks fields: restarts/],
    ['no tags', sealJson({ ...json, tags: undefined }), /lacks fields: tags/],
    ['wrong JSON type', sealJson({ ...json, pageSize: '4096' }), /pageSize must be an integer/],
    ['packs as bare keys (format 1)', sealJson({ ...json, packs: packs.map((p) => p.key) }), /packs\[0\] must be an object/],
    ['pack used past its size', sealJson({ ...json, packs: [{ ...packs[0]!, used: packs[0]!.size + 1 }, ...packs.slice(1)] }), /packs\[0\].used must be an integer from 1 to/],
    ['JSON not an object', sealJson([1, 2]), /must be an object/],
    ['JSON that does not parse', seal(Buffer.from('{x}')), /JSON does not parse/],
    ['invalid UTF-8', seal(Buffer.from([0xc3, 0x28])), /does not parse/],
    ['a renamed id inside', sealJson({ ...json, id: PARENT, parent: null }), new RegExp(`manifest ${ID} is damaged: its key names snapshot ${ID} but it holds snapshot ${PARENT}`)],
  ];
  for (const [name, bad, message] of cases) assert.throws(() => decodeManifest(bad, ID), damaged('MANIFEST_DAMAGED', message), name);
  // Without an expected id, the message names the id found inside once it is known.
  assert.throws(() => decodeManifest(sealJson({ ...json, pageSize: 3 })), damaged('MANIFEST_DAMAGED', new RegExp(`^manifest ${ID} is damaged`)));
});

test("round trip: the source's identity and its check, passed, failed, or none", () => {
  const failed = { kind: 'integrity_check', ok: false, errors: ['Tree 2 page 854: btreeInitPage() returns error code 11', 'x'.repeat(500)], durationMs: 1234, sameState: false } as const;
  for (const source of [
    { ...baseManifest().source, check: { ...failed, errors: [...failed.errors] } },
    { ...baseManifest().source, applicationId: -2_147_483_648, encoding: 'UTF-16be', check: null },
    { ...baseManifest().source, path: null, fileName: null, applicationId: 0x0f055112, check: null },
  ]) {
    const { manifest, bytes } = encodeSnapshot(baseManifest({ source }));
    assert.deepEqual(decodeManifest(bytes, manifest.id).source, source);
  }
});

test('a source record that breaks the model is refused on encode and MANIFEST_DAMAGED on decode', () => {
  const { manifest: base, bytes } = encodeSnapshot(baseManifest());
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
  const json = jsonOf(bytes);
  for (const [name, source, message] of bad) {
    assert.throws(() => encodeManifest({ ...base, source: source as Manifest['source'] }), (err: unknown) => err instanceof BugError && message.test(err.message), name);
    assert.throws(() => decodeManifest(sealJson({ ...json, source }), ID), damaged('MANIFEST_DAMAGED', message), name);
  }
});

test('the frame and header must agree: wrong lengths, flags, magic and digest are MANIFEST_DAMAGED', () => {
  const good = encodeSnapshot(smallManifest()).bytes;
  const reseal = (mutate: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good.subarray(0, good.length - 32));
    mutate(b);
    return Buffer.concat([b, createHash('sha256').update(b).digest()]);
  };
  const cases: Array<[string, Buffer, RegExp]> = [
    ['raw length', reseal((b) => b.writeUInt32BE(b.readUInt32BE(16) + 1, 16)), /not one zstd frame of the sizes the header gives/],
    ['stored length', reseal((b) => b.writeUInt32BE(b.readUInt32BE(12) - 1, 12)), /header says the body is/],
    ['unknown flag', reseal((b) => b.writeUInt16BE(5, 10)), /unknown flags 0x5/],
    ['magic', reseal((b) => b.write('X', 0)), /does not start with the pagevault manifest magic/],
    ['an extent table where a manifest belongs', reseal((b) => b.write('PVEXTNT\0', 0, 'latin1')), /manifest magic/],
    ['digest', Buffer.concat([good.subarray(0, good.length - 1), Buffer.from([good[good.length - 1]! ^ 1])]), /SHA-256 does not match/],
    ['uncompressed flag on a compressed body', reseal((b) => b.writeUInt16BE(0, 10)), /two lengths/],
    ['not a manifest at all', Buffer.from('{"id":"x"}'), /magic/],
    ['empty', Buffer.alloc(0), /magic/],
  ];
  for (const [name, bad, message] of cases) assert.throws(() => decodeManifest(bad, ID), damaged('MANIFEST_DAMAGED', message), name);
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
  assert.throws(() => chunkRange(3, 129, 64), BugError);
  assert.throws(() => chunkRange(-1, 129, 64), BugError);
  assert.throws(() => fixedChunkCount(10, 0), BugError);
  assert.throws(() => fixedChunkCount(-1, 64), BugError);
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
  assert.throws(() => databaseDigest([randomBytes(31)]), BugError);
});
