// The shared CLI cases (suite.ts) on the @20minutes/s3rver fork, in a child process.
import { s3rverTarget } from './s3-target.ts';
import { cliSuite } from './suite.ts';

cliSuite('s3rver', s3rverTarget);
