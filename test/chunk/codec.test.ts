// The chunk codec's pure functions, on real SQLite pages, random, zero and damaged data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeChunk, encodeChunk, isAllZero, maxEncodedSize, zeroDigest } from '../../src/chunk/codec.ts';
import { BugError, IntegrityError, UsageError } from '../../src/errors.ts';

// Our own callers never pass these: a broken invariant, not a usage mistake.
const isBug = (err: unknown) => err instanceof BugError && err.code === 'BUG' && !(err instanceof UsageError);
import { createDatabase, tempDir } from '../helpers/sqlite.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

function roundTrip(raw: Uint8Array) {
  const out = Buffer.alloc(maxEncodedSize(raw.length));
  const encoded = encodeChunk(raw, out, 1);
  assert.deepEqual(Buffer.from(encoded.digest), sha256(raw));
  const back = Buffer.alloc(raw.length);
  if (!encoded.zero) decodeChunk(out.subarray(0, encoded.length), encoded.codec, back, encoded.digest);
  assert.deepEqual(back, Buffer.from(raw));
  return { ...encoded, out };
}

test('real SQLite pages round-trip in chunks, compressed, with a short last chunk', (t) => {
  const path = join(tempDir(t), 'db.sqlite');
  createDatabase(path, { rows: 3000 });
  const file = readFileSync(path);
  const chunkBytes = 64 * 1024;
  assert.ok(file.length > 3 * chunkBytes && file.length % chunkBytes !== 0, `fixture of ${file.length} bytes`);
  let encodedBytes = 0;
  for (let offset = 0; offset < file.length; offset += chunkBytes) {
    const raw = file.subarray(offset, offset + chunkBytes);
    const r = roundTrip(raw);
    assert.equal(r.zero, false);
    encodedBytes += r.length;
  }
  // Text, JSON and indexes compress; the random blobs do not: well under the raw size, but not nothing.
  assert.ok(encodedBytes < file.length * 0.9, `encoded ${encodedBytes} of ${file.length}`);
});

test('a compressible chunk is stored zstd, smaller', () => {
  const raw = Buffer.alloc(256 * 1024);
  for (let i = 0; i < raw.length; i++) raw[i] = 'pagevault '.charCodeAt(i % 10);
  const r = roundTrip(raw);
  assert.equal(r.codec, 'zstd');
  assert.ok(r.length < 2000, `${r.length} bytes`);
});

test('random data is stored raw, byte for byte', () => {
  const raw = randomBytes(256 * 1024);
  const r = roundTrip(raw);
  assert.equal(r.codec, 'raw');
  assert.equal(r.length, raw.length);
  assert.deepEqual(r.out.subarray(0, r.length), raw);
});

test('a chunk with the digest the vault already holds for it is not compressed; any other digest changes nothing', () => {
  const raw = Buffer.alloc(256 * 1024);
  for (let i = 0; i < raw.length; i++) raw[i] = 'pagevault '.charCodeAt(i % 10);
  const out = Buffer.alloc(maxEncodedSize(raw.length), 0xee);
  const known = encodeChunk(raw, out, 1, undefined, sha256(raw));
  assert.equal(known.known, true);
  assert.equal(known.length, 0);
  assert.deepEqual(Buffer.from(known.digest), sha256(raw));
  assert.ok(out.every((b) => b === 0xee), 'nothing written');
  const other = sha256(raw);
  other[31]! ^= 1;
  const encoded = encodeChunk(raw, out, 1, undefined, other);
  assert.equal(encoded.known, false);
  assert.equal(encoded.codec, 'zstd');
  const back = Buffer.alloc(raw.length);
  decodeChunk(out.subarray(0, encoded.length), encoded.codec, back, encoded.digest);
  assert.deepEqual(back, raw);
  assert.throws(() => encodeChunk(raw, out, 1, undefined, new Uint8Array(31)), isBug);
});

test('a zero chunk is detected, not stored, and has the digest of its zero bytes', () => {
  const raw = Buffer.alloc(1024 * 1024);
  const out = Buffer.alloc(maxEncodedSize(raw.length), 0xee);
  const digestOut = new Uint8Array(32);
  const r = encodeChunk(raw, out, 1, digestOut);
  assert.equal(r.zero, true);
  assert.equal(r.length, 0);
  assert.equal(r.digest, digestOut);
  assert.deepEqual(Buffer.from(digestOut), sha256(raw));
  assert.deepEqual(zeroDigest(raw.length), sha256(raw));
  assert.equal(out[0], 0xee, 'nothing written');
});

test('isAllZero finds a single set bit anywhere, across its comparison slices', () => {
  const buf = Buffer.alloc(600 * 1024);
  assert.equal(isAllZero(buf), true);
  assert.equal(isAllZero(buf.subarray(0, 0)), true);
  for (const at of [0, 1, 7, 8, 4095, 256 * 1024 - 1, 256 * 1024, 300_001, buf.length - 2, buf.length - 1]) {
    buf[at] = 0x10;
    assert.equal(isAllZero(buf), false, `bit at ${at}`);
    assert.equal(isAllZero(buf.subarray(at + 1)), true, `view after ${at}`);
    buf[at] = 0;
  }
});

function damageCode(fn: () => void): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof IntegrityError, `not an IntegrityError: ${error}`);
    return error.code;
  }
  assert.fail('no error');
}

function compressible(): Buffer {
  const raw = Buffer.alloc(64 * 1024);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31) % 97 < 60 ? 0x41 + (i % 5) : (i >> 3) & 0xff;
  return raw;
}

test('a flipped bit anywhere in a zstd chunk is CHUNK_DAMAGED or CHUNK_DIGEST, never accepted', () => {
  const raw = compressible();
  const out = Buffer.alloc(maxEncodedSize(raw.length));
  const r = encodeChunk(raw, out, 1);
  assert.equal(r.codec, 'zstd');
  const back = Buffer.alloc(raw.length);
  const codes = new Set<string>();
  for (let at = 0; at < r.length; at += Math.max(1, Math.floor(r.length / 97))) {
    const bad = Buffer.from(out.subarray(0, r.length));
    bad[at]! ^= 1 << (at % 8);
    codes.add(damageCode(() => decodeChunk(bad, 'zstd', back, r.digest)));
  }
  assert.ok([...codes].every((c) => c === 'CHUNK_DAMAGED' || c === 'CHUNK_DIGEST'), [...codes].join());
  assert.ok(codes.has('CHUNK_DIGEST'), 'some flips decode to wrong bytes and are caught by the digest');
});

test('a flipped bit in a raw chunk is CHUNK_DIGEST', () => {
  const raw = randomBytes(64 * 1024);
  const out = Buffer.alloc(maxEncodedSize(raw.length));
  const r = encodeChunk(raw, out, 1);
  assert.equal(r.codec, 'raw');
  out[1234]! ^= 4;
  assert.equal(damageCode(() => decodeChunk(out.subarray(0, r.length), 'raw', Buffer.alloc(raw.length), r.digest)), 'CHUNK_DIGEST');
});

test('a wrong expected digest is CHUNK_DIGEST, with both digests in the message', () => {
  const raw = compressible();
  const out = Buffer.alloc(maxEncodedSize(raw.length));
  const r = encodeChunk(raw, out, 1);
  const wrong = Buffer.from(r.digest);
  wrong[31]! ^= 1;
  assert.throws(() => decodeChunk(out.subarray(0, r.length), r.codec, Buffer.alloc(raw.length), wrong), (e: unknown) => {
    assert.ok(e instanceof IntegrityError);
    assert.equal(e.code, 'CHUNK_DIGEST');
    assert.match(e.message, new RegExp(`expected ${wrong.toString('hex')}, got ${Buffer.from(r.digest).toString('hex')}`));
    return true;
  });
});

test('a truncated or extended chunk is CHUNK_DAMAGED, zstd or raw, as is a wrong raw length', () => {
  const raw = compressible();
  const out = Buffer.alloc(maxEncodedSize(raw.length));
  const r = encodeChunk(raw, out, 1);
  const back = Buffer.alloc(raw.length);
  for (const cut of [1, 3, Math.floor(r.length / 2), r.length - 1]) {
    assert.equal(damageCode(() => decodeChunk(out.subarray(0, cut), 'zstd', back, r.digest)), 'CHUNK_DAMAGED', `cut at ${cut}`);
  }
  assert.equal(damageCode(() => decodeChunk(Buffer.concat([out.subarray(0, r.length), Buffer.from([1, 2, 3])]), 'zstd', back, r.digest)), 'CHUNK_DAMAGED');
  // The frame is whole but the chunk is not the length the manifest says.
  assert.equal(damageCode(() => decodeChunk(out.subarray(0, r.length), 'zstd', Buffer.alloc(raw.length + 4096), r.digest)), 'CHUNK_DAMAGED');
  assert.equal(damageCode(() => decodeChunk(out.subarray(0, r.length), 'zstd', Buffer.alloc(raw.length - 4096), r.digest)), 'CHUNK_DAMAGED');
  assert.equal(damageCode(() => decodeChunk(raw.subarray(1), 'raw', back, r.digest)), 'CHUNK_DAMAGED');
});

test('bad arguments are BugErrors: a short output buffer, a digest that is not 32 bytes, an unknown codec', () => {
  const raw = compressible();
  assert.throws(() => encodeChunk(raw, Buffer.alloc(raw.length), 1), isBug);
  assert.throws(() => encodeChunk(raw, Buffer.alloc(maxEncodedSize(raw.length)), 1, new Uint8Array(16)), isBug);
  assert.throws(() => decodeChunk(raw, 'raw', Buffer.alloc(raw.length), new Uint8Array(20)), isBug);
  assert.throws(() => decodeChunk(raw, 'lz4' as 'raw', Buffer.alloc(raw.length), sha256(raw)), isBug);
});
