// The repository config object (pagevault.json): pretty JSON, written once with a vault's first snapshot and
// read before anything else, so that an old pagevault refuses a vault a newer one has written.
import { vaultDefaults } from '../config/defaults.ts';
import { BugError, IntegrityError } from '../errors.ts';
import { isUtcTimestamp } from './ids.ts';
import { FORMAT_VERSION, type ChunkDigest, type ExtentCodec, type RepositoryConfig } from './model.ts';

const CODECS: readonly ExtentCodec[] = ['zstd', 'raw'];
const DIGESTS: readonly ChunkDigest[] = ['sha256'];
const KEYS = ['format', 'formatVersion', 'codec', 'digest', 'encryption', 'createdAt'];

export function newRepositoryConfig(now: Date = new Date(), codec: ExtentCodec = vaultDefaults.codec): RepositoryConfig {
  return { format: 'pagevault', formatVersion: FORMAT_VERSION, codec, digest: 'sha256', encryption: null, createdAt: now.toISOString() };
}

export function encodeConfig(c: RepositoryConfig): Buffer {
  if (c.format !== 'pagevault' || c.formatVersion !== FORMAT_VERSION || !CODECS.includes(c.codec) || !DIGESTS.includes(c.digest) || c.encryption !== null) {
    throw new BugError(`encode repository config: not a format ${FORMAT_VERSION} config: ${JSON.stringify(c)}`);
  }
  const { format, formatVersion, codec, digest, encryption, createdAt } = c;
  return Buffer.from(`${JSON.stringify({ format, formatVersion, codec, digest, encryption, createdAt }, null, 2)}\n`, 'utf8');
}

/**
 * The config in `bytes`; `where` names the object in messages. Throws IntegrityError: CONFIG_VERSION for a
 * config in another format (a newer pagevault's, or format 1 of development builds), CONFIG_DAMAGED for anything
 * else that is not a format 2 config.
 */
export function decodeConfig(bytes: Uint8Array, where: string): RepositoryConfig {
  const damaged = (detail: string, cause?: unknown): never => {
    throw new IntegrityError('CONFIG_DAMAGED', `repository config ${where} is damaged: ${detail}`, { cause });
  };
  let c: unknown;
  try {
    c = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    return damaged(`it is not JSON (${(err as Error).message})`, err);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return damaged('it is not a JSON object');
  const o = c as Record<string, unknown>;
  if (o.format !== 'pagevault') return damaged(`its format is ${JSON.stringify(o.format)}, not "pagevault"`);
  // The version is read before any other field: a newer format may have changed them all.
  const v = o.formatVersion;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) return damaged(`its formatVersion is ${JSON.stringify(v)}`);
  if (v > FORMAT_VERSION) {
    throw new IntegrityError('CONFIG_VERSION', `repository config ${where} was written by a newer pagevault (format ${v}); upgrade pagevault to use this vault`);
  }
  if (v < FORMAT_VERSION) {
    throw new IntegrityError(
      'CONFIG_VERSION',
      `repository config ${where} is format ${v}, which only development builds of pagevault wrote; this pagevault reads format ${FORMAT_VERSION}: ` +
        'snapshot the database again into a new vault (another bucket or prefix)',
    );
  }
  const extra = Object.keys(o).filter((k) => !KEYS.includes(k));
  if (extra.length > 0) return damaged(`it has unknown fields: ${extra.join(', ')}`);
  if (!CODECS.includes(o.codec as ExtentCodec)) return damaged(`its codec is ${JSON.stringify(o.codec)}, not one of ${CODECS.join(', ')}`);
  if (!DIGESTS.includes(o.digest as ChunkDigest)) return damaged(`its digest is ${JSON.stringify(o.digest)}, not one of ${DIGESTS.join(', ')}`);
  if (o.encryption !== null) return damaged('its encryption is set, and this pagevault cannot read encrypted vaults');
  const createdAt = o.createdAt;
  if (!isUtcTimestamp(createdAt)) return damaged(`its createdAt is ${JSON.stringify(createdAt)}, not a time`);
  return { format: 'pagevault', formatVersion: FORMAT_VERSION, codec: o.codec as ExtentCodec, digest: o.digest as ChunkDigest, encryption: null, createdAt };
}
