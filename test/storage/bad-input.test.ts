// Bad input gets a typed error with a clear message, fast: malformed URLs and options, a missing bucket, wrong
// credentials, an endpoint that refuses connections or never answers. Secrets never appear in messages.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { openStorage, parseStorageUrl, partSizeFor, redactUrl, resolveS3Config } from '../../src/storage/index.ts';
import { startFauxqs, startS3rver, type S3Server } from '../helpers/servers.ts';
import { rejectsWith } from './conformance.ts';
import { s3Options } from './s3-options.ts';

describe('storage URLs', () => {
  it('parses s3 and file URLs', () => {
    assert.deepEqual(parseStorageUrl('s3://bkt'), { scheme: 's3', bucket: 'bkt', prefix: '' });
    assert.deepEqual(parseStorageUrl('s3://bkt/db/main/'), { scheme: 's3', bucket: 'bkt', prefix: 'db/main' });
    assert.deepEqual(parseStorageUrl('file:///var/backups/'), { scheme: 'file', path: '/var/backups' });
    assert.deepEqual(parseStorageUrl('file://localhost/var/b'), { scheme: 'file', path: '/var/b' });
    assert.deepEqual(parseStorageUrl('file://./vault', '/home/me'), { scheme: 'file', path: '/home/me/vault' });
    assert.deepEqual(parseStorageUrl('file://../up', '/home/me'), { scheme: 'file', path: '/home/up' });
    assert.deepEqual(parseStorageUrl('file:///a%20b'), { scheme: 'file', path: '/a b' });
  });

  it('rejects malformed URLs with BAD_URL and a message that says what is expected', () => {
    const cases: Array<[string, RegExp]> = [
      ['bucket/prefix', /not a storage URL.*s3:\/\/bucket\/prefix/],
      ['gs://bucket', /unsupported storage scheme gs:\/\//],
      ['s3://', /no valid bucket name/],
      ['s3://bkt/a//b', /invalid prefix/],
      ['s3://bkt/x?versionId=1', /must not have a query/],
      ['s3://bkt:9000/x', /must not carry credentials or a port/],
      ['file://relative/dir', /needs an absolute path.*file:\/\/\.\/backups/],
      ['file:///bad%zzescape', /malformed %-escape/],
    ];
    for (const [url, message] of cases) {
      assert.throws(
        () => openStorage(url),
        (err: unknown) => err instanceof UsageError && err.code === 'BAD_URL' && message.test(err.message),
        url,
      );
    }
  });

  it('never echoes credentials embedded in a URL', () => {
    let caught: unknown;
    try {
      openStorage('s3://AKIAEXAMPLE:wJalrXUtnFEMIsecret@bkt/prefix');
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof UsageError);
    assert.doesNotMatch(caught.message, /wJalrXUtnFEMIsecret|AKIAEXAMPLE/);
    assert.match(caught.message, /s3:\/\/\*\*\*@bkt\/prefix/);
    assert.equal(redactUrl('https://h/p?X-Amz-Signature=abc&part=2&X-Amz-Security-Token=t'), 'https://h/p?X-Amz-Signature=***&part=2&X-Amz-Security-Token=***');
    assert.equal(redactUrl('file:///var/x'), 'file:///var/x');
  });

  it('resolves the endpoint from options, then AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, with path style and us-east-1 for custom ones', () => {
    const env = { AWS_ENDPOINT_URL: 'http://generic:1', AWS_ENDPOINT_URL_S3: 'http://s3only:2' };
    assert.equal(resolveS3Config({ bucket: 'b' }, env).endpoint, 'http://s3only:2');
    assert.equal(resolveS3Config({ bucket: 'b' }, { AWS_ENDPOINT_URL: 'http://generic:1' }).endpoint, 'http://generic:1');
    const flag = resolveS3Config({ bucket: 'b', endpoint: 'http://flag:3' }, env);
    assert.equal(flag.endpoint, 'http://flag:3');
    assert.equal(flag.forcePathStyle, true);
    assert.equal(flag.region, 'us-east-1');
    assert.equal(flag.requestChecksumCalculation, 'WHEN_REQUIRED');
    assert.equal(flag.maxAttempts, 1, 'the retry wrapper is the only retry layer');
    const aws = resolveS3Config({ bucket: 'b' }, { AWS_REGION: 'eu-west-3' });
    assert.equal(aws.endpoint, undefined);
    assert.equal(aws.forcePathStyle, false);
    assert.equal(aws.region, 'eu-west-3');
    assert.equal(resolveS3Config({ bucket: 'b', endpoint: 'https://s3.eu-west-3.amazonaws.com' }, {}).custom, false);
    assert.throws(() => resolveS3Config({ bucket: 'b', endpoint: 'ftp://x' }, {}), /must be http:\/\/ or https:\/\//);
    assert.throws(
      () => resolveS3Config({ bucket: 'b', endpoint: 'http://user:hunter2@h' }, {}),
      (err: unknown) => err instanceof UsageError && !err.message.includes('hunter2'),
    );
  });

  it('validates options with exact messages', () => {
    assert.throws(() => openStorage('file:///tmp/x', { concurrency: 0 }), /concurrency must be a positive integer, got 0/);
    assert.throws(() => openStorage('file:///tmp/x', { throttle: { bytesPerSecond: -1 } }), /bytesPerSecond must be a non-negative number, got -1/);
    assert.throws(() => partSizeFor(undefined, 1024 * 1024), /partSize must be between 5242880 and 5368709120 bytes, got 1048576/);
  });
});

describe('storage failures against real servers', () => {
  let fauxqs: S3Server;
  let s3rver: S3Server;
  before(async () => {
    [fauxqs, s3rver] = await Promise.all([startFauxqs(), startS3rver()]);
    await Promise.all([fauxqs.createBucket('exists'), s3rver.createBucket('exists')]);
  });
  after(async () => {
    await Promise.all([fauxqs?.stop(), s3rver?.stop()]);
  });

  it('a missing bucket is NO_SUCH_BUCKET, naming the bucket', async () => {
    for (const server of [fauxqs, s3rver]) {
      const c = openStorage('s3://no-such-bucket/p', s3Options(server));
      const err = await rejectsWith(c.putIfAbsent('k', Buffer.from('x')), 'NO_SUCH_BUCKET');
      assert.match(err.message, /bucket no-such-bucket does not exist/);
      await rejectsWith(c.getObject('k'), 'NO_SUCH_BUCKET');
      await c.close();
    }
  });

  // With allowMismatchedSignatures (which the SDK's bucket calls need) s3rver still checks the access key id;
  // radosgw checks signatures too (test/rgw/storage.test.ts).
  it('wrong credentials are ACCESS_DENIED, without the secret in the message', async () => {
    const c = openStorage('s3://exists/p', s3Options({ ...s3rver, accessKeyId: 'NOT-S3RVER', secretAccessKey: 'not-the-secret-xyz' }));
    const err = await rejectsWith(c.getObject('k'), 'ACCESS_DENIED');
    assert.match(err.message, /access denied \(InvalidAccessKeyId/);
    assert.doesNotMatch(err.message, /not-the-secret-xyz/);
    assert.doesNotMatch(JSON.stringify(err, Object.getOwnPropertyNames(err)), /not-the-secret-xyz/);
    await c.close();
  });

  it('an endpoint that refuses connections fails with UNREACHABLE within the retry budget', async () => {
    const port = await freePort();
    const c = openStorage('s3://exists/p', s3Options(
      { endpoint: `http://127.0.0.1:${port}`, accessKeyId: 'a', secretAccessKey: 'b' },
      { retry: { attempts: 20, baseDelayMs: 50, maxDelayMs: 400, budgetMs: 1500 } },
    ));
    const started = Date.now();
    const err = await rejectsWith(c.head('k'), 'UNREACHABLE');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 3000, `gave up after ${elapsed} ms`);
    assert.match(err.message, /cannot reach http:\/\/127\.0\.0\.1:\d+.*gave up after \d+ attempts/);
    await c.close();
  });

  it('an endpoint that accepts connections but never answers fails with TIMEOUT, not a hang', async () => {
    const sockets = new Set<Socket>();
    const silent = await listen(createServer((s) => void sockets.add(s)));
    const port = (silent.address() as { port: number }).port;
    const c = openStorage('s3://exists/p', s3Options(
      { endpoint: `http://127.0.0.1:${port}`, accessKeyId: 'a', secretAccessKey: 'b' },
      { retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50, budgetMs: 5000 }, s3: { idleTimeoutMs: 300 } },
    ));
    const started = Date.now();
    await rejectsWith(c.getObject('k'), 'TIMEOUT');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 600 && elapsed < 4000, `gave up after ${elapsed} ms`);
    assert.ok(sockets.size >= 1, 'the requests did reach the silent server');
    await c.close();
    for (const s of sockets) s.destroy();
    silent.close();
  });
});

function listen(server: Server): Promise<Server> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function freePort(): Promise<number> {
  const s = await listen(createServer());
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
