// The storage conformance suite on Ceph radosgw, the one real S3 implementation reachable here, plus what only
// a server that enforces conditional writes, Content-MD5 and signatures can show. Run with `npm run test:rgw`
// (or, against a radosgw already up: export the env file `scripts/rgw.sh up` writes, then
// `PAGEVAULT_TEST_TIER=rgw node scripts/run-tests.mjs storage`). Without the PAGEVAULT_RGW_* variables it fails.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, CreateMultipartUploadCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, UploadPartCommand } from '@aws-sdk/client-s3';
import { openStorage, S3Store, type StorageClient, type StorageOptions } from '../../src/storage/index.ts';
import { classifyS3Error } from '../../src/storage/s3/s3-store.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { adminClient, type S3Server } from '../helpers/servers.ts';
import { rejectsWith, sha256, storageConformance, stream } from '../storage/conformance.ts';
import { s3Harness, s3Options } from '../storage/s3-options.ts';

const vars = ['PAGEVAULT_RGW_ENDPOINT', 'PAGEVAULT_RGW_ACCESS_KEY', 'PAGEVAULT_RGW_SECRET_KEY'] as const;
const missing = vars.filter((name) => !process.env[name]);
if (missing.length > 0) {
  throw new Error(
    `the rgw tier needs ${missing.join(', ')}: run it with \`npm run test:rgw\`, or export the env file that \`scripts/rgw.sh up\` writes`,
  );
}
const MiB = 1024 * 1024;

/** radosgw as an S3Server: buckets are created with random names and emptied and removed on stop. */
function rgw(): S3Server & { buckets: string[] } {
  const base = {
    kind: 'radosgw',
    endpoint: process.env.PAGEVAULT_RGW_ENDPOINT!,
    port: Number(new URL(process.env.PAGEVAULT_RGW_ENDPOINT!).port),
    accessKeyId: process.env.PAGEVAULT_RGW_ACCESS_KEY!,
    secretAccessKey: process.env.PAGEVAULT_RGW_SECRET_KEY!,
  };
  const buckets: string[] = [];
  const s3 = adminClient(base);
  return {
    ...base,
    buckets,
    async createBucket(name) {
      await s3.send(new CreateBucketCommand({ Bucket: name }));
      buckets.push(name);
    },
    async stop() {
      for (const Bucket of buckets) {
        // Whatever a failed test left: objects, then pending uploads (through pagevault's own client), then the bucket.
        const store = new S3Store({ bucket: Bucket, endpoint: base.endpoint, credentials: async () => base });
        await store.sweepIncomplete('', 0);
        await store.close();
        for (;;) {
          const page = await s3.send(new ListObjectsV2Command({ Bucket }));
          const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
          if (keys.length === 0) break;
          await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
        }
        await s3.send(new DeleteBucketCommand({ Bucket }));
      }
      s3.destroy();
    },
  };
}

const bucketName = (what: string): string => `pagevault-${what}-${randomBytes(5).toString('hex')}`;

storageConformance('radosgw', s3Harness(async () => rgw(), { sweeps: 'yes', sortedListing: true }, bucketName('conformance')));

describe('radosgw: what only a strict server shows', () => {
  const server = rgw();
  const bucket = bucketName('strict');
  let proxy: FaultProxy;
  const clients: StorageClient[] = [];
  const open = (overrides: StorageOptions = {}, via: Pick<S3Server, 'endpoint' | 'accessKeyId' | 'secretAccessKey'> = server): StorageClient => {
    const c = openStorage(`s3://${bucket}/${randomBytes(4).toString('hex')}`, s3Options(via, overrides));
    clients.push(c);
    return c;
  };

  before(async () => {
    await server.createBucket(bucket);
    proxy = await startFaultProxy(server.endpoint);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await proxy?.close();
    await server.stop();
  });

  it('enforces If-None-Match: * itself: without pagevault checking first, an existing key is ALREADY_EXISTS', async () => {
    const c = open({ s3: { checkBeforeCreate: false } });
    const first = randomBytes(2000);
    await c.putIfAbsent('manifests/a', first);
    await rejectsWith(c.putIfAbsent('manifests/a', randomBytes(2000)), 'ALREADY_EXISTS');
    assert.equal(sha256(await c.getObject('manifests/a')), sha256(first));
  });

  it('lets exactly one of many concurrent creators of a key win, atomically', async () => {
    const c = open({ s3: { checkBeforeCreate: false } });
    const bodies = Array.from({ length: 8 }, () => randomBytes(50_000));
    const results = await Promise.allSettled(bodies.map((b) => c.putIfAbsent('manifests/race', b)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, `${won.length} creators won`);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'ALREADY_EXISTS');
    assert.equal(sha256(await c.getObject('manifests/race')), sha256(bodies[won[0]!]!));
  });

  it('rejects a part whose Content-MD5 does not match its bytes (BAD_DIGEST)', async () => {
    // pagevault's own parts always carry the right MD5, so the refusal is shown with the SDK directly.
    const s3 = adminClient(server);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'packs/bad-md5' }));
    const data = randomBytes(5 * MiB);
    const wrong = createHash('md5').update(randomBytes(16)).digest('base64');
    const err = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'packs/bad-md5', UploadId, PartNumber: 1, Body: data, ContentMD5: wrong })).catch((e: unknown) => e);
    assert.equal(classifyS3Error(err), 'BAD_DIGEST');
    s3.destroy();
    const store = new S3Store({ bucket, endpoint: server.endpoint, credentials: async () => server });
    assert.equal((await store.sweepIncomplete('packs/', 0)).length, 1);
    await store.close();
  });

  it('refuses wrong credentials with ACCESS_DENIED: a bad signature and an unknown key', async () => {
    const badSecret = open({}, { ...server, secretAccessKey: 'wrong-secret-value' });
    const e1 = await rejectsWith(badSecret.getObject('k'), 'ACCESS_DENIED');
    assert.match(e1.message, /SignatureDoesNotMatch/);
    assert.doesNotMatch(e1.message, /wrong-secret-value/);
    const badKey = open({}, { ...server, accessKeyId: 'NOSUCHKEY', secretAccessKey: 'x' });
    await rejectsWith(badKey.putIfAbsent('k', Buffer.from('x')), 'ACCESS_DENIED');
  });

  it('a missing bucket is NO_SUCH_BUCKET', async () => {
    const c = openStorage(`s3://${bucketName('absent')}/p`, s3Options(server));
    clients.push(c);
    await rejectsWith(c.getObject('k'), 'NO_SUCH_BUCKET');
    await rejectsWith(c.putIfAbsent('k', Buffer.from('x')), 'NO_SUCH_BUCKET');
  });

  it('a failed upload behind the fault proxy is aborted: radosgw lists no pending upload afterwards', async () => {
    const c = open({ retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20, budgetMs: 5000 } }, { ...server, endpoint: proxy.endpoint });
    proxy.setRules([{ match: (r) => r.method === 'PUT' && r.url.includes('partNumber=2&'), fault: '500' }]);
    await rejectsWith(c.putObject('packs/doomed', stream([randomBytes(5 * MiB), randomBytes(5 * MiB)]), { partsInFlight: 2 }), 'RETRIES_EXHAUSTED');
    proxy.setRules([]);
    assert.deepEqual(await c.sweepIncomplete!('', 0), []);
    await rejectsWith(c.head('packs/doomed'), 'NOT_FOUND');
  });

  it('with random faults, a signed multipart upload and ranged reads still end with the right bytes', async () => {
    const c = open({ retry: { attempts: 12, baseDelayMs: 5, maxDelayMs: 100, budgetMs: 30_000 }, s3: { idleTimeoutMs: 1000 } }, { ...server, endpoint: proxy.endpoint });
    proxy.setRates({ reset: 0.05, 'reset-after': 0.05, truncate: 0.05, '500': 0.05, '503': 0.05 });
    try {
      const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(2 * MiB)];
      await c.putObject('packs/faulty', stream(parts), { partsInFlight: 3 });
      const whole = Buffer.concat(parts);
      for (let i = 0; i < 8; i++) {
        const offset = i * 1_500_000;
        assert.equal(sha256(await c.readRange('packs/faulty', offset, MiB)), sha256(whole.subarray(offset, offset + MiB)));
      }
      await c.putIfAbsent('manifests/faulty', parts[2]!.subarray(0, 10_000));
    } finally {
      proxy.setRates({});
    }
    assert.ok(proxy.log.filter((e) => e.fault).length >= 3, 'faults were injected');
    assert.deepEqual(await c.sweepIncomplete!('', 0), []);
  });
});

