// Retention and garbage collection (lifecycle-suite.ts) on fauxqs.
import { lifecycleSuite } from './lifecycle-suite.ts';
import { fauxqsTarget } from './s3-target.ts';

lifecycleSuite('fauxqs', fauxqsTarget, { races: 2, kills: 4, pairs: 1 });
