// The exit-code table: each error class maps to its code, and the README's table is the code's table.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { exitCodeFor, exitCodes } from '../../src/cli/exit-codes.ts';
import { AbortedError, IntegrityError, SourceError, StorageError, TargetExistsError, UsageError } from '../../src/errors.ts';
import { formatBytes, parseSize } from '../../src/cli/units.ts';

test('each error class has its exit code; a signal decides over the error', () => {
  assert.equal(exitCodeFor(new UsageError('BAD_URL', 'x')), 2);
  assert.equal(exitCodeFor(new SourceError('SOURCE_MISSING', 'x')), 3);
  assert.equal(exitCodeFor(new StorageError('NO_SUCH_BUCKET', 'x')), 4);
  assert.equal(exitCodeFor(new IntegrityError('MANIFEST_DAMAGED', 'x')), 5);
  assert.equal(exitCodeFor(new TargetExistsError('TARGET_EXISTS', 'x')), 6);
  assert.equal(exitCodeFor(new Error('x')), 1);
  assert.equal(exitCodeFor(new AbortedError()), 1, 'an abort nobody signalled is unexpected');
  assert.equal(exitCodeFor(new AbortedError(), 'SIGINT'), 130);
  assert.equal(exitCodeFor(new StorageError('CONNECTION', 'x'), 'SIGTERM'), 143);
});

test("the README's exit-code table is the code's", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Exit codes'));
  const rows = [...section.matchAll(/^\| (\d+) \| (.+) \|$/gm)].map((m) => [Number(m[1]), m[2]!.replace(/`/g, '')]);
  assert.deepEqual(
    rows,
    Object.values(exitCodes).map((e) => [e.code, e.meaning]),
  );
});

test('sizes: binary multiples whatever the spelling, exact messages for the rest', () => {
  assert.equal(parseSize('8MiB', 'part-size'), 8 * 1024 * 1024);
  assert.equal(parseSize('64M', 'part-size'), 64 * 1024 * 1024);
  assert.equal(parseSize('1G', 'part-size'), 1024 ** 3);
  assert.equal(parseSize('512k', 'part-size'), 512 * 1024);
  assert.equal(parseSize('1.5MB', 'part-size'), 1.5 * 1024 * 1024);
  assert.equal(parseSize('4096', 'part-size'), 4096);
  for (const bad of ['lots', '-1M', '8 MiBs', '', 'M']) {
    assert.throws(() => parseSize(bad, 'part-size'), (err: unknown) => err instanceof UsageError && /--part-size must be a size/.test(err.message), bad);
  }
  assert.equal(formatBytes(900), '900 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(3088384), '2.95 MiB');
});
