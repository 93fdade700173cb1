import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BugError, IntegrityError } from '../../src/errors.ts';
import { decodeConfig, encodeConfig, newRepositoryConfig } from '../../src/vault/config.ts';

const WHERE = 'file:///backups/app/pagevault.json';
const now = new Date(Date.UTC(2026, 10, 24, 2, 3, 4, 123));

function fails(code: string, message: RegExp) {
  return (err: unknown): boolean => err instanceof IntegrityError && err.code === code && message.test(err.message) && err.message.includes(WHERE);
}

test('a new config round-trips as pretty JSON', () => {
  const c = newRepositoryConfig(now);
  assert.deepEqual(c, { format: 'pagevault', formatVersion: 2, codec: 'zstd', digest: 'sha256', encryption: null, createdAt: '2026-11-24T02:03:04.123Z' });
  const bytes = encodeConfig(c);
  assert.equal(
    bytes.toString(),
    '{\n  "format": "pagevault",\n  "formatVersion": 2,\n  "codec": "zstd",\n  "digest": "sha256",\n  "encryption": null,\n  "createdAt": "2026-11-24T02:03:04.123Z"\n}\n',
  );
  assert.deepEqual(decodeConfig(bytes, WHERE), c);
  const raw = newRepositoryConfig(now, 'raw');
  assert.deepEqual(decodeConfig(encodeConfig(raw), WHERE), raw);
});

test('a config from a newer pagevault is refused with CONFIG_VERSION, whatever else it holds', () => {
  const newer = Buffer.from(JSON.stringify({ format: 'pagevault', formatVersion: 3, codec: 'brotli', encryption: { kdf: 'argon2id' }, keys: [] }));
  assert.throws(() => decodeConfig(newer, WHERE), fails('CONFIG_VERSION', /written by a newer pagevault \(format 3\); upgrade pagevault/));
});

test('a format 1 config (development builds) is refused with CONFIG_VERSION and what to do', () => {
  const v1 = Buffer.from(JSON.stringify({ format: 'pagevault', formatVersion: 1, codec: 'zstd', encryption: null, createdAt: '2026-11-24T02:03:04.123Z' }));
  assert.throws(() => decodeConfig(v1, WHERE), fails('CONFIG_VERSION', /format 1, which only development builds .* snapshot the database again into a new vault/));
});

test('anything else that is not a format 2 config is CONFIG_DAMAGED', () => {
  const good = { ...newRepositoryConfig(now) } as Record<string, unknown>;
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"format": "pagevault",', /not JSON/],
    ['invalid UTF-8', '\xff', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['null', 'null', /not a JSON object/],
    ['another format', JSON.stringify({ ...good, format: 'restic' }), /format is "restic"/],
    ['no format', JSON.stringify({ ...good, format: undefined }), /format is undefined/],
    ['version 0', JSON.stringify({ ...good, formatVersion: 0 }), /formatVersion is 0/],
    ['version as a string', JSON.stringify({ ...good, formatVersion: '1' }), /formatVersion is "1"/],
    ['unknown codec', JSON.stringify({ ...good, codec: 'lz4' }), /codec is "lz4"/],
    ['encryption set', JSON.stringify({ ...good, encryption: {} }), /cannot read encrypted vaults/],
    ['unknown digest', JSON.stringify({ ...good, digest: 'md5' }), /digest is "md5"/],
    ['bad time', JSON.stringify({ ...good, createdAt: 'yesterday' }), /createdAt/],
    ['unknown field', JSON.stringify({ ...good, owner: 'me' }), /unknown fields: owner/],
  ];
  for (const [name, text, message] of cases) {
    const bytes = name === 'invalid UTF-8' ? Buffer.from([0xff]) : Buffer.from(text);
    assert.throws(() => decodeConfig(bytes, WHERE), fails('CONFIG_DAMAGED', message), name);
  }
});

test('encode refuses what is not a format 2 config (BugError)', () => {
  const c = newRepositoryConfig(now);
  assert.throws(() => encodeConfig({ ...c, formatVersion: 1 as 2 }), BugError);
  assert.throws(() => encodeConfig({ ...c, codec: 'lz4' as 'raw' }), BugError);
});
