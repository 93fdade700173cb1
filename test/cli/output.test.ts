// The CLI's output pieces on their own: boolean spellings, flags from the environment, hints that depend on
// the command, the JSON error object, DAMAGED rows in a table, and component loggers.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Options } from 'yargs';
import { flagOn, parseBoolean, prepareFlags } from '../../src/cli/env.ts';
import { formatError, jsonError, table } from '../../src/cli/output.ts';
import { exitCodeFor } from '../../src/cli/exit-codes.ts';
import { BugError, IntegrityError, SourceError, UsageError } from '../../src/errors.ts';
import { toolVersion } from '../../src/version.ts';
import { componentLogger } from '../../src/util/logger.ts';

test('booleans: the usual spellings in any case, nothing else', () => {
  for (const t of ['true', 'TRUE', '1', 'yes', 'Yes', 'on', 'ON', ' on ']) assert.equal(parseBoolean(t), true, t);
  for (const f of ['false', 'False', '0', 'no', 'NO', 'off', 'Off']) assert.equal(parseBoolean(f), false, f);
  for (const bad of ['', 'maybe', 'y', 'n', '2', 'truee', 'enabled']) assert.equal(parseBoolean(bad), undefined, bad);
});

const flags: Record<string, Options> = {
  json: { type: 'boolean' },
  force: { type: 'boolean' },
  'if-not-exists': { type: 'boolean' },
  endpoint: { type: 'string' },
};

test('prepareFlags: env booleans as true/false, foreign variables dropped, bad values named', () => {
  const env: NodeJS.ProcessEnv = { PAGEVAULT_JSON: 'Yes', PAGEVAULT_IF_NOT_EXISTS: 'off', PAGEVAULT_FORCE: '', PAGEVAULT_TEST_TIER: 'rgw', PAGEVAULT_ENDPOINT: 'http://x', HOME: '/h' };
  const argv = prepareFlags(['ls', 'file://./v'], env, flags);
  assert.deepEqual(argv, ['ls', 'file://./v']);
  assert.deepEqual(env, { PAGEVAULT_JSON: 'true', PAGEVAULT_IF_NOT_EXISTS: 'false', PAGEVAULT_ENDPOINT: 'http://x', HOME: '/h' });

  assert.throws(
    () => prepareFlags([], { PAGEVAULT_FORCE: 'maybe' }, flags),
    (err: unknown) => err instanceof UsageError && err.message === 'PAGEVAULT_FORCE must be true/false, 1/0, yes/no or on/off, got "maybe"',
  );
  // Not a boolean flag: left to yargs as it is.
  const strings = { PAGEVAULT_ENDPOINT: 'maybe' };
  prepareFlags([], strings, flags);
  assert.deepEqual(strings, { PAGEVAULT_ENDPOINT: 'maybe' });
});

test('prepareFlags: --flag=<boolean> on the command line, up to --', () => {
  assert.deepEqual(prepareFlags(['ls', '--json=YES', '--force=0', '--endpoint=on', '--', '--json=maybe'], {}, flags), [
    'ls',
    '--json',
    '--no-force',
    '--endpoint=on',
    '--',
    '--json=maybe',
  ]);
  assert.throws(() => prepareFlags(['--json=maybe'], {}, flags), /^UsageError: --json must be true\/false, 1\/0, yes\/no or on\/off, got "maybe"$/);
});

test('flagOn: the last flag wins, then the variable', () => {
  assert.equal(flagOn(['ls', '--json'], {}, 'json'), true);
  assert.equal(flagOn(['ls', '--json', '--no-json'], { PAGEVAULT_JSON: '1' }, 'json'), false);
  assert.equal(flagOn(['ls', '--json=off'], {}, 'json'), false);
  assert.equal(flagOn(['ls'], { PAGEVAULT_JSON: 'on' }, 'json'), true);
  assert.equal(flagOn(['ls'], { PAGEVAULT_JSON: 'maybe' }, 'json'), false);
  assert.equal(flagOn(['ls', '-v'], {}, 'verbose', 'v'), true);
  assert.equal(flagOn(['ls', '--', '--json'], {}, 'json'), false);
});

test('hints depend on the command: ls never sends the user back to ls', () => {
  const manifest = new IntegrityError('MANIFEST_DAMAGED', 'manifest x is damaged: bad digest');
  assert.match(formatError(manifest, false, 'restore'), /hint: .*`pagevault ls` lists the snapshots, `--snapshot <id>` restores an earlier one/);
  const ls = formatError(manifest, false, 'ls');
  assert.doesNotMatch(ls, /pagevault ls/);
  assert.match(ls, /hint: the rows marked DAMAGED cannot be restored/);
  const config = new IntegrityError('CONFIG_MISSING', 'vault v holds manifests/x but its repository config pagevault.json is missing');
  assert.equal(formatError(config, false, 'ls'), `pagevault: ${config.message}`);
  assert.match(formatError(config, false, 'restore'), /hint: `pagevault ls` lists the snapshots the vault still holds/);
  assert.match(formatError(new UsageError('BAD_OPTION', 'x'), false, 'snapshot'), /hint: see pagevault snapshot --help$/);
  assert.match(formatError(new UsageError('BAD_OPTION', 'x'), false), /hint: see pagevault --help$/);
});

test('jsonError: one line, code, exit code, message, the hint when there is one, scrubbed, partial results beside', () => {
  const env = process.env.AWS_SECRET_ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = 'sekrit-value';
  try {
    const line = jsonError(new SourceError('SOURCE_MISSING', 'no database at /x/sekrit-value/app.db'), 3, 'snapshot');
    assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'));
    assert.deepEqual(JSON.parse(line), { error: { code: 'SOURCE_MISSING', exitCode: 3, message: 'no database at /x/***/app.db' } });
  } finally {
    if (env === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    else process.env.AWS_SECRET_ACCESS_KEY = env;
  }
  assert.deepEqual(JSON.parse(jsonError(new Error('boom'), 1, undefined)), { error: { code: 'UNEXPECTED', exitCode: 1, message: 'boom' } });
  const partial = JSON.parse(jsonError(new IntegrityError('MANIFEST_DAMAGED', 'm'), 5, 'ls', { snapshots: [{ id: 'a', damaged: 'm' }] }));
  assert.deepEqual(Object.keys(partial), ['error', 'snapshots']);
  assert.equal(partial.error.hint, 'the rows marked DAMAGED cannot be restored; `pagevault restore --snapshot <id>` restores any other');
});

test('table: a short row ends in a cell spanning the rest, which widens no column', () => {
  const out = table(
    ['ID', 'SIZE', 'N'],
    [
      ['a', '1 KiB', 7],
      ['bbb', 'DAMAGED: a long reason that is wider than every column'],
      ['cc', '22 KiB', 10],
    ],
  );
  assert.equal(out, ['ID   SIZE    N', 'a    1 KiB    7', 'bbb  DAMAGED: a long reason that is wider than every column', 'cc   22 KiB  10'].join('\n'));
});

test('componentLogger: one component key per line, nested names joined with a dot', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).trimEnd().split('\n'));
      done();
    },
  });
  const root = pino({ level: 'debug', base: null, timestamp: false }, sink);
  const snapshot = componentLogger(root, 'snapshot');
  const source = componentLogger(snapshot, 'source');
  const deeper = componentLogger(source, 'vfs');
  snapshot.info('a');
  source.info({ mode: 'wal' }, 'b');
  deeper.debug('c');
  componentLogger(root.child({ component: 'app' }), 'snapshot').info('d');
  componentLogger(undefined, 'x').error('never written anywhere');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l)),
    [
      { level: 30, component: 'snapshot', msg: 'a' },
      { level: 30, component: 'snapshot.source', mode: 'wal', msg: 'b' },
      { level: 20, component: 'snapshot.source.vfs', msg: 'c' },
      { level: 30, component: 'app', msg: 'd' },
    ],
  );
  for (const l of lines) assert.equal(l.split('"component"').length - 1, 1, l);
});

test('a broken invariant: exit 1, "a bug in pagevault" with the version, a request to report it, never the --help hint', () => {
  const bug = new BugError('upload packs/x: complete() called twice');
  assert.equal(exitCodeFor(bug), 1);
  for (const command of [undefined, 'snapshot', 'restore']) {
    const lines = formatError(bug, false, command).split('\n');
    assert.equal(lines[0], 'pagevault: upload packs/x: complete() called twice');
    assert.equal(lines[1], `pagevault: hint: this is a bug in pagevault ${toolVersion}, not a problem with your flags or data; please report it with this message and the output of --verbose`);
    assert.equal(lines[2], 'pagevault: run again with --verbose for the stack trace');
    assert.ok(!lines.join('\n').includes('--help'));
    const json = JSON.parse(jsonError(bug, exitCodeFor(bug), command)) as { error: { code: string; exitCode: number; hint: string } };
    assert.equal(json.error.code, 'BUG');
    assert.equal(json.error.exitCode, 1);
    assert.ok(json.error.hint.includes(`a bug in pagevault ${toolVersion}`) && !json.error.hint.includes('--help'));
  }
  assert.match(toolVersion, /^\d+\.\d+\.\d+/);
  // A bug is not a usage mistake, whatever a worker thread's error looked like.
  assert.ok(!(bug instanceof UsageError));
});
