// The envelope around each of the vault's binary objects (the manifest, the extent table): a fixed header, a
// body (one zstd frame), and a SHA-256 over all of it. docs/FORMAT.md, "The envelope", is the specification.
// Opening one trusts nothing: magic, then version, then the digest, then the lengths and the frame's sizes.
import { createHash } from 'node:crypto';
import zstd from 'zstd-napi/binding.js';
import { vaultDefaults } from '../config/defaults.ts';
import { BugError, IntegrityError } from '../errors.ts';
import { FORMAT_VERSION } from './model.ts';
import { Malformed } from './bytes.ts';

/** Magic (8), format version (u16), flags (u16), stored body length (u32), raw body length (u32); big-endian. */
export const ENVELOPE_HEADER_SIZE = 20;
export const ENVELOPE_DIGEST_SIZE = 32;
/** Header flag: the body is one zstd frame (writers always set it). */
export const FLAG_ZSTD = 0x0001;
/**
 * Header flag, reserved: the body is encrypted (its parameters in the repository config). No format 2 writer
 * sets it yet; a reader that finds it refuses the object rather than misread it.
 */
export const FLAG_ENCRYPTED = 0x0002;

/** The kinds of enveloped objects: their magic, and the words messages use for them. */
export const objectKinds = {
  manifest: { magic: Buffer.from('PVMANIF\0', 'latin1'), what: 'manifest' },
  extentTable: { magic: Buffer.from('PVEXTNT\0', 'latin1'), what: 'extent table' },
  mark: { magic: Buffer.from('PVGCMRK\0', 'latin1'), what: 'garbage collection mark' },
} as const;

export type ObjectKind = (typeof objectKinds)[keyof typeof objectKinds];

let cctx: zstd.CCtx | undefined;

/** The object's bytes around `body`. */
export function seal(kind: ObjectKind, body: Uint8Array): Buffer {
  if (body.length > 0xffff_ffff) throw new BugError(`a ${kind.what} body of ${body.length} bytes is more than 4 GiB`);
  const out = Buffer.allocUnsafe(ENVELOPE_HEADER_SIZE + zstd.compressBound(body.length) + ENVELOPE_DIGEST_SIZE);
  cctx ??= new zstd.CCtx();
  const packed = cctx.compress(out.subarray(ENVELOPE_HEADER_SIZE, out.length - ENVELOPE_DIGEST_SIZE), body, vaultDefaults.manifestCompressionLevel);
  kind.magic.copy(out, 0);
  out.writeUInt16BE(FORMAT_VERSION, 8);
  out.writeUInt16BE(FLAG_ZSTD, 10);
  out.writeUInt32BE(packed, 12);
  out.writeUInt32BE(body.length, 16);
  const end = ENVELOPE_HEADER_SIZE + packed;
  createHash('sha256').update(out.subarray(0, end)).digest().copy(out, end);
  return out.subarray(0, end + ENVELOPE_DIGEST_SIZE);
}

/**
 * The body of an enveloped object (a new buffer, never a view of `buf`). A version other than this reader's
 * is IntegrityError MANIFEST_VERSION (naming `label`), checked before anything but the magic, since another
 * format may change every other field; all other damage throws Malformed.
 */
export function unseal(kind: ObjectKind, buf: Buffer, label: string): Buffer {
  const { magic } = kind;
  if (buf.length < magic.length || !magic.equals(buf.subarray(0, magic.length))) throw new Malformed(`it does not start with the pagevault ${kind.what} magic`);
  if (buf.length < 10) throw new Malformed(`it is truncated (${buf.length} bytes)`);
  const version = buf.readUInt16BE(8);
  if (version > FORMAT_VERSION) {
    throw new IntegrityError('MANIFEST_VERSION', `${label} was written by a newer pagevault (format ${version}); upgrade pagevault to read it`);
  }
  if (version === 1) {
    throw new IntegrityError(
      'MANIFEST_VERSION',
      `${label} is in format 1, which only development builds of pagevault wrote; this pagevault reads format ${FORMAT_VERSION}: ` +
        'snapshot the database again into a new vault (another bucket or prefix)',
    );
  }
  if (version !== FORMAT_VERSION) throw new Malformed(`it claims format ${version}, which never existed`);
  if (buf.length < ENVELOPE_HEADER_SIZE + ENVELOPE_DIGEST_SIZE) throw new Malformed(`it is truncated (${buf.length} bytes)`);
  const end = buf.length - ENVELOPE_DIGEST_SIZE;
  if (!createHash('sha256').update(buf.subarray(0, end)).digest().equals(buf.subarray(end))) {
    throw new Malformed('its SHA-256 does not match its content (truncated, altered or not written by pagevault)');
  }
  const flags = buf.readUInt16BE(10);
  const storedLength = buf.readUInt32BE(12);
  const rawLength = buf.readUInt32BE(16);
  if (flags & FLAG_ENCRYPTED) throw new Malformed('it says it is encrypted, which this pagevault cannot read');
  if ((flags & ~FLAG_ZSTD) !== 0) throw new Malformed(`it has unknown flags 0x${flags.toString(16)}`);
  if (ENVELOPE_HEADER_SIZE + storedLength !== end) throw new Malformed(`its header says the body is ${storedLength} bytes, but it is ${end - ENVELOPE_HEADER_SIZE}`);
  const stored = buf.subarray(ENVELOPE_HEADER_SIZE, end);
  if (!(flags & FLAG_ZSTD)) {
    if (rawLength !== storedLength) throw new Malformed('its header gives two lengths for an uncompressed body');
    return Buffer.from(stored); // a copy: views of the body must not alias the caller's buffer
  }
  // One frame, exactly the stored bytes, declaring the raw length: memory is bounded by the header, whatever the frame says.
  if (zstd.findFrameCompressedSize(stored) !== storedLength || zstd.getFrameContentSize(stored) !== rawLength) {
    throw new Malformed('its body is not one zstd frame of the sizes the header gives');
  }
  const body = Buffer.allocUnsafe(rawLength);
  if (zstd.decompress(body, stored) !== rawLength) throw new Malformed('its body decompresses to the wrong size');
  return body;
}

/** Runs `decode`, turning anything but an IntegrityError into the one `damaged` makes of what went wrong. */
export function decoding<T>(damaged: (detail: string, cause: unknown) => IntegrityError, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw damaged(err instanceof Malformed ? err.message : `it cannot be decoded (${(err as Error)?.message ?? String(err)})`, err);
  }
}
