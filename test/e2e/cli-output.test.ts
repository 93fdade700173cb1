// What the CLI prints, as cron and a person at a terminal see it, on file:// vaults: ls over damaged objects,
// one JSON error object on stdout with --json, booleans from the environment, --quiet, and log lines with one
// component each.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { describeRun, runCli, type CliResult } from '../helpers/cli.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { startWriter } from '../helpers/processes.ts';
import { startFauxqs, type S3Server } from '../helpers/servers.ts';
import { createDatabase, createLargeDatabase, tempDir } from '../helpers/sqlite.ts';
import { assertExit } from './suite.ts';

/** A vault with two snapshots of one database: the vault's directory, its URL, the database and the ids. */
async function vaultOfTwo(t: TestContext): Promise<{ dir: string; vault: string; url: string; db: string; ids: [string, string] }> {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { rows: 300 });
  const vault = join(dir, 'vault');
  const url = `file://${vault}`;
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await runCli(['snapshot', db, url, '--json']);
    assertExit(r, 0);
    ids.push(r.json.id);
  }
  return { dir, vault, url, db, ids: ids as [string, string] };
}

/** Overwrites a stored object (the file store writes them read-only). */
function overwrite(path: string, data: string | Buffer): void {
  chmodSync(path, 0o644);
  writeFileSync(path, data);
}

/** stdout is exactly one line holding one JSON object; returns it. */
function oneJsonLine(r: CliResult): any {
  assert.ok(r.stdout.endsWith('\n') && r.stdout.indexOf('\n') === r.stdout.length - 1, `one line on stdout:\n${describeRun(r)}`);
  const value = JSON.parse(r.stdout);
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `a JSON object:\n${describeRun(r)}`);
  return value;
}

/** The pino lines of stderr, parsed; every other line is pagevault's own "pagevault: ..." text. */
function logLines(stderr: string): { raw: string; line: Record<string, unknown> }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((raw) => ({ raw, line: JSON.parse(raw) as Record<string, unknown> }));
}

describe('ls over a damaged vault', () => {
  it('a corrupted manifest: the other snapshots are listed, the damaged one marked, then exit 5', async (t) => {
    const { vault, url, ids } = await vaultOfTwo(t);
    overwrite(join(vault, 'manifests', ids[0]), 'not a manifest');

    const text = await runCli(['ls', url]);
    assertExit(text, 5);
    const rows = text.stdout.trimEnd().split('\n');
    assert.equal(rows.length, 4, `a header, two rows and the totals:\n${text.stdout}`);
    assert.match(rows[1]!, new RegExp(`^${ids[0]}\\s+DAMAGED: manifest ${ids[0]} is damaged: `));
    assert.match(rows[2]!, new RegExp(`^${ids[1]}\\s+\\S+Z\\s+\\S*app\\.db\\s`), 'the readable snapshot keeps its full row');
    assert.match(text.stderr, /^pagevault: 1 of 2 manifests cannot be read/m);
    assert.ok(!text.stderr.includes('pagevault ls'), `the hint must not send the user back to ls:\n${text.stderr}`);

    const json = await runCli(['ls', url, '--json']);
    assertExit(json, 5);
    const out = oneJsonLine(json);
    assert.equal(out.error.code, 'MANIFEST_DAMAGED');
    assert.equal(out.error.exitCode, 5);
    assert.deepEqual(
      out.snapshots.map((s: { id: string }) => s.id),
      ids,
    );
    assert.deepEqual(Object.keys(out.snapshots[0]).sort(), ['code', 'damaged', 'id'], 'a damaged entry has no stats');
    assert.match(out.snapshots[0].damaged, /is damaged: it does not start with the pagevault manifest magic/);
    assert.equal(out.snapshots[1].damaged, undefined);
    assert.equal(out.snapshots[1].pageSize, 4096);
  });

  it('ls reads manifests alone: extent tables that are damaged do not change its listing (restore and verify read them)', async (t) => {
    const { vault, url, ids } = await vaultOfTwo(t);
    const before = await runCli(['ls', url, '--json']);
    assertExit(before, 0);
    for (const id of ids) overwrite(join(vault, 'extents', id), 'not an extent table');
    const after = await runCli(['ls', url, '--json']);
    assertExit(after, 0);
    // The snapshots as before (the stored bytes are the tables' new sizes).
    assert.deepEqual(JSON.parse(after.stdout).snapshots, JSON.parse(before.stdout).snapshots);
    assert.equal(JSON.parse(after.stdout).snapshots.length, 2);
  });

  it('a missing pagevault.json: every snapshot is listed, the config marked, exit 5', async (t) => {
    const { dir, vault, url, ids } = await vaultOfTwo(t);
    renameSync(join(vault, 'pagevault.json'), join(dir, 'pagevault.json.moved'));

    const text = await runCli(['ls', url]);
    assertExit(text, 5);
    const lines = text.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 5, `a header, two rows, the totals and the config's line:\n${text.stdout}`);
    for (const [i, id] of ids.entries()) assert.match(lines[i + 1]!, new RegExp(`^${id}\\s+\\S+Z\\s`));
    assert.match(lines[4]!, /^DAMAGED: vault .* its repository config pagevault\.json is missing/);
    assert.ok(!text.stderr.includes('pagevault ls'), `the hint must not send the user back to ls:\n${text.stderr}`);

    const json = await runCli(['ls', url, '--json']);
    assertExit(json, 5);
    const out = oneJsonLine(json);
    assert.equal(out.error.code, 'CONFIG_MISSING');
    assert.deepEqual(
      out.snapshots.map((s: { id: string; damaged?: string }) => [s.id, s.damaged]),
      ids.map((id) => [id, undefined]),
    );
  });

  it('a damaged pagevault.json and a damaged manifest: both reported, exit 5', async (t) => {
    const { vault, url, ids } = await vaultOfTwo(t);
    overwrite(join(vault, 'pagevault.json'), '{"format": "pagevault", ');
    overwrite(join(vault, 'manifests', ids[1]), Buffer.alloc(64));
    const r = await runCli(['ls', url, '--json']);
    assertExit(r, 5);
    const out = oneJsonLine(r);
    assert.equal(out.error.code, 'CONFIG_DAMAGED');
    assert.match(out.error.message, /repository config .*pagevault\.json is damaged: it is not JSON/);
    assert.match(out.error.message, new RegExp(`1 of 2 manifests cannot be read \\(${ids[1]}\\)`));
    assert.equal(out.snapshots[0].damaged, undefined);
    assert.match(out.snapshots[1].damaged, new RegExp(`manifest ${ids[1]} is damaged`));
  });

  it('a sound vault: SOURCE and HOST columns, the totals, exit 0', async (t) => {
    const { url, db, ids, vault } = await vaultOfTwo(t);
    const text = await runCli(['ls', url]);
    assertExit(text, 0);
    const [header, ...lines] = text.stdout.trimEnd().split('\n');
    const totals = lines.pop()!;
    const rows = lines;
    assert.match(header!, /^ID\s+CREATED\s+SOURCE\s+HOST\s+SIZE\s+PAGES\s+UPLOADED\s+NEW\s+REUSED\s+TAGS$/);
    for (const row of rows) assert.match(row!, /\s-$/, 'no tags: a dash');
    for (const row of rows) assert.ok(row.includes(` ${hostname()} `), `HOST ${hostname()} in ${row}`);
    const json = await runCli(['ls', url, '--json']);
    assertExit(json, 0);
    assert.deepEqual(
      json.json.snapshots.map((s: { id: string }) => s.id),
      ids,
    );
    // Every object but the config, by size, as the file system has it.
    const files = readdirSync(vault, { recursive: true, withFileTypes: true }).filter((d) => d.isFile() && d.name !== 'pagevault.json' && !d.parentPath.includes('.pagevault-'));
    const bytes = files.reduce((n, d) => n + statSync(join(d.parentPath, d.name)).size, 0);
    assert.deepEqual(json.json.stored, { objects: files.length, bytes });
    assert.deepEqual(json.json.unreferenced, { objects: 0, bytes: 0 });
    assert.match(totals, /^2 snapshots; the vault stores .* in \d+ objects, 0 B of it \(0 objects\) referenced by no snapshot$/);
    // A killed snapshot's pack: stored, and referenced by nothing.
    mkdirSync(join(vault, 'packs', '20260101T000000000Z-00000000aa'));
    writeFileSync(join(vault, 'packs', '20260101T000000000Z-00000000aa', '0000000001-0000000004'), Buffer.alloc(777));
    const stray = await runCli(['ls', url, '--json']);
    assert.deepEqual(stray.json.unreferenced, { objects: 1, bytes: 777 });
    assert.deepEqual(stray.json.stored, { objects: files.length + 1, bytes: bytes + 777 });
    for (const s of json.json.snapshots) {
      // The path when the manifest records it, else the file name.
      assert.ok(s.source === db || s.source === basename(db), `source ${s.source}`);
      assert.equal(s.hostname, hostname());
      assert.ok(text.stdout.includes(` ${s.source} `), `SOURCE ${s.source} in\n${text.stdout}`);
    }
  });
});

describe('tags', () => {
  it('snapshot --tag (repeatable) stores tags that snapshot --json and ls show; a bad tag is exit 2 BAD_TAG and nothing is uploaded', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 300 });
    const url = `file://${join(dir, 'vault')}`;
    const tagged = await runCli(['snapshot', db, url, '--tag', 'daily', '--tag', 'before-deploy:v2.1', '--tag', 'daily', '--json']);
    assertExit(tagged, 0);
    assert.deepEqual(tagged.json.tags, ['daily', 'before-deploy:v2.1'], 'distinct, in the order given');
    const text = await runCli(['snapshot', db, url]);
    assertExit(text, 0);
    assert.ok(!text.stdout.includes('tags:'), text.stdout);

    const ls = await runCli(['ls', url, '--json']);
    assertExit(ls, 0);
    assert.deepEqual(
      ls.json.snapshots.map((s: { tags: string[] }) => s.tags),
      [['daily', 'before-deploy:v2.1'], []],
    );
    const rows = (await runCli(['ls', url])).stdout.trimEnd().split('\n');
    assert.match(rows[1]!, /\sdaily,before-deploy:v2\.1$/);

    for (const bad of ['two words', 'a,b', '']) {
      const r = await runCli(['snapshot', db, url, '--tag', bad, '--json']);
      assertExit(r, 2);
      assert.equal(r.json.error.code, 'BAD_TAG', bad);
      assert.match(r.stderr, /is not a tag: 1-128 characters, no spaces, commas or control characters/);
    }
    assert.equal(readdirSync(join(dir, 'vault', 'manifests')).length, 2, 'a refused snapshot published nothing');
  });
});

describe('--json failures', () => {
  it('a failed snapshot prints one JSON error object on stdout, and the message on stderr', async (t) => {
    const dir = tempDir(t);
    const missing = join(dir, 'missing.db');
    const r = await runCli(['snapshot', missing, `file://${join(dir, 'vault')}`, '--json']);
    assertExit(r, 3);
    const out = oneJsonLine(r);
    assert.deepEqual(Object.keys(out), ['error']);
    assert.equal(out.error.code, 'SOURCE_MISSING');
    assert.equal(out.error.exitCode, 3);
    assert.ok(out.error.message.includes(missing), out.error.message);
    assert.match(r.stderr, /^pagevault: /m);
  });

  it('usage errors found by yargs, with --json or PAGEVAULT_JSON', async () => {
    const missingUrl = await runCli(['ls', '--json']);
    assertExit(missingUrl, 2);
    const a = oneJsonLine(missingUrl);
    assert.equal(a.error.code, 'BAD_ARGUMENT');
    assert.equal(a.error.exitCode, 2);
    assert.equal(a.error.hint, 'see pagevault ls --help');

    const unknownFlag = await runCli(['ls', 'file://./vault', '--bogus-flag'], { env: { PAGEVAULT_JSON: '1' } });
    assertExit(unknownFlag, 2);
    assert.match(oneJsonLine(unknownFlag).error.message, /bogus-flag/);

    const withoutJson = await runCli(['ls', '--bogus-flag']);
    assertExit(withoutJson, 2);
    assert.equal(withoutJson.stdout, '', 'without --json stdout stays empty');
  });

  it('the JSON error is scrubbed of secrets as stderr is', async (t) => {
    const dir = tempDir(t);
    const secret = 'pv-secret-9f8e7d6c5b4a';
    const url = `file://${join(dir, `vault-${secret}`)}`;
    const r = await runCli(['restore', url, join(dir, 'out.db'), '--json'], { env: { AWS_SECRET_ACCESS_KEY: secret } });
    assertExit(r, 4);
    const out = oneJsonLine(r);
    assert.ok(out.error.message.includes('vault-***'), out.error.message);
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), describeRun(r));
  });
});

describe('boolean flags from the environment', () => {
  it('yes, 1, ON and true turn --json on; off and 0 leave it off; anything else is exit 2 naming the variable', async (t) => {
    const { url } = await vaultOfTwo(t);
    for (const value of ['yes', '1', 'ON', 'true']) {
      const r = await runCli(['ls', url], { env: { PAGEVAULT_JSON: value } });
      assertExit(r, 0);
      assert.ok(Array.isArray(r.json?.snapshots), `PAGEVAULT_JSON=${value} gives JSON:\n${describeRun(r)}`);
    }
    for (const value of ['off', '0', 'No']) {
      const r = await runCli(['ls', url], { env: { PAGEVAULT_JSON: value } });
      assertExit(r, 0);
      assert.match(r.stdout, /^ID\s+CREATED/, `PAGEVAULT_JSON=${value} gives text`);
    }
    const bad = await runCli(['ls', url], { env: { PAGEVAULT_JSON: 'maybe' } });
    assertExit(bad, 2);
    assert.match(bad.stderr, /^pagevault: PAGEVAULT_JSON must be true\/false, 1\/0, yes\/no or on\/off, got "maybe"$/m);
    assert.equal(bad.stdout, '');

    const badQuiet = await runCli(['ls', url, '--json'], { env: { PAGEVAULT_QUIET: 'sometimes' } });
    assertExit(badQuiet, 2);
    assert.match(oneJsonLine(badQuiet).error.message, /^PAGEVAULT_QUIET must be/);

    const flagWins = await runCli(['ls', url, '--json=no'], { env: { PAGEVAULT_JSON: 'yes' } });
    assertExit(flagWins, 0);
    assert.match(flagWins.stdout, /^ID\s+CREATED/, '--json=no over PAGEVAULT_JSON=yes');
  });
});

describe('--quiet', () => {
  it('prints no summary, still the JSON asked for; --quiet --verbose is a usage error', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 100 });
    const url = `file://${join(dir, 'vault')}`;

    const quiet = await runCli(['snapshot', db, url, '--quiet']);
    assertExit(quiet, 0);
    assert.equal(quiet.stdout, '');
    assert.equal(quiet.stderr, '', 'no info logs either');
    const ls = await runCli(['ls', url, '-q']);
    assertExit(ls, 0);
    assert.equal(ls.stdout, '');

    const json = await runCli(['snapshot', db, url, '--quiet', '--json']);
    assertExit(json, 0);
    assert.match(oneJsonLine(json).id, /^\d{8}T\d{9}Z-[0-9a-f]{10}$/);

    const both = await runCli(['snapshot', db, url, '--quiet', '--verbose']);
    assertExit(both, 2);
    assert.match(both.stderr, /^pagevault: --quiet and --verbose conflict/m);
    const fromEnv = await runCli(['ls', url, '--verbose'], { env: { PAGEVAULT_QUIET: 'yes' } });
    assertExit(fromEnv, 2);
    assert.equal(readdirSync(join(dir, 'vault', 'manifests')).length, 2, 'the conflicting snapshot did not run');
  });
});

describe('log lines', () => {
  it('each line of a snapshot beside a writer carries one component, the source nested under the snapshot', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'busy.db');
    createDatabase(db, { journalMode: 'delete', rows: 4000 });
    const writer = startWriter(db, { busyTimeoutMs: 10_000, pauseMs: 20 });
    let r: CliResult;
    try {
      await writer.ready;
      // Slow enough that the writer's commits restart the stepped copy, which the source logs (debug, or warn on a fallback).
      r = await runCli(['snapshot', db, `file://${join(dir, 'vault')}`, '--verbose', '--json', '--max-bytes-per-second', '2MiB']);
    } finally {
      await writer.stop();
    }
    assertExit(r, 0);
    const lines = logLines(r.stderr);
    assert.ok(lines.length > 0, describeRun(r));
    for (const { raw, line } of lines) {
      const count = raw.split('"component"').length - 1;
      assert.ok(count <= 1, `one component key per line, got ${count}: ${raw}`);
      if (count === 1) assert.equal(typeof line.component, 'string');
    }
    const components = new Set(lines.map((l) => l.line.component));
    assert.ok(components.has('snapshot'), [...components].join(', '));
    assert.ok(components.has('snapshot.source'), `the source's lines under the snapshot: ${[...components].join(', ')}\n${r.stderr}`);
  });
});

describe('storage events in the logs (S3 behind a fault proxy)', () => {
  let server: S3Server;
  let proxy: FaultProxy;
  const bucket = 'pagevault-cli-output';
  before(async () => {
    server = await startFauxqs();
    await server.createBucket(bucket);
    proxy = await startFaultProxy(server.endpoint);
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });
  const env = () => ({ AWS_ENDPOINT_URL_S3: proxy.endpoint, AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey });

  it('a retried request is logged at info; throttling shows at --verbose; each line has one component', async (t) => {
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createLargeDatabase(db, 3 * 1024 * 1024);
    const url = `s3://${bucket}/retries`;
    // The first two writes into the vault answer SlowDown: each is retried.
    proxy.setRules([{ match: (r) => r.method === 'PUT' && r.path.startsWith(`/${bucket}/retries/`), fault: '503', times: 2 }]);
    const snap = await runCli(['snapshot', db, url, '--json', '--verbose', '--max-bytes-per-second', '1MiB'], { env: env() });
    assertExit(snap, 0);
    assert.equal(proxy.counts()['503'], 2, 'the faults were injected');
    const lines = logLines(snap.stderr);
    for (const { raw } of lines) assert.ok(raw.split('"component"').length <= 2, `one component key: ${raw}`);
    const retries = lines.filter(({ line }) => line.component === 'snapshot.storage' && line.level === 30 && /^retrying/.test(String(line.msg)));
    assert.equal(retries.length, 2, `two retries logged at info:\n${snap.stderr}`);
    for (const { line } of retries) {
      assert.match(String(line.msg), /^retrying \w+ in \d+ ms$/);
      assert.ok(Number.isInteger(line.attempt) && (line.attempt as number) >= 1, `attempt ${line.attempt}`);
      assert.match(String(line.err), /SlowDown|reduce your request rate|503/i);
    }
    const waits = lines.filter(({ line }) => line.component === 'snapshot.storage' && line.level === 20 && /waiting for bandwidth/.test(String(line.msg)));
    assert.ok(waits.length >= 1, `throttling logged at debug:\n${snap.stderr}`);

    proxy.setRules([{ match: (r) => r.method === 'GET' && r.path.startsWith(`/${bucket}/retries/manifests/`), fault: '500', times: 1 }]);
    const ls = await runCli(['ls', url], { env: env() });
    assertExit(ls, 0);
    const lsLines = logLines(ls.stderr);
    assert.deepEqual(
      lsLines.map(({ line }) => [line.level, line.component]),
      [[30, 'list.storage']],
      `one info line for the retried manifest read, no debug lines without --verbose:\n${ls.stderr}`,
    );
  });
});
