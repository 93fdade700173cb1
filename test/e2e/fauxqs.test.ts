// The shared CLI cases (suite.ts) on fauxqs, in this process.
import { fauxqsTarget } from './s3-target.ts';
import { cliSuite } from './suite.ts';

cliSuite('fauxqs', fauxqsTarget);
