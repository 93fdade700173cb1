// The conformance suite on the @20minutes/s3rver fork, in its own process. It answers 501 to
// ListMultipartUploads and 405 to AbortMultipartUpload, lists in directory order, and never answers a ranged
// GET of an empty object.
import { startS3rver } from '../helpers/servers.ts';
import { storageConformance } from './conformance.ts';
import { s3Harness } from './s3-options.ts';

storageConformance(
  's3rver fork',
  s3Harness(() => startS3rver(), { sweeps: 'not-supported', sortedListing: false, rangeOfEmptyHangs: true }),
);
