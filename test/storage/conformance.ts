// The storage conformance suite, written once and run against every backend (file, fauxqs, the s3rver fork,
// radosgw). Each test gets a fresh, empty namespace from the harness and asserts on bytes (SHA-256), error
// codes and listings, through the full stack openStorage() builds (retry, throttle, limit over the backend),
// or, to lose a response on purpose, through the retry wrapper over a wrapper that drops one.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BugError, PagevaultError, StorageError, UsageError } from '../../src/errors.ts';
import { listObjects, type ListPage, type StorageClient } from '../../src/storage/client.ts';
import { RetryStore } from '../../src/storage/wrappers/retry.ts';
import { StorageWrapper, type Call } from '../../src/storage/wrappers/wrapper.ts';

export interface Harness {
  /** A client on a fresh, empty namespace (a new prefix or directory), with list pages of 5 keys. */
  client(): Promise<StorageClient>;
  /** The bare backend (no wrappers) on a fresh, empty namespace. */
  backend(): Promise<StorageClient>;
  stop(): Promise<void>;
  /** What sweepIncomplete does on this server: sweeps, finds none ever (fauxqs), or NOT_SUPPORTED. */
  sweeps: 'yes' | 'always-empty' | 'not-supported';
  /** Whether listings come in byte order of key, as S3 specifies (fauxqs and s3rver do not). */
  sortedListing: boolean;
  /** The s3rver fork never answers a ranged GET of an empty object. */
  rangeOfEmptyHangs?: boolean;
}

const MiB = 1024 * 1024;

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Asserts that `promise` rejects with a PagevaultError of `kind` carrying `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: string, kind: abstract new (...args: never[]) => PagevaultError = StorageError): Promise<PagevaultError> {
  let caught: unknown;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof kind, `expected a ${kind.name}, got ${(caught as Error)?.name}: ${(caught as Error)?.message}`);
  assert.equal((caught as PagevaultError).code, code, (caught as Error).message);
  return caught as PagevaultError;
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A streamed body of `parts`; with `hang`, one that never ends (a write only a signal stops). */
export async function* stream(parts: Uint8Array[], hang = false): AsyncGenerator<Uint8Array> {
  yield* parts;
  if (hang) await new Promise(() => {});
}

/** Every key under `prefix`, every page fetched. */
export async function listKeys(c: StorageClient, prefix = ''): Promise<string[]> {
  return (await collect(listObjects(c, prefix))).map((o) => o.key);
}

/**
 * A streamed body of parts of `sizes` bytes, random, cut into two reused buffers: each part waits for a
 * buffer the store has released. `whole` hashes what was yielded; `free` shows the buffers back home.
 */
export function pooledParts(sizes: readonly number[], hooks: { beforeEnd?: () => Promise<void> } = {}) {
  const pool: Buffer[] = [Buffer.alloc(Math.max(...sizes)), Buffer.alloc(Math.max(...sizes))];
  const free = [...pool];
  const waiting: Array<(b: Buffer) => void> = [];
  const owners = new Map<Uint8Array, Buffer>();
  const whole = createHash('sha256');
  const release = (view: Uint8Array): void => {
    const b = owners.get(view);
    assert.ok(b, 'released a buffer the body yielded, once');
    owners.delete(view);
    if (waiting.length > 0) waiting.shift()!(b);
    else free.push(b);
  };
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const size of sizes) {
      const buf = free.length > 0 ? free.pop()! : await new Promise<Buffer>((r) => waiting.push(r));
      const part = buf.subarray(0, size);
      randomBytes(size).copy(part); // new content in a reused buffer
      whole.update(part);
      owners.set(part, buf);
      yield part;
    }
    await hooks.beforeEnd?.();
  }
  return { body: body(), release, free, whole, allReleased: () => owners.size === 0 };
}

/**
 * Fails the first create it sees with a connection reset: after the backend acted on it (its response was
 * lost), or before (the request never arrived).
 */
class LoseFirstCreate extends StorageWrapper {
  creates = 0;
  constructor(
    inner: StorageClient,
    readonly lose: 'response' | 'request',
  ) {
    super(inner);
  }
  protected override async around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    const first = call.op === 'create' && this.creates++ === 0;
    const reset = new StorageError('CONNECTION', `${call.op} ${call.key}: connection reset (test)`);
    if (first && this.lose === 'request') throw reset;
    const result = await fn();
    if (first) throw reset;
    return result;
  }
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function storageConformance(name: string, start: () => Promise<Harness>): void {
  describe(`storage conformance: ${name}`, () => {
    let harness: Harness;
    const clients: StorageClient[] = [];
    const fresh = async (): Promise<StorageClient> => {
      const c = await harness.client();
      clients.push(c);
      return c;
    };
    before(async () => {
      harness = await start();
    });
    after(async () => {
      for (const c of clients) await c.close();
      await harness?.stop();
    });

    it('putIfAbsent stores bytes that getObject and head return', async () => {
      const c = await fresh();
      const body = randomBytes(100_000);
      await c.putIfAbsent('manifests/one', body);
      const got = await c.getObject('manifests/one');
      assert.equal(sha256(got), sha256(body));
      assert.equal((await c.head('manifests/one')).size, body.length);
    });

    it('putIfAbsent refuses an existing key and leaves the object intact', async () => {
      const c = await fresh();
      const first = randomBytes(1000);
      await c.putIfAbsent('pagevault.json', first);
      await rejectsWith(c.putIfAbsent('pagevault.json', randomBytes(1000)), 'ALREADY_EXISTS');
      assert.equal(sha256(await c.getObject('pagevault.json')), sha256(first));
    });

    it('an empty object round-trips, and any range of it is INVALID_RANGE', async () => {
      const c = await fresh();
      await c.putIfAbsent('empty', new Uint8Array(0));
      assert.equal((await c.getObject('empty')).length, 0);
      assert.equal((await c.head('empty')).size, 0);
      if (!harness.rangeOfEmptyHangs) await rejectsWith(c.readRange('empty', 0, 1), 'INVALID_RANGE');
    });

    it('a missing key is NOT_FOUND for get, head and readRange', async () => {
      const c = await fresh();
      await rejectsWith(c.getObject('no/such/key'), 'NOT_FOUND');
      await rejectsWith(c.head('no/such/key'), 'NOT_FOUND');
      await rejectsWith(c.readRange('no/such/key', 0, 10), 'NOT_FOUND');
    });

    it('readRange returns exactly the bytes asked for, into a caller buffer when given', async () => {
      const c = await fresh();
      const body = randomBytes(MiB + 123);
      await c.putIfAbsent('packs/a', body);
      for (const [offset, length] of [
        [0, 1],
        [12_345, 54_321],
        [body.length - 1, 1],
        [0, body.length],
        [MiB, 123],
      ] as const) {
        const got = await c.readRange('packs/a', offset, length);
        assert.equal(got.length, length);
        assert.equal(sha256(got), sha256(body.subarray(offset, offset + length)), `range ${offset}+${length}`);
      }
      const into = Buffer.alloc(200_000, 0xee);
      const view = await c.readRange('packs/a', 500_000, 150_000, { into });
      assert.equal(view.length, 150_000);
      assert.equal(view.buffer, into.buffer, 'the result is a view of the caller buffer');
      assert.equal(view.byteOffset, into.byteOffset);
      assert.equal(sha256(into.subarray(0, 150_000)), sha256(body.subarray(500_000, 650_000)));
      assert.equal(into[150_000], 0xee, 'bytes past the range are untouched');
    });

    it('readRange reaching past the end is INVALID_RANGE; bad arguments are usage errors', async () => {
      const c = await fresh();
      const body = randomBytes(4096);
      await c.putIfAbsent('obj', body);
      await rejectsWith(c.readRange('obj', 4096, 1), 'INVALID_RANGE');
      await rejectsWith(c.readRange('obj', 4000, 97), 'INVALID_RANGE');
      await rejectsWith(c.readRange('obj', 10_000, 5), 'INVALID_RANGE');
      await rejectsWith(c.readRange('obj', 0, 0), 'BAD_RANGE', UsageError);
      await rejectsWith(c.readRange('obj', -1, 5), 'BAD_RANGE', UsageError);
      await rejectsWith(c.readRange('obj', 0, 10, { into: Buffer.alloc(5) }), 'BAD_RANGE', UsageError);
      assert.equal(sha256(await c.readRange('obj', 4000, 96)), sha256(body.subarray(4000)));
    });

    it('list yields every key under a prefix once, across pages, in byte order where the server keeps it', async () => {
      const c = await fresh();
      const keys = ['p/a-b', 'p/a/b', 'p/a/c/d', 'p/a0', 'p/b', 'pa', 'q/x'];
      // Keys whose byte order differs from a locale order; fauxqs sorts by locale but pages by byte order,
      // which loses and repeats such keys across pages (see fauxqs.test.ts).
      if (harness.sortedListing) keys.push('p/B', 'p/ä');
      for (let i = 0; i < 14; i++) keys.push(`p/n/${String(i).padStart(3, '0')}`);
      for (const k of keys) await c.putIfAbsent(k, Buffer.from(k));
      const expected = (prefix: string): string[] => keys.filter((k) => k.startsWith(prefix)).sort(byteOrder);
      for (const prefix of ['', 'p/', 'p/a', 'p/n/00', 'p/n/', 'zzz']) {
        const listed = await listKeys(c, prefix);
        if (!harness.sortedListing) listed.sort(byteOrder);
        assert.deepEqual(listed, expected(prefix), `list(${JSON.stringify(prefix)})`);
      }
      const sizes = new Map((await collect(listObjects(c, 'p/n/'))).map((o) => [o.key, o.size]));
      assert.equal(sizes.get('p/n/007'), Buffer.byteLength('p/n/007'));
      // One page per call, at most 5 keys each here: the 14 keys under p/n/ take three pages at least.
      const pages: ListPage[] = [await c.listPage('p/n/')];
      while (pages.at(-1)!.next !== undefined) pages.push(await c.listPage('p/n/', { cursor: pages.at(-1)!.next! }));
      assert.ok(pages.length >= 3 && pages.every((p) => p.objects.length <= 5), `pages of ${pages.map((p) => p.objects.length).join(', ')} keys`);
      assert.equal(pages.flatMap((p) => p.objects).length, 14);
      if (harness.sortedListing) {
        const resumed = await collect(listObjects(c, 'p/', { startAfter: 'p/a0' }));
        assert.deepEqual(
          resumed.map((o) => o.key),
          expected('p/').filter((k) => byteOrder(k, 'p/a0') > 0),
        );
      }
    });

    it('deleteMany deletes in batches and ignores keys that do not exist', async () => {
      const c = await fresh();
      const names = Array.from({ length: 20 }, (_, i) => `packs/s1/${String(i).padStart(2, '0')}`);
      for (const k of names) await c.putIfAbsent(k, randomBytes(64));
      await c.deleteMany([...names.slice(0, 15), 'packs/s1/missing', 'never/was']);
      assert.deepEqual((await listKeys(c)).sort(byteOrder), names.slice(15));
      await rejectsWith(c.getObject(names[0]!), 'NOT_FOUND');
      await c.deleteMany([]);
    });

    it('keys with spaces, plus signs and non-ASCII characters round-trip', async () => {
      const c = await fresh();
      const key = 'dir with space/ünïcødé+plus=eq.json';
      const body = randomBytes(300);
      await c.putIfAbsent(key, body);
      assert.equal(sha256(await c.getObject(key)), sha256(body));
      assert.deepEqual(await listKeys(c, 'dir with'), [key]);
      await c.deleteMany([key]);
      await rejectsWith(c.head(key), 'NOT_FOUND');
    });

    it('putIfAbsent whose response was lost succeeds on retry; a different existing object is still ALREADY_EXISTS', async () => {
      const backend = await harness.backend();
      clients.push(backend);
      const retry = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };
      const lossy = new LoseFirstCreate(backend, 'response');
      const body = randomBytes(3000);
      await new RetryStore(lossy, retry).putIfAbsent('manifests/lost', body);
      assert.equal(lossy.creates, 2, 'the first response was lost and the create was retried');
      assert.equal(sha256(await backend.getObject('manifests/lost')), sha256(body));
      // Another writer's object appears at the key while our first request is lost on its way: the retried
      // create finds it and must not take it for its own.
      await backend.putIfAbsent('manifests/theirs', randomBytes(3000));
      const early = new LoseFirstCreate(backend, 'request');
      await rejectsWith(new RetryStore(early, retry).putIfAbsent('manifests/theirs', randomBytes(3000)), 'ALREADY_EXISTS');
      assert.equal(early.creates, 2, 'the create was retried');
    });

    it('a streamed putObject fed from two reused buffers stores exactly the bytes written, visible only once complete', async () => {
      const c = await fresh();
      const sizes = [5 * MiB, 5 * MiB, 5 * MiB, 1234];
      let seenBeforeEnd = false;
      const parts = pooledParts(sizes, {
        beforeEnd: async () => {
          await rejectsWith(c.head('packs/s1/1-100'), 'NOT_FOUND');
          assert.deepEqual(await listKeys(c, 'packs/'), [], 'an unfinished write is not listed');
          seenBeforeEnd = true;
        },
      });
      const size = await c.putObject('packs/s1/1-100', parts.body, { partsInFlight: 2, release: parts.release });
      assert.ok(seenBeforeEnd);
      const total = sizes.reduce((a, b) => a + b, 0);
      assert.equal(size, total);
      assert.ok(parts.allReleased(), 'every buffer the store took was released');
      assert.equal((await c.head('packs/s1/1-100')).size, total);
      assert.equal(sha256(await c.getObject('packs/s1/1-100')), parts.whole.digest('hex'));
      const tail = await c.readRange('packs/s1/1-100', 15 * MiB - 10, 1244);
      assert.equal(tail.length, 1244);
    });

    it('putObject of one buffer, small or larger than a part, stores its bytes', async () => {
      const c = await fresh();
      for (const [key, body] of [
        ['small', randomBytes(70_000)],
        ['large', randomBytes(9 * MiB + 17)],
      ] as const) {
        assert.equal(await c.putObject(key, body), body.length);
        assert.equal(sha256(await c.getObject(key)), sha256(body), key);
      }
    });

    it('an aborted putObject leaves no object and nothing to sweep', async () => {
      const c = await fresh();
      const controller = new AbortController();
      const parts = pooledParts([5 * MiB, 5 * MiB], {
        beforeEnd: async () => {
          while (!parts.allReleased()) await new Promise((r) => setTimeout(r, 5));
          controller.abort(new Error('test abort'));
          await new Promise(() => {}); // the body never ends
        },
      });
      await rejectsWith(c.putObject('packs/s2/1-9', parts.body, { signal: controller.signal, release: parts.release }), 'ABORTED', PagevaultError);
      assert.ok(parts.allReleased());
      await rejectsWith(c.head('packs/s2/1-9'), 'NOT_FOUND');
      if (harness.sweeps === 'not-supported') await rejectsWith(c.sweepIncomplete!('', 0), 'NOT_SUPPORTED');
      else assert.deepEqual(await c.sweepIncomplete!('', 0), []);
      assert.deepEqual(await listKeys(c), []);
    });

    it('sweepIncomplete removes a write left unfinished, and leaves a recent one alone', async (t) => {
      if (harness.sweeps !== 'yes') return t.skip(`this server ${harness.sweeps === 'not-supported' ? 'cannot list uploads' : 'lists no uploads'}`);
      const c = await fresh();
      const controller = new AbortController();
      let stored!: () => void;
      const started = new Promise<void>((r) => (stored = r));
      const parts = pooledParts([5 * MiB, 5 * MiB], {
        beforeEnd: async () => {
          while (!parts.allReleased()) await new Promise((r) => setTimeout(r, 5));
          stored();
          await new Promise(() => {}); // like a killed process: never completes
        },
      });
      const writing = c.putObject('packs/s4/x', parts.body, { signal: controller.signal, release: parts.release }).catch((err: unknown) => err);
      await started;
      assert.deepEqual(await c.sweepIncomplete!('packs/', 3_600_000), [], 'a recent write is left alone');
      const swept = await c.sweepIncomplete!('packs/', 0);
      assert.equal(swept.length, 1);
      assert.ok(swept[0]!.key === undefined || swept[0]!.key === 'packs/s4/x', swept[0]!.key);
      controller.abort(new Error('test abort'));
      await writing;
      assert.deepEqual(await c.sweepIncomplete!('', 0), []);
      await rejectsWith(c.head('packs/s4/x'), 'NOT_FOUND');
    });

    it('only the last part of a streamed body may be smaller than 5 MiB', async () => {
      const c = await fresh();
      const parts = pooledParts([1000, 5 * MiB]);
      await rejectsWith(c.putObject('packs/s3/x', parts.body, { release: parts.release }), 'BUG', BugError);
      assert.ok(parts.allReleased());
      await rejectsWith(c.head('packs/s3/x'), 'NOT_FOUND');
    });

    it('keys that cannot map to a path are usage errors everywhere', async () => {
      const c = await fresh();
      for (const key of ['', '/abs', 'a//b', 'a/../b', './a', 'a/']) {
        await rejectsWith(c.putIfAbsent(key, Buffer.from('x')), 'BAD_KEY', UsageError);
      }
    });
  });
}
