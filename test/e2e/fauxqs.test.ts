// The shared CLI cases (suite.ts) on fauxqs, in this process. fauxqs checks no signatures, so the CLI gets a
// distinctive secret key that the suite looks for in its output.
import { adminClient, startFauxqs } from '../helpers/servers.ts';
import { s3Target } from './s3-target.ts';
import { cliSuite } from './suite.ts';

cliSuite('fauxqs', async () => {
  const server = await startFauxqs();
  const credentials = { accessKeyId: 'e2e-access', secretAccessKey: 'e2e-secret-5b1d0c9e7a' };
  return s3Target({
    endpoint: server.endpoint,
    ...credentials,
    client: adminClient({ endpoint: server.endpoint, ...credentials }),
    createBucket: (name) => server.createBucket(name),
    stop: () => server.stop(),
  });
});
