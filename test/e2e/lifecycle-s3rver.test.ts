// Retention and garbage collection (lifecycle-suite.ts) on the s3rver fork.
import { lifecycleSuite } from './lifecycle-suite.ts';
import { s3rverTarget } from './s3-target.ts';

lifecycleSuite('s3rver', s3rverTarget, { races: 2, kills: 4, pairs: 1 });
