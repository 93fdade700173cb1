// snapshot(): one snapshot of a live SQLite database into a vault, end to end, from its parts:
//
//   the source (PageSource, and the SourceCheck beside it) and the vault's previous snapshot (identity, parent)
//   -> the dedup index built from the parent's extents (dedup.ts)
//   -> the pipeline: chunker, codec workers, pack writer (pipeline.ts), recording into the builder (builder.ts)
//   -> the page map -> the extent table, then the manifest, published last with conditional creates
//
// On any failure or abort before the manifest is sent, every multipart upload is aborted and nothing is
// published.
import type { Database } from 'better-sqlite3';
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { hostname } from 'node:os';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { codecDefaults, gcDefaults, snapshotDefaults, storageDefaults } from '../config/defaults.ts';
import { AbortedError, IntegrityError, PruneAfterSnapshotError, UsageError } from '../errors.ts';
import { checkGrace } from '../lifecycle/gc.ts';
import { checkPolicy, type RetentionPolicy } from '../lifecycle/policy.ts';
import { prune, type PruneResult } from '../lifecycle/prune.ts';
import { PageSource } from '../source/index.ts';
import type { PageSourceResult, ReadCompanion, SourceFacts } from '../source/page-source.ts';
import type { StorageClient } from '../storage/client.ts';
import { openStorage, type StorageOptions } from '../storage/registry.ts';
import { partSizeFor } from '../storage/parts.ts';
import { componentLogger } from '../util/logger.ts';
import { encodeExtentTable } from '../vault/extent-table.ts';
import { newSnapshotId } from '../vault/ids.ts';
import { extentTableKey, manifestKey } from '../vault/layout.ts';
import { encodeManifest, fixedChunkCount, MAX_TAGS, tagProblem } from '../vault/manifest.ts';
import { FORMAT_VERSION, type Extent, type ExtentTableRef, type Manifest, type SnapshotStats, type SourceCheckRecord } from '../vault/model.ts';
import { ensureRepository, latestManifest, readExtentTable } from '../vault/repository.ts';
import { toolVersion } from '../version.ts';
import { SnapshotBuilder, type PageMap } from './builder.ts';
import { abortStaleUploads } from './cleanup.ts';
import { chooseChunkPages } from './chunk-size.ts';
import { DedupIndex } from './dedup.ts';
import { SnapshotPipeline } from './pipeline.ts';
import { checkPublishable } from './publish-check.ts';
import { SourceCheck, sourceCheckChoices, type SourceCheckChoice } from './source-check.ts';
import { identityDifferences, identityInManifest, identityOf, refuseAnotherSource } from './source-identity.ts';

export interface SnapshotOptions {
  /** A database file path, or an application's open better-sqlite3 Database (its own connection is copied). */
  source: string | Database;
  /** Vault URL: s3://bucket/prefix or file:///dir (or file://./dir). Ignored when `storage` is given. */
  url?: string;
  /** An already opened storage client (the caller closes it). */
  storage?: StorageClient;
  /** S3 settings and the like for openStorage. */
  storageOptions?: Omit<StorageOptions, 'concurrency' | 'throttle' | 'onEvent'>;
  /** Upload every chunk, ignoring the previous snapshot. */
  full?: boolean;
  /** Bytes per chunk (rounded down to whole pages, at least one page); by default it follows the database's size. */
  chunkSize?: number;
  /** Multipart parts uploaded at once. */
  uploadConcurrency?: number;
  partSize?: number;
  /** Upload bandwidth cap in bytes per second; 0 = none. */
  maxBytesPerSecond?: number;
  /** Bytes of part buffers (the memory bound of the upload side); at least two parts. */
  maxBytesInFlight?: number;
  /** zstd level. */
  compressionLevel?: number;
  /** Codec worker threads. */
  workers?: number;
  /** How long a locked source is waited for before the snapshot fails with SOURCE_BUSY (default sourceDefaults.busyTimeoutMs). */
  busyTimeoutMs?: number;
  /**
   * The source check run while the copy runs (see source-check.ts): 'quick' (PRAGMA quick_check), 'full'
   * (integrity_check) or 'none'. A source that fails it is still snapshotted: result.sourceCheck.ok is false.
   */
  sourceCheck?: SourceCheckChoice;
  /**
   * Accept a source that is not the database of the vault's newest snapshot (another path, file name, page
   * size, application_id or encoding): without it that is SourceError SOURCE_MISMATCH. This snapshot's source
   * then is the vault's.
   */
  newSource?: boolean;
  /** Labels stored in the manifest (distinct; 1-128 characters without spaces, commas or control characters). */
  tags?: string[];
  /**
   * The vault's grace period (default gcDefaults.graceMs), the same one its prunes use: a snapshot publishes
   * only within half of it from its start (see publish-check.ts). It is also the grace of the prune `keep` runs.
   */
  graceMs?: number;
  /** A retention policy: prune the vault by it once the snapshot is published (snapshot --keep-*). */
  keep?: RetentionPolicy;
  /** Repack on write (DedupIndex): default gcDefaults.repackBelow. */
  repackBelow?: number;
  signal?: AbortSignal;
  logger?: Logger;
  onProgress?: (p: SnapshotProgress) => void;
}

export interface SnapshotProgress {
  pagesRead: number;
  /** From the file size when the snapshot began; the database may grow or shrink meanwhile. */
  pagesEstimated: number;
  bytesUploaded: number;
}

/** What a snapshot did: its manifest's stats (bytesUploaded also counting the manifest itself), and more. */
export interface SnapshotResult extends SnapshotStats {
  id: string;
  parent: string | null;
  /** The vault URL, credentials removed. */
  url: string;
  pageSize: number;
  pageCount: number;
  patches: number;
  /** The packs this snapshot wrote. */
  packs: string[];
  mode: string;
  databaseDigest: string | null;
  /** The source check's record (also in the manifest), or null when none ran. ok false: the source is damaged. */
  sourceCheck: SourceCheckRecord | null;
  /** The source differed from the vault's previous one and newSource accepted it. */
  newSource: boolean;
  /** The snapshot's tags, as its manifest holds them. */
  tags: string[];
  /** The parent's packs whose chunks were uploaded again because too little of them is live (repack on write). */
  repacked: string[];
  /** The prune run after publishing, when `keep` was given. */
  prune?: PruneResult;
}

/** The options' numbers and choices, checked (UsageError BAD_OPTION, BAD_TAG) before anything is opened. */
function settingsOf(options: SnapshotOptions) {
  const uploadConcurrency = positiveInt('uploadConcurrency', options.uploadConcurrency ?? snapshotDefaults.uploadConcurrency);
  const partSize = partSizeFor(undefined, options.partSize ?? storageDefaults.partSize);
  const maxBytesInFlight = positiveInt('maxBytesInFlight', options.maxBytesInFlight ?? snapshotDefaults.maxBytesInFlight);
  const maxBytesPerSecond = options.maxBytesPerSecond ?? 0;
  if (!Number.isFinite(maxBytesPerSecond) || maxBytesPerSecond < 0) {
    throw new UsageError('BAD_OPTION', `maxBytesPerSecond must be >= 0, got ${maxBytesPerSecond}`);
  }
  if (!options.storage && !options.url) throw new UsageError('BAD_OPTION', 'snapshot needs a vault url (or a storage client)');
  const checkChoice = options.sourceCheck ?? snapshotDefaults.sourceCheck;
  if (!sourceCheckChoices.includes(checkChoice)) {
    throw new UsageError('BAD_OPTION', `sourceCheck must be one of ${sourceCheckChoices.join(', ')}, got ${String(checkChoice)}`);
  }
  const tags = checkTags(options.tags ?? []);
  const graceMs = checkGrace(options.graceMs);
  const keep = options.keep ? checkPolicy(options.keep) : undefined;
  const repackBelow = options.repackBelow ?? gcDefaults.repackBelow;
  if (!(repackBelow >= 0 && repackBelow <= 1)) throw new UsageError('BAD_OPTION', `repackBelow must be from 0 to 1, got ${repackBelow}`);
  return { uploadConcurrency, partSize, maxBytesInFlight, maxBytesPerSecond, checkChoice, tags, graceMs, keep, repackBelow };
}

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError('BAD_OPTION', `${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/**
 * One snapshot, published, then (with `keep`) a prune of the vault. A prune that fails after the snapshot was
 * published rejects with PruneAfterSnapshotError, which carries the snapshot's result.
 */
export async function snapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const result = await takeSnapshot(options);
  if (!options.keep) return result;
  try {
    const { storage, url, storageOptions, graceMs, signal, logger } = options;
    const where = storage ? { storage } : { url: url!, ...(storageOptions ? { storageOptions } : {}) };
    return { ...result, prune: await prune({ ...where, policy: options.keep, graceMs, signal, logger }) };
  } catch (err) {
    throw new PruneAfterSnapshotError(`snapshot ${result.id} was published; the prune after it failed: ${(err as Error).message}`, {
      cause: err,
      snapshot: result,
      hint: 'the snapshot is safe; run `pagevault prune` with the same --keep-* flags to finish the prune',
    });
  }
}

async function takeSnapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const started = Date.now();
  const startedAt = performance.now();
  const log = componentLogger(options.logger, 'snapshot');
  const { uploadConcurrency, partSize, maxBytesInFlight, maxBytesPerSecond, checkChoice, tags, graceMs, repackBelow } = settingsOf(options);

  // One controller for the whole pipeline: the caller's signal and our own failures both stop everything.
  const controller = new AbortController();
  const onCallerAbort = () => controller.abort(options.signal!.reason);
  if (options.signal?.aborted) throw new AbortedError('snapshot: aborted before it began', { cause: options.signal.reason });
  const signal = controller.signal;

  // The storage client first: a malformed URL is a usage error whatever the state of the source.
  const storage =
    options.storage ??
    openStorage(options.url!, {
      ...options.storageOptions,
      concurrency: Math.max(uploadConcurrency, storageDefaults.concurrency),
      throttle: { bytesPerSecond: maxBytesPerSecond },
      logger: log,
    });
  const ownsStorage = !options.storage;
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  let pipeline: SnapshotPipeline | undefined;
  let opened: PageSource | undefined;
  let check: SourceCheck | undefined;
  // The check exists once the source is open (it needs the file's path); the page source meets it when it begins.
  const companion: ReadCompanion = { probe: async () => check?.probe(), pin: async (mode) => (check ? check.pin(mode) : true) };
  try {
    const source = await PageSource.open(options.source, {
      signal,
      logger: log,
      companion,
      ...(options.busyTimeoutMs !== undefined ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
    });
    opened = source;
    const app = typeof options.source === 'string' ? undefined : options.source;
    check = SourceCheck.start(checkChoice, source.facts.path, {
      logger: log,
      signal,
      ...(options.busyTimeoutMs !== undefined ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
      ...(app ? { writesToken: () => applicationWrites(app) } : {}),
    });
    await ensureRepository(storage, { signal });
    const { parent, newSource } = await priorSnapshot(storage, source.facts, options, { signal, log });
    const id = newSnapshotId(new Date(started));
    const pageSize = source.facts.pageSize;
    const pagesEstimated = source.facts.path ? Math.ceil(statSync(source.facts.path).size / pageSize) : 0;
    const chunkPages = chooseChunkPages({
      pageSize,
      estimatedPages: pagesEstimated,
      ...(parent ? { parent: parent.manifest } : {}),
      ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
    });
    log.info({ id, parent: parent?.manifest.id ?? null, source: source.facts.fileName, pageSize, chunkPages }, 'snapshot started');

    const chunksEstimated = fixedChunkCount(pagesEstimated, chunkPages);
    const index = new DedupIndex({ pageSize, chunkPages, chunksEstimated, repackBelow, ...(parent ? { parent } : {}) });
    if (index.repacked.length > 0) log.info({ id, packs: index.repacked }, 'repack on write: chunks of mostly dead packs are uploaded again');
    const builder = new SnapshotBuilder({ pageSize, chunkPages, chunksEstimated });
    pipeline = new SnapshotPipeline({
      storage,
      snapshotId: id,
      pageSize,
      chunkPages,
      index,
      builder,
      workers: options.workers ?? codecDefaults.workers,
      compressionLevel: options.compressionLevel ?? codecDefaults.level,
      uploadConcurrency,
      partSize,
      maxBytesInFlight,
      signal,
      fail: (err) => controller.abort(err),
      log,
      onBatch: (restarted) => check?.batch(restarted),
      onProgress: (p) => options.onProgress?.({ ...p, pagesEstimated }),
    });
    await pipeline.copy(source.pages());
    const sourceResult = source.result;
    check?.copyComplete();
    await pipeline.finish(sourceResult.pageCount);
    // The check ran beside the copy; a damaged source is still published (the best copy there is) and said loudly.
    const sourceCheck = check ? await check.record() : null;
    throwIfCancelled(signal, pipeline.failure);
    if (sourceCheck && !sourceCheck.ok) {
      log.warn({ id, source: source.facts.path, check: sourceCheck.kind, errors: sourceCheck.errors }, `the source database failed PRAGMA ${sourceCheck.kind}`);
    }

    // The passes over every chunk below each take tens of ms at 65,536 chunks: the event loop gets a turn
    // between them (an application snapshotting its own database keeps serving).
    await yieldToEventLoop();
    const pageCount = sourceResult.pageCount;
    const map = builder.pageMap(index, pageCount);
    await yieldToEventLoop();
    const table = encodeExtentTable({ id, pageCount, chunkPages, packSizes: map.packs.map((p) => p.size) }, map.extents);
    const manifest = manifestOf({
      id,
      parent: parent?.manifest.id ?? null,
      started,
      tags,
      chunkPages,
      facts: source.facts,
      result: sourceResult,
      check: sourceCheck,
      map,
      table: table.ref,
      // The packs and the extent table: the manifest cannot count itself (docs/FORMAT.md).
      bytesUploaded: pipeline.bytesUploaded + table.bytes.length,
    });
    const publishable = () => checkPublishable({ storage, id, parent: manifest.parent, startedAt, graceMs, signal, log });
    const manifestBytes = await publish(storage, manifest, table.bytes, { signal, log, check: publishable, failure: () => pipeline?.failure });
    log.info({ id, pageCount, bytesUploaded: manifest.stats.bytesUploaded + manifestBytes, ...map.counts, durationMs: manifest.stats.durationMs, sourceCheck: sourceCheck ? { ok: sourceCheck.ok, durationMs: sourceCheck.durationMs } : null }, 'snapshot published');
    await abortStaleUploads(storage, { olderThanMs: snapshotDefaults.staleUploadAgeMs, signal, logger: log });
    const result: SnapshotResult = {
      id,
      parent: manifest.parent,
      url: storage.url,
      pageSize,
      pageCount,
      ...manifest.stats,
      bytesUploaded: manifest.stats.bytesUploaded + manifestBytes,
      patches: map.patches,
      packs: pipeline.packKeys,
      mode: sourceResult.mode,
      databaseDigest: map.databaseDigest,
      sourceCheck,
      newSource,
      tags,
      repacked: index.repacked,
    };
    return result;
  } catch (err) {
    controller.abort(err);
    await pipeline?.abort(err);
    // A caller's abort surfaces as AbortedError whatever part of the pipeline noticed it first.
    if (options.signal?.aborted && !(err instanceof AbortedError)) {
      throw new AbortedError('snapshot: aborted', { cause: options.signal.reason });
    }
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
    const checkGone = check?.close();
    opened?.close();
    await pipeline?.close();
    if (ownsStorage) await storage.close();
    // The check's process had the source open too, so close() may have found its -wal and -shm in use: now
    // that the process is gone, the files our connection created can go (PageSource.removeWalFiles).
    await checkGone;
    if (check) opened?.removeWalFiles();
  }
}

/** The manifest of a snapshot whose copy is done and whose extent table is made. */
function manifestOf(p: {
  id: string;
  parent: string | null;
  started: number;
  tags: string[];
  chunkPages: number;
  facts: SourceFacts;
  result: PageSourceResult;
  check: SourceCheckRecord | null;
  map: PageMap;
  table: ExtentTableRef;
  bytesUploaded: number;
}): Manifest {
  const identity = identityOf(p.facts);
  const { facts, result } = p;
  return {
    formatVersion: FORMAT_VERSION,
    id: p.id,
    parent: p.parent,
    createdAt: new Date(p.started).toISOString(),
    completedAt: new Date().toISOString(),
    tool: { name: 'pagevault', version: toolVersion },
    tags: p.tags,
    pageSize: facts.pageSize,
    pageCount: result.pageCount,
    chunkPages: p.chunkPages,
    databaseDigest: p.map.databaseDigest,
    source: {
      path: identity.path,
      fileName: identity.fileName,
      applicationId: identity.applicationId,
      encoding: identity.encoding,
      journalMode: facts.journalMode,
      sqliteVersion: facts.sqliteVersion,
      headerChangeCounter: facts.headerChangeCounter,
      mode: result.mode,
      hostname: hostname(),
      check: p.check,
    },
    stats: {
      bytesRead: result.pagesDelivered * facts.pageSize,
      bytesUploaded: p.bytesUploaded,
      ...p.map.counts,
      restarts: result.restarts,
      durationMs: Date.now() - p.started,
    },
    packs: p.map.packs,
    extents: p.table,
  };
}

/**
 * What the vault's newest snapshot means for this one: a source other than its source is refused (SourceError
 * SOURCE_MISMATCH) unless `newSource`; it is the parent unless `full` (or its extent table cannot be read).
 */
async function priorSnapshot(
  storage: StorageClient,
  facts: SourceFacts,
  options: Pick<SnapshotOptions, 'full' | 'newSource'>,
  context: { signal: AbortSignal; log: Logger },
): Promise<{ parent: { manifest: Manifest; extents: Iterable<Extent> } | undefined; newSource: boolean }> {
  const { signal, log } = context;
  const previous = await latestManifest(storage, { signal, logger: log });
  if (!previous) return { parent: undefined, newSource: false };
  const identity = identityOf(facts);
  const newSource = identityDifferences(identityInManifest(previous), identity).length > 0;
  if (!options.newSource) refuseAnotherSource(previous, identity, storage.url);
  if (newSource) log.warn({ previous: previous.id, source: identity }, 'a new source for this vault (newSource): its snapshots are what a restore returns from now on');
  return { parent: options.full ? undefined : await parentExtents(storage, previous, context), newSource };
}

/**
 * The parent's extents, for dedup. A parent whose extent table is missing or damaged is not built on: the
 * snapshot is then a full one, which depends on nothing damaged (and says so).
 */
async function parentExtents(
  storage: StorageClient,
  manifest: Manifest,
  options: { signal: AbortSignal; log: Logger },
): Promise<{ manifest: Manifest; extents: Iterable<Extent> } | undefined> {
  try {
    const table = await readExtentTable(storage, manifest, { signal: options.signal });
    return { manifest, extents: table.extents() };
  } catch (err) {
    if (!(err instanceof IntegrityError) || err.code === 'MANIFEST_VERSION') throw err;
    options.log.warn({ parent: manifest.id, err: err.message }, 'the newest snapshot cannot be built on: this snapshot uploads every chunk');
    return undefined;
  }
}

/**
 * Publishes the snapshot: its extent table, then its manifest, each with a conditional create; returns the
 * manifest's size. Once the manifest's request is sent, the snapshot may exist, so an abort no longer stops it:
 * the request runs to its end (its timeouts bound it) and the snapshot is reported as what it is, published.
 */
async function publish(
  storage: StorageClient,
  manifest: Manifest,
  table: Buffer,
  options: { signal: AbortSignal; log: Logger; check: () => Promise<void>; failure: () => Error | undefined },
): Promise<number> {
  throwIfCancelled(options.signal, options.failure());
  await storage.putIfAbsent(extentTableKey(manifest.id), table, { signal: options.signal });
  const encoded = encodeManifest(manifest);
  await options.check();
  throwIfCancelled(options.signal, options.failure());
  await storage.putIfAbsent(manifestKey(manifest.id), encoded);
  if (options.signal.aborted) options.log.warn({ id: manifest.id }, 'the abort came while the manifest was being written: the snapshot is published');
  return encoded.length;
}

/** The tags of a snapshot, checked as a manifest holds them (UsageError BAD_TAG). */
function checkTags(tags: readonly string[]): string[] {
  for (const t of tags) {
    const problem = tagProblem(t);
    if (problem) throw new UsageError('BAD_TAG', problem);
  }
  const distinct = [...new Set(tags)];
  if (distinct.length > MAX_TAGS) throw new UsageError('BAD_TAG', `a snapshot takes at most ${MAX_TAGS} tags, got ${distinct.length}`);
  return distinct;
}

/**
 * What has been written through an application's connection, which PRAGMA data_version does not count: rows
 * changed and the schema's version. Undefined inside a transaction, whose writes are not yet counted.
 */
function applicationWrites(db: Database): string | undefined {
  if (!db.open || db.inTransaction) return undefined;
  return `${db.prepare('SELECT total_changes()').pluck().get() as number}:${db.pragma('schema_version', { simple: true }) as number}`;
}

function throwIfCancelled(signal: AbortSignal, failure: Error | undefined): void {
  if (failure) throw failure;
  if (signal.aborted) throw new AbortedError('snapshot: aborted', { cause: signal.reason });
}
