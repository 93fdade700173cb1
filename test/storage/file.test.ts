// The conformance suite on the file backend, plus what only a filesystem can show: temp files never appear
// as objects, concurrent creators of one key race safely, relative URLs resolve against the working directory.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { FileStore, openStorage, stackStorage } from '../../src/storage/index.ts';
import { listKeys, rejectsWith, sha256, storageConformance } from './conformance.ts';

storageConformance('file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'pagevault-file-'));
  let n = 0;
  return {
    sweeps: 'yes',
    sortedListing: true,
    client: async () => stackStorage(new FileStore(join(root, `ns${n++}`), undefined, { listPageSize: 5 })),
    backend: async () => new FileStore(join(root, `ns${n++}`)),
    stop: () => rm(root, { recursive: true, force: true }),
  };
});

describe('file backend', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'pagevault-file-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('lets exactly one of many concurrent putIfAbsent calls on a key win, and stores its bytes whole', async () => {
    const c = openStorage(`file://${root}/race`);
    const bodies = Array.from({ length: 12 }, () => randomBytes(256 * 1024));
    const results = await Promise.allSettled(bodies.map((b) => c.putIfAbsent('manifests/same', b)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, 'exactly one creator wins');
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'ALREADY_EXISTS');
    assert.equal(sha256(await c.getObject('manifests/same')), sha256(bodies[won[0]!]!));
    assert.deepEqual(await readdir(join(root, 'race', '.pagevault-tmp')), [], 'no temp file is left behind');
  });

  it('never lists its temp directory, and refuses keys inside its reserved directories', async () => {
    const c = openStorage(`file://${root}/hidden`);
    await c.putIfAbsent('a', Buffer.from('a'));
    const controller = new AbortController();
    async function* parts(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(5 * 1024 * 1024);
      await new Promise(() => {});
    }
    const writing = c.putObject('b', parts(), { signal: controller.signal }).catch(() => {});
    while ((await readdir(join(root, 'hidden', '.pagevault-tmp'))).length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(await listKeys(c), ['a']);
    controller.abort();
    await writing;
    await rejectsWith(c.putIfAbsent('.pagevault-tmp/x', Buffer.from('x')), 'BAD_KEY', UsageError);
    await rejectsWith(c.putIfAbsent('.pagevault-uploads/x', Buffer.from('x')), 'BAD_KEY', UsageError);
  });

  it('resolves file://./dir against the working directory it is given', async () => {
    const c = openStorage('file://./rel/dir', { cwd: root });
    await c.putIfAbsent('k', Buffer.from('v'));
    assert.deepEqual(await readdir(join(root, 'rel', 'dir')), ['.pagevault-tmp', 'k']);
  });

  it('explains why it cannot hold both a/b and a/b/c, which S3 allows', async () => {
    const c = openStorage(`file://${root}/conflict`);
    await c.putIfAbsent('a/b', Buffer.from('1'));
    const e1 = await rejectsWith(c.putIfAbsent('a/b/c', Buffer.from('2')), 'REJECTED');
    assert.match(e1.message, /a\/b is an object, and a file cannot also be a directory/);
    await c.putIfAbsent('x/y/z', Buffer.from('3'));
    const e2 = await rejectsWith(c.putIfAbsent('x/y', Buffer.from('4')), 'REJECTED');
    assert.match(e2.message, /x\/y is a directory of other objects/);
  });

  it('removes directories emptied by deleteMany, but not the root', async () => {
    const c = openStorage(`file://${root}/gc`);
    await c.putIfAbsent('packs/s1/a', Buffer.from('a'));
    await c.putIfAbsent('keep', Buffer.from('k'));
    await c.deleteMany(['packs/s1/a']);
    assert.deepEqual((await readdir(join(root, 'gc'))).sort(), ['.pagevault-tmp', 'keep']);
  });
});
