// Every default pagevault applies lives here, so that the documentation, the CLI's --help and the library
// agree. Options objects elsewhere are Partial<...> of types whose defaults are read from this file.
import { availableParallelism } from 'node:os';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** The page source (src/source/): how the backup of the source database is stepped. */
export const sourceDefaults = {
  /** Bytes copied per sqlite3_backup_step; the page count per step is this divided by the page size. */
  stepBytes: 1 * MiB,
  /** Bounds for the pages per step whatever the page size: a few hundred, yielding to the event loop between steps. */
  minStepPages: 16,
  maxStepPages: 1024,
  /** Page cache of our own connection to the source, in KiB; the backup reads each page once. */
  sourceCacheKiB: 1024,
  /** Cache of the destination connection; dirty pages beyond it are spilled to the staging VFS (small is faster). */
  destinationCacheKiB: 256,
  /**
   * Bytes of pages the staging VFS may hold at once: invariant 1's bound on it. A step stages at most its own
   * pages plus the destination cache (about 1.25 MiB); the rest is what the application's own commits re-send
   * between two drains, which happens inside the commit, where nothing can drain. Past it the copy falls back
   * to our own connection and starts over. 8 MiB lets one transaction rewrite about 1,700 already copied
   * 4 KiB pages first (a fifth of the upload side's 40 MiB); without a cap one UPDATE of a 78 MiB database
   * at 90% progress staged 71.8 MiB.
   */
  maxStagedBytes: 8 * MiB,
  /** Restarts tolerated before falling back (rollback journal: to one locked pass; app connection: to our own connection). */
  maxRestarts: 3,
  /** How long a locked source (SQLITE_BUSY / SQLITE_LOCKED) is waited for, in total, before giving up or falling back. */
  busyTimeoutMs: 30_000,
  /**
   * Times the held read transaction is begun again for a companion (the source check) that saw a commit land
   * between (then its record says sameState: false). Each attempt costs two round trips to the check process,
   * well under a millisecond; a writer committing without pause, on a machine busy with other work, made 5
   * too few (a sameState: false seen once in a full run of the test suite).
   */
  companionPinAttempts: 20,
} as const;

/** Object storage (src/storage/): the backends, and the retry, limit and throttle wrappers stacked over them. */
export const storageDefaults = {
  /** Region for custom (non-AWS) endpoints when none is configured; AWS endpoints use the SDK's region chain. */
  customEndpointRegion: 'us-east-1',
  /** TCP connect timeout; an unreachable endpoint fails after the retries, never hangs. */
  connectTimeoutMs: 5_000,
  /** A request whose socket sees no bytes for this long is abandoned and retried (a stalled server). */
  idleTimeoutMs: 30_000,
  /** Requests in flight at once, across all operations of one client (the limit wrapper). */
  concurrency: 8,
  /** Multipart parts in flight at once for one upload, each holding one caller buffer. */
  partsInFlight: 4,
  /** Part size when nothing is known about the object's size; grows so that no upload needs more than maxParts. */
  partSize: 8 * MiB,
  /** S3's limits on multipart uploads: every part but the last at least minPartSize, at most maxParts parts. */
  minPartSize: 5 * MiB,
  maxPartSize: 5 * GiB,
  maxParts: 10_000,
  /** Keys per ListObjectsV2 page and per DeleteObjects request (S3's maximum for both). */
  listPageSize: 1000,
  deleteBatchSize: 1000,
  /** Retry: attempts per operation, full-jitter exponential backoff, and the total time one operation may take. */
  retryAttempts: 8,
  retryBaseDelayMs: 200,
  retryMaxDelayMs: 10_000,
  retryBudgetMs: 120_000,
  /**
   * How long aborting a multipart upload (waiting for its parts to stop, then AbortMultipartUpload with its
   * retries) may take after a failure or a signal. An abort must fit in a container's grace period (Docker
   * 10 s, Kubernetes 30 s) with room to spare: an upload not aborted in time is swept by a later snapshot
   * (staleUploadAgeMs) and by the bucket's lifecycle rule.
   */
  uploadAbortTimeoutMs: 1_000,
  /** Throttle: 0 means unlimited. Burst is the token bucket's depth, in seconds of the configured rate. */
  bytesPerSecond: 0,
  requestsPerSecond: 0,
  throttleBurstSeconds: 1,
} as const;

/** The chunk codec (src/chunk/): digest and zstd compression in worker threads, off the main thread. */
export const codecDefaults = {
  /** Codec worker threads: one core is left to the main thread (backup steps, uploads), at most 4. */
  workers: Math.max(1, Math.min(4, availableParallelism() - 1)),
  /** zstd level: 1 compresses ~450 MB/s per core (ratio ~2.3 on mixed SQLite pages), 3 only ~250 MB/s for ~10% less. */
  level: 1,
  /** A chunk is stored raw unless zstd makes it smaller than this fraction of its raw size. */
  rawThreshold: 0.97,
  /** Messages handed to one worker at once: a second one hides the message round trip. */
  jobsPerWorker: 2,
  /**
   * Encode jobs waiting behind each other go to a worker in one message, up to this much input: a round trip
   * costs about 60 us of CPU on these machines, as much as digesting 100 KiB.
   */
  batchBytes: 1 * MiB,
  /**
   * A worker's young generation, in MiB. A worker allocates little besides its messages (the chunks are
   * transferred buffers): V8's default sizing grew it to ~10 MB more RSS per snapshot at no gain in speed
   * (4 GiB snapshot, four runs each: peak 185-191 MB with 4 MiB, 187-205 MB without; 32 s either way).
   */
  workerYoungGenerationMb: 4,
} as const;

/** The vault format (src/vault/): what new repositories and manifests are written with. */
export const vaultDefaults = {
  /** Codec a new repository records for the stored extents of its snapshots. */
  codec: 'zstd',
  /** zstd level of manifest bodies; a manifest is written once per snapshot and is mostly incompressible digests. */
  manifestCompressionLevel: 3,
} as const;

/** Snapshots (src/snapshot/): chunking, packing and the memory bound of the upload pipeline. */
export const snapshotDefaults = {
  /**
   * Chunks, the unit of digest, dedup and compression: from minChunkSize, doubling up to maxChunkSize while a
   * database would need more than targetMaxChunks of them (see src/snapshot/chunk-size.ts).
   */
  minChunkSize: 64 * KiB,
  maxChunkSize: 4 * MiB,
  targetMaxChunks: 131_072,
  /** Pages of the database one pack covers; its key names that range. */
  packSpan: 1 * GiB,
  /** Multipart parts uploaded at once. */
  uploadConcurrency: 4,
  /**
   * Part buffers, in bytes: the memory bound of the upload side (at least two parts). Five 8 MiB parts keep
   * four uploading while one fills.
   */
  maxBytesInFlight: 40 * MiB,
  /** A pack upload idle this long belongs to a snapshot that died; the next snapshot aborts it. */
  staleUploadAgeMs: 48 * 60 * 60 * 1000,
  /**
   * The source check run beside the copy (src/snapshot/source-check.ts): 'quick' (PRAGMA quick_check),
   * 'full' (integrity_check) or 'none'. quick finds damaged pages, b-trees, records and free lists, and index
   * entry counts, for 1.3-1.6 CPU s per GiB; in its own process beside an incremental snapshot (1.6-2.9 s and
   * 2.7 CPU s per GiB) it adds 0.5-0.8 s per GiB of wall time, half of what it adds run after the copy. full
   * also compares every index with its table: 3.2-3.7 CPU s and 2.3-3.5 s of wall time per GiB, more than the
   * snapshot itself, and every restore runs it anyway. (`npm run bench -- source-check`, 2 cores shared with
   * other work, load 1-3, a 1 GiB application-like database.)
   */
  sourceCheck: 'quick' as 'quick' | 'full' | 'none',
} as const;

/** Garbage collection (src/lifecycle/): prune's grace period and repack on write. See docs/FORMAT.md, "Garbage collection". */
export const gcDefaults = {
  /**
   * How long an object stays after a prune marked it before a later prune may delete it. A snapshot must reach
   * its manifest within half of it (the other half covers a prune paused between marking and forgetting), so
   * the default allows a 12-hour snapshot, and bounds clock skew by nothing: every time compared is the store's.
   */
  graceMs: 24 * 60 * 60 * 1000,
  /** The shortest grace period accepted (tests use seconds; production wants hours). */
  minGraceMs: 1000,
  /**
   * Of the half grace period a snapshot or a prune may use, this much (at most publishMarginMaxMs) is kept back
   * for the requests that follow the last check (the manifest PUT, the manifests' DELETE) and the store clock's
   * one-second resolution.
   */
  publishMarginFraction: 0.1,
  publishMarginMaxMs: 60_000,
  /**
   * Snapshots forgotten per batch, each batch's marks and manifest deletions timed against that window on its
   * own: 1,000 forget marks take about 2 s to write to fauxqs here, so a batch of 100 stays well inside even a
   * grace period of a few seconds.
   */
  forgetBatch: 100,
  /**
   * Repack on write: a snapshot does not reuse chunks from a pack of which its parent uses less than this
   * fraction; it uploads them again, so that a later prune can delete the mostly dead pack.
   */
  repackBelow: 0.5,
} as const;

/** Restores (src/restore/): how a snapshot is fetched. */
export const restoreDefaults = {
  /** Ranged reads at once; each holds one read buffer and one output buffer. */
  concurrency: 4,
  /** Neighbouring chunks of a pack are fetched together in reads of up to this size... */
  readSize: 8 * MiB,
  /** ...decoding to at most this much (the output buffer), in one round trip to a codec worker. */
  maxRawBytes: 16 * MiB,
  /** ...when at most this many unneeded bytes separate them. */
  maxGap: 256 * KiB,
  /** Processes the integrity check of the restored file is split across (one per core, at most 4; 1: not split). */
  checkThreads: Math.max(1, Math.min(4, availableParallelism())),
} as const;
