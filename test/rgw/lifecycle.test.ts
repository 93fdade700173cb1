// Retention and garbage collection (lifecycle-suite.ts) on radosgw, and the one thing only a real S3 shows: a
// prune aborts the multipart uploads a killed snapshot left, once they are older than the grace period.
import assert from 'node:assert/strict';
import { CreateBucketCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { adminClient } from '../helpers/servers.ts';
import { runCli } from '../helpers/cli.ts';
import { createDatabase, tempDir } from '../helpers/sqlite.ts';
import { lifecycleSuite } from '../e2e/lifecycle-suite.ts';
import { s3Target } from '../e2e/s3-target.ts';
import { assertExit } from '../e2e/suite.ts';
import { rgw } from './env.ts';

const server = rgw();
const client = adminClient(server);
const target = () =>
  s3Target({
    ...server,
    client,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    stop: async () => {},
  });

lifecycleSuite('radosgw', target, { races: 2, kills: 4, pairs: 1 });

it('prune aborts a killed snapshot\'s multipart upload once it is older than the grace period, and only then', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'app.db');
  createDatabase(db, { rows: 300 });
  const vaults = await target();
  const url = await vaults.freshUrl();
  assertExit(await runCli(['snapshot', db, url], { env: vaults.env }), 0);
  const [, bucket, prefix] = /^s3:\/\/([^/]+)\/(.+)$/.exec(url)!;
  const key = `${prefix}/packs/20260101T000000000Z-00000000aa/0000000001-0000000010`;
  await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const uploads = async () => ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }))).Uploads ?? []).map((u) => u.Key);
  const young = await runCli(['prune', url, '--keep-last', '1', '--grace', '1h', '--json'], { env: vaults.env });
  assertExit(young, 0);
  assert.equal(young.json.abortedUploads, 0);
  assert.deepEqual(await uploads(), [key]);
  await sleep(3000);
  const old = await runCli(['prune', url, '--keep-last', '1', '--grace', '2s', '--json'], { env: vaults.env });
  assertExit(old, 0);
  assert.equal(old.json.abortedUploads, 1);
  assert.deepEqual(await uploads(), []);
});
