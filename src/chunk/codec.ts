// The chunk codec: per chunk, its SHA-256 digest, whether it is all zero, and its encoded bytes (zstd, or
// the raw bytes when compression does not pay); and the reverse, decoding into a caller buffer and
// verifying the digest. Pure and synchronous: CodecPool runs these in worker threads, tests call them
// directly. Every output goes into a caller buffer, so a hot loop allocates nothing chunk-sized.
//
// zstd-napi's high-level Compressor/Decompressor return a new Buffer per call; its binding's CCtx/DCtx
// write into a caller buffer and keep their context between calls, so they are used here.
import { createHash } from 'node:crypto';
import binding from 'zstd-napi/binding.js';
import { codecDefaults } from '../config/defaults.ts';
import { BugError, IntegrityError, UsageError } from '../errors.ts';
import type { ExtentCodec } from '../vault/model.ts';

export const DIGEST_BYTES = 32;

export interface EncodedChunk {
  /** SHA-256 of the raw bytes: `digestOut` when one was given, else a new 32-byte Buffer. */
  digest: Uint8Array;
  /** Every byte is zero: nothing was written to `out` (length 0); the manifest records a zero extent. */
  zero: boolean;
  /** The digest equals the `knownDigest` given: the chunk was not compressed, nothing was written to `out`. */
  known: boolean;
  /** How `out[0, length)` encodes the chunk ('raw' for a zero chunk, which stores nothing). */
  codec: ExtentCodec;
  /** Bytes written to `out`. */
  length: number;
}

// One context per thread (each worker has its own module instance), reused for every chunk.
let cctx: binding.CCtx | undefined;
let dctx: binding.DCtx | undefined;

/** The size `out` must have for encodeChunk of `rawLength` bytes: zstd's compress bound (>= rawLength). */
export function maxEncodedSize(rawLength: number): number {
  if (!Number.isSafeInteger(rawLength) || rawLength < 0) throw new BugError(`chunk length must be a non-negative integer, got ${rawLength}`);
  return binding.compressBound(rawLength);
}

/** Checks a zstd level against the bounds of the bundled zstd. */
export function checkLevel(level: number): void {
  const min = binding.minCLevel();
  const max = binding.maxCLevel();
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new UsageError('BAD_OPTION', `zstd level must be an integer from ${min} to ${max}, got ${level}`);
  }
}

/**
 * Digests and encodes `raw` into `out` (at least maxEncodedSize(raw.length) bytes). The chunk is stored
 * 'raw' (copied into `out`) unless zstd makes it smaller than codecDefaults.rawThreshold of its size. An
 * all-zero chunk is neither compressed nor copied, nor is a chunk whose digest is `knownDigest` (the digest of
 * what the vault already holds at its place: compressing it again would be thrown away). With `digestOut`
 * (32 bytes), the digest is written there.
 */
export function encodeChunk(
  raw: Uint8Array,
  out: Uint8Array,
  level: number = codecDefaults.level,
  digestOut?: Uint8Array,
  knownDigest?: Uint8Array,
): EncodedChunk {
  if (out.length < maxEncodedSize(raw.length)) {
    throw new BugError(`encode buffer of ${out.length} bytes is smaller than maxEncodedSize(${raw.length}) = ${maxEncodedSize(raw.length)}`);
  }
  for (const [name, d] of [['digest buffer', digestOut], ['known digest', knownDigest]] as const) {
    if (d !== undefined && d.length !== DIGEST_BYTES) throw new BugError(`${name} must be ${DIGEST_BYTES} bytes, got ${d.length}`);
  }
  if (isAllZero(raw)) {
    return { digest: placeDigest(zeroDigest(raw.length), digestOut), zero: true, known: false, codec: 'raw', length: 0 };
  }
  const hash = createHash('sha256').update(raw).digest();
  const digest = placeDigest(hash, digestOut);
  if (knownDigest !== undefined && hash.equals(knownDigest)) return { digest, zero: false, known: true, codec: 'raw', length: 0 };
  cctx ??= new binding.CCtx();
  const compressed = cctx.compress(out, raw, level);
  if (compressed < raw.length * codecDefaults.rawThreshold) return { digest, zero: false, known: false, codec: 'zstd', length: compressed };
  out.set(raw);
  return { digest, zero: false, known: false, codec: 'raw', length: raw.length };
}

/**
 * Decodes `encoded` (exactly the stored bytes) into `out`, whose length must be the chunk's raw length, and
 * checks the result against `expectedDigest`. Throws IntegrityError CHUNK_DAMAGED when the bytes do not
 * decode to exactly out.length bytes, CHUNK_DIGEST when they do but the digest differs. Messages carry no
 * context: the caller wraps them with the pack key and page range.
 */
export function decodeChunk(encoded: Uint8Array, codec: ExtentCodec, out: Uint8Array, expectedDigest: Uint8Array): void {
  if (expectedDigest.length !== DIGEST_BYTES) {
    throw new BugError(`expected digest must be ${DIGEST_BYTES} bytes, got ${expectedDigest.length}`);
  }
  if (codec === 'raw') {
    if (encoded.length !== out.length) {
      throw new IntegrityError('CHUNK_DAMAGED', `raw chunk has ${encoded.length} bytes, expected ${out.length}`);
    }
    out.set(encoded);
  } else if (codec === 'zstd') {
    dctx ??= new binding.DCtx();
    let n: number;
    try {
      n = dctx.decompress(out, encoded);
    } catch (error) {
      throw new IntegrityError('CHUNK_DAMAGED', `zstd chunk of ${encoded.length} bytes does not decode to ${out.length} bytes: ${(error as Error).message}`, { cause: error });
    }
    if (n !== out.length) throw new IntegrityError('CHUNK_DAMAGED', `zstd chunk decodes to ${n} bytes, expected ${out.length}`);
  } else {
    throw new BugError(`unknown chunk codec ${JSON.stringify(codec)}`);
  }
  const actual = createHash('sha256').update(out).digest();
  if (!actual.equals(expectedDigest)) {
    throw new IntegrityError('CHUNK_DIGEST', `chunk digest mismatch: expected ${Buffer.from(expectedDigest).toString('hex')}, got ${actual.toString('hex')}`);
  }
}

// Shared zeros to compare against with memcmp (Buffer.equals); inputs longer than this are compared in slices.
const ZEROS = Buffer.alloc(256 * 1024);

/** True when every byte of `buf` is zero (true for an empty buffer). */
export function isAllZero(buf: Uint8Array): boolean {
  const n = buf.length;
  // Most chunks that are not zero show it in their first or last byte.
  if (n === 0) return true;
  if (buf[0] !== 0 || buf[n - 1] !== 0) return false;
  const view = Buffer.from(buf.buffer, buf.byteOffset, n);
  for (let offset = 0; offset < n; offset += ZEROS.length) {
    const end = Math.min(n, offset + ZEROS.length);
    if (!view.subarray(offset, end).equals(ZEROS.subarray(0, end - offset))) return false;
  }
  return true;
}

const zeroDigests = new Map<number, Buffer>();

/** SHA-256 of `length` zero bytes (memoized: a database has few distinct chunk lengths). */
export function zeroDigest(length: number): Buffer {
  let digest = zeroDigests.get(length);
  if (digest === undefined) {
    const hash = createHash('sha256');
    for (let left = length; left > 0; left -= ZEROS.length) hash.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
    digest = hash.digest();
    zeroDigests.set(length, digest);
  }
  return Buffer.from(digest);
}

function placeDigest(digest: Buffer, digestOut: Uint8Array | undefined): Uint8Array {
  if (digestOut === undefined) return digest;
  digestOut.set(digest);
  return digestOut;
}
