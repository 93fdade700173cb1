// Retention and garbage collection (lifecycle-suite.ts) on file:// vaults, with the most rounds: they are the cheapest.
import { fileTarget } from './file-target.ts';
import { lifecycleSuite } from './lifecycle-suite.ts';

lifecycleSuite('file', async () => fileTarget(), { races: 5, kills: 20, pairs: 2 });
