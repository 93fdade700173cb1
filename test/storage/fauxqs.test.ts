// The conformance suite on fauxqs 1.9.2, in this process. fauxqs lists no multipart uploads, ever, and it sorts
// listings with localeCompare but pages them by comparing keys byte-wise, so across pages a listing of keys
// that mix cases or non-ASCII letters repeats some and drops others: the suite uses lowercase ASCII keys here.
import { startFauxqs } from '../helpers/servers.ts';
import { storageConformance } from './conformance.ts';
import { s3Harness } from './s3-options.ts';

storageConformance('fauxqs', s3Harness(() => startFauxqs(), { sweeps: 'always-empty', sortedListing: false }));
