// The exit-code table: each error class maps to its code, and the README's table is the code's table.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exitCodeFor, exitCodes } from '../../src/cli/exit-codes.ts';
import * as errors from '../../src/errors.ts';
import { AbortedError, BugError, IntegrityError, SourceError, StorageError, TargetExistsError, UsageError } from '../../src/errors.ts';
import { errorCode } from '../../src/cli/output.ts';
import { formatBytes, parseSize } from '../../src/cli/units.ts';

test('each error class has its exit code; a signal decides over the error', () => {
  assert.equal(exitCodeFor(new UsageError('BAD_URL', 'x')), 2);
  assert.equal(exitCodeFor(new SourceError('SOURCE_MISSING', 'x')), 3);
  assert.equal(exitCodeFor(new StorageError('NO_SUCH_BUCKET', 'x')), 4);
  assert.equal(exitCodeFor(new IntegrityError('MANIFEST_DAMAGED', 'x')), 5);
  assert.equal(exitCodeFor(new TargetExistsError('TARGET_EXISTS', 'x')), 6);
  assert.equal(exitCodeFor(new Error('x')), 1);
  assert.equal(exitCodeFor(new BugError('x')), 1, 'a broken invariant is a bug, not a usage mistake');
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

// Every code src/ can throw, as [class, code]: `new XxxError('CODE'`, `storageError('CODE'`, a subclass's
// `super('CODE'`, and the StorageErrorCode union (codes mapped from the SDK's and the file system's errors).
function thrownCodes(): [string, string][] {
  const srcDir = new URL('../../src/', import.meta.url).pathname;
  const files = readdirSync(srcDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const parent = new Map<string, string>();
  const found: [string, string][] = [];
  for (const file of files) {
    const text = readFileSync(join(srcDir, file), 'utf8');
    for (const m of text.matchAll(/class (\w+) extends (\w+)/g)) parent.set(m[1]!, m[2]!);
    for (const m of text.matchAll(/new\s+(\w+Error)\(\s*'([A-Z][A-Z0-9_]*)'/g)) found.push([m[1]!, m[2]!]);
    for (const m of text.matchAll(/\bstorageError\(\s*'([A-Z][A-Z0-9_]*)'/g)) found.push(['StorageError', m[1]!]);
    for (const m of text.matchAll(/class (\w+) extends \w+ \{(?:(?!\bclass\s)[\s\S])*?\bsuper\(\s*'([A-Z][A-Z0-9_]*)'/g)) found.push([m[1]!, m[2]!]);
    const union = /export type StorageErrorCode =([\s\S]*?);/.exec(text);
    if (union) for (const m of union[1]!.matchAll(/'([A-Z][A-Z0-9_]*)'/g)) found.push(['StorageError', m[1]!]);
  }
  // Codes built from a variable, each checked to be still where it is said to come from.
  const indirect: [string, string, string][] = [
    ['PagevaultError', 'UNEXPECTED', 'cli/output.ts'], // errorCode() of an error that is not pagevault's
    ['PagevaultError', 'CODEC_FAILED', 'chunk/pool.ts'], // a worker's error without a code
  ];
  for (const [cls, code, file] of indirect) {
    assert.ok(readFileSync(join(srcDir, file), 'utf8').includes(`'${code}'`), `${code} is no longer in src/${file}`);
    found.push([cls, code]);
  }
  assert.equal(errorCode(new Error('x')), 'UNEXPECTED');
  // A subclass's codes belong in its documented ancestor's table (CheckFailedError's in IntegrityError's).
  const documented = new Set(Object.keys(errors));
  const resolve = (cls: string): string => {
    let c = cls;
    while (!documented.has(c) && parent.has(c)) c = parent.get(c)!;
    return c;
  };
  return [...new Map(found.map(([cls, code]) => [`${resolve(cls)} ${code}`, [resolve(cls), code] as [string, string]])).values()];
}

// The README's error-code tables, as [class, code]: a table's class is named in the nearest line above it that
// names an error class in backticks (with its exit code); a row may name its own class: `ABORTED` (`AbortedError`).
function readmeCodes(): { rows: [string, string][]; exits: [string, number][] } {
  const lines = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n');
  const rows: [string, string][] = [];
  const exits: [string, number][] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '| code | meaning |') continue;
    let lead = i - 1;
    while (lead >= 0 && !/`\w+Error`/.test(lines[lead]!)) lead--;
    const classes = lead < 0 ? [] : [...lines[lead]!.matchAll(/`(\w+Error)`/g)].map((m) => m[1]!);
    if (lead >= 0) for (const m of lines[lead]!.matchAll(/`(\w+Error)`s? \(exit (?:code )?(\d+)/g)) exits.push([m[1]!, Number(m[2])]);
    for (let r = i + 2; r < lines.length && lines[r]!.startsWith('|'); r++) {
      const m = /^\| `([A-Z][A-Z0-9_]*)`(?: \(`(\w+Error)`\))? \|/.exec(lines[r]!);
      if (!m) continue;
      assert.ok(m[2] || classes.length > 0, `README line ${r + 1}: no error class names the table of ${m[1]}`);
      for (const cls of m[2] ? [m[2]] : classes) rows.push([cls, m[1]!]);
    }
  }
  return { rows, exits };
}

test("every error code src/ can throw is in the README's table for its class, and every row is still thrown", () => {
  const thrown = thrownCodes();
  const { rows, exits } = readmeCodes();
  const key = ([cls, code]: [string, string]) => `${code} (${cls})`;
  // A code may be listed under any of the classes a table names together (the target's three, exit 1's two).
  const tableOf = new Map<string, Set<string>>();
  for (const [cls, code] of rows) tableOf.set(code, (tableOf.get(code) ?? new Set()).add(cls));
  const missing = thrown.filter(([cls, code]) => !tableOf.get(code)?.has(cls)).map(key);
  assert.deepEqual(missing, [], 'thrown by src/ but not in the README table of their class');
  const thrownKeys = new Set(thrown.map(([, code]) => code));
  const stale = rows.filter(([, code]) => !thrownKeys.has(code)).map(key);
  assert.deepEqual(stale, [], 'in a README table but never thrown');
  assert.ok(thrown.length >= 55, `the collection found only ${thrown.length} codes: is the regex still right?`);
  // The exit code a lead line gives its class is the one the CLI uses.
  assert.ok(exits.length >= 7, `only ${exits.length} classes name their exit code`);
  for (const [cls, exit] of exits) {
    const Class = (errors as Record<string, unknown>)[cls] as (new (...args: never[]) => Error) | undefined;
    assert.ok(Class, `README names ${cls}, which src/errors.ts does not export`);
    assert.equal(exitCodeFor(Object.create(Class.prototype)), exit, `${cls}'s exit code`);
  }
});
