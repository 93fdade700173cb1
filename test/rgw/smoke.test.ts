// Smoke test of the real-S3 tier: talks to the Ceph radosgw that `scripts/rgw.sh test` starts, with the AWS SDK
// directly, to prove the tier works and to pin down the radosgw behaviour that pagevault relies on. Run it with
// `npm run test:rgw`; against a radosgw that is already up: `scripts/rgw.sh up`, export $DIR/env, then
// `PAGEVAULT_TEST_TIER=rgw node scripts/run-tests.mjs smoke`. Without the PAGEVAULT_RGW_* variables it fails.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

const VARS = ['PAGEVAULT_RGW_ENDPOINT', 'PAGEVAULT_RGW_ACCESS_KEY', 'PAGEVAULT_RGW_SECRET_KEY'] as const;
const MiB = 1024 * 1024;

function rgwClient(override: { accessKeyId?: string; secretAccessKey?: string } = {}): S3Client {
  const missing = VARS.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `the rgw tier needs ${missing.join(', ')}: run it with \`npm run test:rgw\` (scripts/rgw.sh test starts ` +
        'radosgw and exports them), or export the env file that `scripts/rgw.sh up` writes',
    );
  }
  return new S3Client({
    endpoint: process.env.PAGEVAULT_RGW_ENDPOINT,
    forcePathStyle: true,
    region: 'us-east-1',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: {
      accessKeyId: override.accessKeyId ?? process.env.PAGEVAULT_RGW_ACCESS_KEY!,
      secretAccessKey: override.secretAccessKey ?? process.env.PAGEVAULT_RGW_SECRET_KEY!,
    },
  });
}

const bucket = `pagevault-smoke-${randomBytes(6).toString('hex')}`;
let s3: S3Client | undefined;
let bucketCreated = false;

function client(): S3Client {
  s3 ??= rgwClient();
  return s3;
}

/** Asserts that `promise` rejects with an S3 error of this HTTP status and, if given, this error code. */
async function rejectsWith(promise: Promise<unknown>, status: number, code?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(e.$metadata?.httpStatusCode, status, `expected HTTP ${status}, got ${String(err)}`);
    if (code !== undefined) assert.equal(e.name, code);
    return true;
  });
}

async function getBytes(key: string, range?: string): Promise<Buffer> {
  const res = await client().send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

after(async () => {
  if (!s3 || !bucketCreated) return;
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of uploads.Uploads ?? []) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
  }
  const objects = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  for (const o of objects.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  await rejectsWith(s3.send(new HeadBucketCommand({ Bucket: bucket })), 404);
  s3.destroy();
});

test('the PAGEVAULT_RGW_* variables are set and radosgw creates a bucket', async () => {
  await client().send(new CreateBucketCommand({ Bucket: bucket }));
  bucketCreated = true;
  await client().send(new HeadBucketCommand({ Bucket: bucket }));
});

test('PutObject / GetObject round trip, whole and ranged', async () => {
  const data = randomBytes(300 * 1024 + 7);
  const put = await client().send(new PutObjectCommand({ Bucket: bucket, Key: 'round/trip', Body: data }));
  assert.equal(put.ETag, `"${createHash('md5').update(data).digest('hex')}"`);
  assert.deepEqual(await getBytes('round/trip'), data);
  assert.deepEqual(await getBytes('round/trip', 'bytes=1000-1999'), data.subarray(1000, 2000));
  assert.deepEqual(await getBytes('round/trip', 'bytes=-100'), data.subarray(data.length - 100));
  await rejectsWith(getBytes('round/missing'), 404, 'NoSuchKey');
});

test("PutObject with IfNoneMatch: '*' creates a new key and gets 412 on an existing one", async () => {
  const first = Buffer.from('first writer wins');
  await client().send(new PutObjectCommand({ Bucket: bucket, Key: 'cond/key', Body: first, IfNoneMatch: '*' }));
  await rejectsWith(
    client().send(new PutObjectCommand({ Bucket: bucket, Key: 'cond/key', Body: 'second', IfNoneMatch: '*' })),
    412,
    'PreconditionFailed',
  );
  assert.deepEqual(await getBytes('cond/key'), first);
});

test('PutObject with a wrong Content-MD5 is rejected with 400 BadDigest and stores nothing', async () => {
  const body = Buffer.from('the body that was sent');
  const wrong = createHash('md5').update('some other body').digest('base64');
  await rejectsWith(
    client().send(new PutObjectCommand({ Bucket: bucket, Key: 'md5/key', Body: body, ContentMD5: wrong })),
    400,
    'BadDigest',
  );
  await rejectsWith(getBytes('md5/key'), 404, 'NoSuchKey');
  const right = createHash('md5').update(body).digest('base64');
  await client().send(new PutObjectCommand({ Bucket: bucket, Key: 'md5/key', Body: body, ContentMD5: right }));
  assert.deepEqual(await getBytes('md5/key'), body);
});

test('wrong credentials are rejected with 403', async () => {
  const wrongSecret = rgwClient({ secretAccessKey: randomBytes(20).toString('hex') });
  const wrongKey = rgwClient({ accessKeyId: 'PAGEVAULTNOSUCHKEY00' });
  try {
    await rejectsWith(wrongSecret.send(new ListObjectsV2Command({ Bucket: bucket })), 403, 'SignatureDoesNotMatch');
    await rejectsWith(
      wrongSecret.send(new PutObjectCommand({ Bucket: bucket, Key: 'auth/key', Body: 'x' })),
      403,
      'SignatureDoesNotMatch',
    );
    await rejectsWith(wrongKey.send(new GetObjectCommand({ Bucket: bucket, Key: 'round/trip' })), 403, 'InvalidAccessKeyId');
  } finally {
    wrongSecret.destroy();
    wrongKey.destroy();
  }
  await rejectsWith(getBytes('auth/key'), 404, 'NoSuchKey');
});

async function uploadParts(key: string, parts: Buffer[]): Promise<{ uploadId: string; etags: string[] }> {
  const created = await client().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const uploadId = created.UploadId!;
  const etags: string[] = [];
  for (const [i, body] of parts.entries()) {
    const res = await client().send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: body }),
    );
    assert.equal(res.ETag, `"${createHash('md5').update(body).digest('hex')}"`);
    etags.push(res.ETag!);
  }
  return { uploadId, etags };
}

const complete = (key: string, uploadId: string, etags: string[]) =>
  client().send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }),
  );

test('a multipart upload of 5 MiB + 5 MiB + a tail completes and reads back intact', async () => {
  const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(123_457)];
  const whole = Buffer.concat(parts);
  const { uploadId, etags } = await uploadParts('multi/object', parts);
  const done = await complete('multi/object', uploadId, etags);
  // radosgw 16.2 answers CompleteMultipartUpload with an empty <ETag></ETag>; HeadObject has the real one
  const head = await client().send(new HeadObjectCommand({ Bucket: bucket, Key: 'multi/object' }));
  assert.match(head.ETag ?? '', /^"[0-9a-f]{32}-3"$/);
  assert.ok(done.ETag === '' || done.ETag === head.ETag, `CompleteMultipartUpload ETag ${done.ETag}`);
  assert.equal(head.ContentLength, whole.length);
  const back = await getBytes('multi/object');
  assert.equal(back.length, whole.length);
  assert.equal(sha256(back), sha256(whole));
  assert.deepEqual(await getBytes('multi/object', `bytes=${5 * MiB - 10}-${5 * MiB + 9}`),
    whole.subarray(5 * MiB - 10, 5 * MiB + 10));
});

test('CompleteMultipartUpload rejects a part under 5 MiB that is not the last, and a wrong part ETag', async () => {
  const small = await uploadParts('multi/small', [randomBytes(MiB), randomBytes(1000)]);
  await rejectsWith(complete('multi/small', small.uploadId, small.etags), 400, 'EntityTooSmall');
  await client().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'multi/small', UploadId: small.uploadId }));

  const bad = await uploadParts('multi/bad-etag', [randomBytes(5 * MiB), randomBytes(1000)]);
  const wrongEtag = `"${createHash('md5').update('not this part').digest('hex')}"`;
  await rejectsWith(complete('multi/bad-etag', bad.uploadId, [bad.etags[0]!, wrongEtag]), 400, 'InvalidPart');
  await client().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'multi/bad-etag', UploadId: bad.uploadId }));
});

test('ListMultipartUploads lists an unfinished upload and AbortMultipartUpload removes it', async () => {
  const { uploadId } = await uploadParts('multi/unfinished', [randomBytes(MiB)]);
  const listed = await client().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'multi/' }));
  assert.deepEqual(
    (listed.Uploads ?? []).map((u) => [u.Key, u.UploadId]),
    [['multi/unfinished', uploadId]],
  );
  const parts = await client().send(new ListPartsCommand({ Bucket: bucket, Key: 'multi/unfinished', UploadId: uploadId }));
  assert.deepEqual((parts.Parts ?? []).map((p) => [p.PartNumber, p.Size]), [[1, MiB]]);

  await client().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'multi/unfinished', UploadId: uploadId }));
  const after = await client().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'multi/' }));
  assert.deepEqual(after.Uploads ?? [], []);
  // AWS answers NoSuchUpload here; radosgw 16.2 answers ListParts of an aborted upload with 404 NoSuchKey
  await rejectsWith(
    client().send(new ListPartsCommand({ Bucket: bucket, Key: 'multi/unfinished', UploadId: uploadId })),
    404,
  );
  await rejectsWith(
    client().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'multi/unfinished', UploadId: uploadId })),
    404,
    'NoSuchUpload',
  );
  await rejectsWith(getBytes('multi/unfinished'), 404, 'NoSuchKey');
});
