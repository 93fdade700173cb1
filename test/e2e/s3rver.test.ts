// The shared CLI cases (suite.ts) on the @20minutes/s3rver fork, in a child process; it checks signatures
// with its one key pair, S3RVER/S3RVER.
import { adminClient, startS3rver } from '../helpers/servers.ts';
import { s3Target } from './s3-target.ts';
import { cliSuite } from './suite.ts';

cliSuite('s3rver', async () => {
  const server = await startS3rver();
  return s3Target({
    endpoint: server.endpoint,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    client: adminClient(server),
    createBucket: (name) => server.createBucket(name),
    stop: () => server.stop(),
  });
});
