// A database larger than 1 GiB: the page holding byte offset 2^30 (the lock page) is never written by
// SQLite, must be absent from the stream, and must be zero in the reassembled file.
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GiB } from '../../src/config/defaults.ts';
import { PageSource } from '../../src/source/index.ts';
import { createLargeDatabase, differingPages, integrityCheck, reassemble, tempDir } from '../helpers/sqlite.ts';

test('a database over 1 GiB: every page equal, the lock page absent and zero', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'large.db');
  const out = join(dir, 'out.db');
  const pageSize = 4096;
  createLargeDatabase(src, GiB + 64 * 1024 * 1024, pageSize);
  const source = await PageSource.open(src);
  const r = await reassemble(source, out);
  const lockPage = GiB / pageSize + 1;
  assert.ok(r.result.pageCount > lockPage);
  assert.equal(r.pageNumbers.has(lockPage), false, 'the lock page is not in the stream');
  assert.equal(r.pageNumbers.size, r.result.pageCount - 1, 'every other page is');
  const fd = openSync(out, 'r');
  const lock = Buffer.alloc(pageSize, 0xff);
  readSync(fd, lock, 0, pageSize, GiB);
  closeSync(fd);
  assert.ok(lock.every((b) => b === 0), 'the lock page is zero in the reassembled file');
  assert.deepEqual(differingPages(src, out, pageSize), []);
  assert.equal(integrityCheck(out), 'ok');
});
