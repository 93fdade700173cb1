// CodecPool: the codec in worker threads, buffers lent by transfer, errors rebuilt, crashes survived.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { maxEncodedSize } from '../../src/chunk/codec.ts';
import { CodecPool, allocTransferable, failedItem, returnedBuffers, testHooks } from '../../src/chunk/pool.ts';
import { AbortedError, BugError, IntegrityError, PagevaultError, UsageError } from '../../src/errors.ts';
import { createDatabase, tempDir } from '../helpers/sqlite.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
const CHUNK = 64 * 1024;

function openPool(t: { after: (fn: () => Promise<void>) => void }, workers = 2): CodecPool {
  const pool = CodecPool.create({ workers, level: 1 });
  t.after(() => pool.close());
  return pool;
}

/** A chunk in a transferable buffer: text-like (compresses), random (does not) or zero. */
function chunk(kind: 'text' | 'random' | 'zero', seed: number, size = CHUNK): Buffer {
  const buf = allocTransferable(size);
  if (kind === 'random') randomBytes(size).copy(buf);
  else if (kind === 'text') for (let i = 0; i < size; i++) buf[i] = 0x41 + ((i * seed) % 23 < 15 ? i % 7 : (i * seed) % 61);
  return buf;
}

test('real SQLite pages round-trip through the workers', async (t) => {
  const pool = openPool(t);
  const path = join(tempDir(t), 'db.sqlite');
  createDatabase(path, { rows: 3000 });
  const file = readFileSync(path);
  let encodedBytes = 0;
  await Promise.all(
    Array.from({ length: Math.ceil(file.length / CHUNK) }, async (_, i) => {
      const raw = file.subarray(i * CHUNK, (i + 1) * CHUNK);
      const input = allocTransferable(raw.length);
      raw.copy(input);
      const enc = await pool.encode({ input, output: allocTransferable(maxEncodedSize(raw.length)) });
      assert.deepEqual(enc.digest, sha256(raw));
      assert.deepEqual(enc.input, raw, 'input handed back intact');
      encodedBytes += enc.length;
      const dec = await pool.decode({ encoded: enc.output.subarray(0, enc.length), codec: enc.codec, output: allocTransferable(raw.length), digest: enc.digest });
      assert.deepEqual(dec.output, raw);
    }),
  );
  assert.ok(encodedBytes < file.length * 0.9, `encoded ${encodedBytes} of ${file.length}`);
});

test('buffers are lent by transfer: detached while lent, handed back intact over the same bytes', async (t) => {
  const pool = openPool(t, 1);
  // A view into the middle of a larger buffer: offsets survive the round trip.
  const inputBacking = allocTransferable(3 * CHUNK);
  const input = inputBacking.subarray(CHUNK, 2 * CHUNK);
  chunk('text', 3).copy(input);
  const expected = Buffer.from(input);
  const output = allocTransferable(maxEncodedSize(CHUNK) + 100).subarray(100);
  const arrayBuffer = input.buffer;
  const pending = pool.encode({ input, output });
  assert.equal(arrayBuffer.byteLength, 0, 'input ArrayBuffer detached while lent');
  assert.equal(input.length, 0);
  assert.equal(output.length, 0);
  const r = await pending;
  assert.equal(r.input.buffer.byteLength, 3 * CHUNK);
  assert.equal(r.input.byteOffset, CHUNK);
  assert.equal(r.output.byteOffset, 100);
  assert.deepEqual(r.input, expected);
  assert.equal(r.codec, 'zstd');
  assert.deepEqual(r.digest, sha256(expected));

  // The handed-back buffers are reused for the next job, and a detached one is refused clearly.
  await assert.rejects(pool.encode({ input, output: r.output }), /still lent/);
  const again = await pool.encode({ input: r.input, output: r.output });
  assert.deepEqual(again.digest, sha256(expected));
});

test('a buffer cannot be lent twice, nor input and output share one ArrayBuffer', async (t) => {
  const pool = openPool(t, 1);
  const input = chunk('text', 5);
  const output = allocTransferable(maxEncodedSize(CHUNK));
  const first = pool.encode({ input, output });
  const other = allocTransferable(maxEncodedSize(CHUNK));
  // The first job may already be in the worker (detached) or still queued (tracked): refused either way.
  await assert.rejects(pool.encode({ input, output: other }), (err: unknown) => err instanceof BugError && err.code === 'BUG');
  await first;
  const shared = allocTransferable(CHUNK + maxEncodedSize(CHUNK));
  await assert.rejects(pool.encode({ input: shared.subarray(0, CHUNK), output: shared.subarray(CHUNK) }), /two different ArrayBuffers/);
  await assert.rejects(pool.encode({ input: chunk('text', 5), output: allocTransferable(CHUNK) }), /needs at least/);
});

test('random data comes back raw and zero data as zero', async (t) => {
  const pool = openPool(t);
  const random = chunk('random', 0);
  const zero = chunk('zero', 0);
  const expected = sha256(random);
  const [r, z] = await Promise.all([
    pool.encode({ input: random, output: allocTransferable(maxEncodedSize(CHUNK)) }),
    pool.encode({ input: zero, output: allocTransferable(maxEncodedSize(CHUNK)) }),
  ]);
  assert.equal(r.codec, 'raw');
  assert.equal(r.length, CHUNK);
  assert.deepEqual(r.output.subarray(0, CHUNK), r.input);
  assert.deepEqual(r.digest, expected);
  assert.equal(z.zero, true);
  assert.equal(z.length, 0);
  assert.deepEqual(z.digest, sha256(Buffer.alloc(CHUNK)));
});

test('many concurrent jobs across workers each get their own digest and bytes back', async (t) => {
  const pool = openPool(t, 3);
  const kinds = ['text', 'random', 'zero'] as const;
  const jobs = Array.from({ length: 60 }, (_, i) => {
    const size = CHUNK - (i % 4) * 4096;
    const input = chunk(kinds[i % 3]!, i + 1, size);
    return { input, expected: Buffer.from(input), output: allocTransferable(maxEncodedSize(size)) };
  });
  const results = await Promise.all(jobs.map((j) => pool.encode({ input: j.input, output: j.output })));
  const decoded = await Promise.all(
    results.map(async (r, i) => {
      assert.deepEqual(r.digest, sha256(jobs[i]!.expected), `job ${i}`);
      assert.deepEqual(r.input, jobs[i]!.expected, `job ${i} input`);
      if (r.zero) return null;
      const out = allocTransferable(jobs[i]!.expected.length);
      return (await pool.decode({ encoded: r.output.subarray(0, r.length), codec: r.codec, output: out, digest: r.digest })).output;
    }),
  );
  decoded.forEach((d, i) => {
    if (d !== null) assert.deepEqual(d, jobs[i]!.expected, `decoded ${i}`);
  });
});

test('encodes queued behind each other share a message, each with its own result; a known digest skips compression', async (t) => {
  const pool = openPool(t, 1);
  await pool.ready();
  let messages = 0;
  pool[testHooks]().workers[0]!.on('message', (m: { type: string }) => {
    if (m.type === 'done') messages++;
  });
  const inputs = Array.from({ length: 40 }, (_, i) => chunk(i % 2 ? 'text' : 'random', i + 1));
  const expected = inputs.map((b) => Buffer.from(b));
  // Every third job says the vault holds its content already (its true digest); the rest give a wrong one or none.
  const knownDigests = expected.map((b, i) => (i % 3 === 0 ? sha256(b) : i % 3 === 1 ? sha256(Buffer.from('other')) : undefined));
  const outputs = inputs.map(() => allocTransferable(maxEncodedSize(CHUNK)));
  outputs.forEach((o) => o.fill(0xee));
  const results = await Promise.all(
    inputs.map((input, i) => pool.encode({ input, output: outputs[i]!, ...(knownDigests[i] ? { knownDigest: knownDigests[i] } : {}) })),
  );
  // 40 chunks of 64 KiB: two go out alone, the rest wait and go 16 (1 MiB) to a message.
  assert.ok(messages <= 8, `${messages} messages for 40 jobs`);
  for (const [i, r] of results.entries()) {
    assert.deepEqual(r.digest, sha256(expected[i]!), `job ${i}`);
    assert.deepEqual(r.input, expected[i]!, `job ${i} input`);
    assert.equal(r.known, i % 3 === 0, `job ${i} known`);
    if (r.known) {
      assert.equal(r.length, 0);
      assert.ok(r.output.every((b) => b === 0xee), `job ${i}: nothing written`);
    } else {
      const out = allocTransferable(CHUNK);
      const back = await pool.decode({ encoded: r.output.subarray(0, r.length), codec: r.codec, output: out, digest: r.digest });
      assert.deepEqual(back.output, expected[i]!, `job ${i} decoded`);
    }
  }
});

test('integrity errors come back as IntegrityError with their code, and the buffers with them', async (t) => {
  const pool = openPool(t);
  const raw = chunk('text', 7);
  const expected = sha256(raw);
  const enc = await pool.encode({ input: raw, output: allocTransferable(maxEncodedSize(CHUNK)) });
  assert.equal(enc.codec, 'zstd');
  const encoded = enc.output.subarray(0, enc.length);
  const encodedCopy = Buffer.from(encoded);

  const wrong = Buffer.from(expected);
  wrong[0]! ^= 0x80;
  const digestError = await pool.decode({ encoded, codec: 'zstd', output: allocTransferable(CHUNK), digest: wrong }).catch((e: unknown) => e);
  assert.ok(digestError instanceof IntegrityError, String(digestError));
  assert.equal(digestError.code, 'CHUNK_DIGEST');
  assert.match(digestError.message, /chunk digest mismatch/);
  const back = returnedBuffers(digestError);
  assert.ok(back, 'buffers handed back on the error');
  assert.deepEqual(back.input, encodedCopy);
  assert.deepEqual(back.output, enc.input, 'decoded bytes are there, just not what the manifest says');

  // Reuse the handed-back buffers: a truncated frame.
  const damaged = await pool.decode({ encoded: back.input.subarray(0, back.input.length - 5), codec: 'zstd', output: back.output, digest: expected }).catch((e: unknown) => e);
  assert.ok(damaged instanceof IntegrityError, String(damaged));
  assert.equal(damaged.code, 'CHUNK_DAMAGED');

  // A flipped bit: damaged or a digest mismatch, never accepted.
  const again = returnedBuffers(damaged)!;
  const flipped = Buffer.from(again.input.buffer, again.input.byteOffset, enc.length);
  flipped[Math.floor(enc.length / 2)]! ^= 0x10;
  const flipError = await pool.decode({ encoded: flipped, codec: 'zstd', output: again.output, digest: expected }).catch((e: unknown) => e);
  assert.ok(flipError instanceof IntegrityError, String(flipError));
  assert.ok(['CHUNK_DAMAGED', 'CHUNK_DIGEST'].includes(flipError.code), flipError.code);
});

test('close() rejects queued and lent jobs with AbortedError, and later jobs too', async () => {
  const pool = CodecPool.create({ workers: 1 });
  await pool.ready();
  const jobs = Array.from({ length: 8 }, (_, i) => pool.encode({ input: chunk('random', i, 1024 * 1024), output: allocTransferable(maxEncodedSize(1024 * 1024)) }));
  const settled = Promise.allSettled(jobs);
  await pool.close();
  const outcomes = await settled;
  const aborted = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof AbortedError).length;
  // One job may have finished in the worker before close() got to it; the queued ones cannot have.
  assert.ok(aborted >= 6, outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'fulfilled')).join('; '));
  await assert.rejects(pool.encode({ input: chunk('text', 1), output: allocTransferable(maxEncodedSize(CHUNK)) }), AbortedError);
  await pool.close();
});

test('a worker that dies fails the jobs it held, is replaced, and the pool keeps working', async (t) => {
  const pool = openPool(t, 2);
  await pool.ready();
  const [victim] = pool[testHooks]().workers;
  // Big compressible chunks, all prepared before any is submitted, so the victim is busy when it dies.
  const size = 16 * 1024 * 1024;
  const text = chunk('text', 11, size);
  const buffers = Array.from({ length: 6 }, () => {
    const input = allocTransferable(size);
    text.copy(input);
    return { input, output: allocTransferable(maxEncodedSize(size)) };
  });
  const settled = Promise.allSettled(buffers.map((b) => pool.encode(b)));
  await victim!.terminate();
  const outcomes = await settled;
  const crashed = outcomes.filter((o) => o.status === 'rejected');
  assert.ok(crashed.length >= 1, 'the jobs held by the dead worker failed');
  for (const o of crashed) {
    const reason = (o as PromiseRejectedResult).reason;
    assert.ok(reason instanceof PagevaultError, String(reason));
    assert.equal(reason.code, 'CODEC_WORKER_EXIT');
    assert.match(reason.message, /codec worker exited/);
  }
  assert.ok(outcomes.some((o) => o.status === 'fulfilled'), 'jobs on the other worker completed');
  assert.notEqual(pool[testHooks]().workers[0], victim, 'replaced');

  // Enough jobs to need both workers, the replacement included.
  const more = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const input = chunk('text', i + 2);
      const expected = sha256(input);
      const r = await pool.encode({ input, output: allocTransferable(maxEncodedSize(CHUNK)) });
      assert.deepEqual(r.digest, expected);
      return r;
    }),
  );
  assert.equal(more.length, 8);
});

test('create() validates its options', () => {
  assert.throws(() => CodecPool.create({ workers: 0 }), /workers must be an integer from 1 to 64, got 0/);
  assert.throws(() => CodecPool.create({ level: 99 }), /zstd level must be an integer/);
});

test('decodeMany decodes the chunks of one read in one round trip and names the one that fails', async (t) => {
  const pool = openPool(t, 1);
  const chunks = [chunk('text', 3), chunk('random', 4), chunk('text', 5)];
  const encoded = allocTransferable(chunks.length * maxEncodedSize(CHUNK));
  const items = [];
  let at = 0;
  for (const [i, raw] of chunks.entries()) {
    const digest = sha256(raw);
    const out = allocTransferable(maxEncodedSize(CHUNK));
    const enc = await pool.encode({ input: raw, output: out });
    enc.output.copy(encoded, at, 0, enc.length);
    items.push({ at, length: enc.length, codec: enc.codec, digest, outAt: i * CHUNK, rawLength: CHUNK });
    at += enc.length;
  }
  assert.deepEqual(items.map((i) => i.codec), ['zstd', 'raw', 'zstd']);
  const output = allocTransferable(chunks.length * CHUNK);
  const ok = await pool.decodeMany({ encoded, output, items });
  for (const [i] of chunks.entries()) assert.ok(sha256(ok.output.subarray(i * CHUNK, (i + 1) * CHUNK)).equals(items[i]!.digest), `chunk ${i}`);

  const tampered = Buffer.from(ok.encoded.buffer);
  tampered[items[2]!.at + 20]! ^= 0xff;
  const err = await pool.decodeMany({ encoded: tampered, output: Buffer.from(ok.output.buffer), items }).then(
    () => assert.fail('a tampered chunk decoded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof IntegrityError && ['CHUNK_DAMAGED', 'CHUNK_DIGEST'].includes(err.code));
  assert.equal(failedItem(err), 2);
  assert.ok(returnedBuffers(err)!.input.buffer.byteLength > 0, 'the buffers come back with the error');
});
