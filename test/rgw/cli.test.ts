// The pagevault CLI end to end on Ceph radosgw, the one production S3 implementation of the rgw tier: the
// shared cases (round trip, incremental bytes, tampered pack and manifest, missing bucket) and refused
// credentials. Run with `npm run test:rgw` (scripts/rgw.sh starts radosgw and exports PAGEVAULT_RGW_*).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { adminClient } from '../helpers/servers.ts';
import { runCli } from '../helpers/cli.ts';
import { createDatabase, tempDir } from '../helpers/sqlite.ts';
import { s3Target } from '../e2e/s3-target.ts';
import { assertExit, cliSuite } from '../e2e/suite.ts';
import { rgw } from './env.ts';

cliSuite('radosgw', async () => {
  const server = rgw();
  const client = adminClient(server);
  return s3Target({
    ...server,
    client,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    stop: async () => {},
  });
});

describe('pagevault CLI on radosgw: credentials', () => {
  it('a wrong secret key is exit 4 (access denied), and the secret never shows', async (t) => {
    const server = rgw();
    const dir = tempDir(t);
    const db = join(dir, 'app.db');
    createDatabase(db, { rows: 50 });
    const wrong = `${server.secretAccessKey.slice(0, -4)}zzzz`;
    const env = { AWS_ENDPOINT_URL_S3: server.endpoint, AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: wrong };
    for (const args of [['snapshot', db, 's3://pagevault-e2e-creds/app'], ['ls', 's3://pagevault-e2e-creds/app', '--verbose']]) {
      const r = await runCli(args, { env });
      assertExit(r, 4);
      assert.match(r.stderr, /^pagevault: .*(denied|signature|credential)/im);
      assert.match(r.stderr, /hint: check the credentials/);
      assert.ok(!r.stderr.includes(wrong) && !r.stdout.includes(wrong), 'the secret key leaked');
    }
  });
});
