// snapshot(): one snapshot of a live SQLite database into a vault, end to end.
//
//   page source (backup steps) -> chunker -> codec pool (digest, zero check, zstd; worker threads)
//     -> dedup against the parent manifest -> pack writer (multipart uploads from reusable part buffers)
//     -> manifest, published last with a conditional create
//
// Memory is bounded by buffer pools (chunk buffers, encode buffers, part buffers); when uploads are slow
// the pools run dry, the chunker waits for a buffer, the page source is not asked for its next batch, and
// so sqlite3_backup_step is not called: the upload pipeline throttles the backup. On any failure or abort,
// every multipart upload is aborted and nothing is published.
import type { Database } from 'better-sqlite3';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { codecDefaults, snapshotDefaults, storageDefaults } from '../config/defaults.ts';
import { CodecPool, returnedBuffers } from '../chunk/pool.ts';
import { maxEncodedSize } from '../chunk/codec.ts';
import { AbortedError, UsageError } from '../errors.ts';
import { PageSource } from '../source/index.ts';
import type { ReadCompanion } from '../source/page-source.ts';
import type { StorageClient, StorageEventListener } from '../storage/client.ts';
import { openStorage, type StorageOptions } from '../storage/registry.ts';
import { partSizeFor } from '../storage/parts.ts';
import { BufferPool } from '../util/buffer-pool.ts';
import { componentLogger } from '../util/logger.ts';
import { newSnapshotId } from '../vault/ids.ts';
import { manifestKey } from '../vault/layout.ts';
import { databaseDigest, encodeManifest, fixedChunkCount, chunkRange, zeroDigest, type ManifestToEncode } from '../vault/manifest.ts';
import { FORMAT_VERSION, type Extent, type SourceCheckRecord } from '../vault/model.ts';
import { ensureRepository, latestManifest } from '../vault/repository.ts';
import { Chunker, type Emission } from './chunker.ts';
import { abortStaleUploads } from './cleanup.ts';
import { chooseChunkPages } from './chunk-size.ts';
import { FixedChunks, Locations, UNSET, ZERO } from './locations.ts';
import { PackWriter } from './pack-writer.ts';
import { SourceCheck, sourceCheckChoices, type SourceCheckChoice } from './source-check.ts';
import { identityDifferences, identityInManifest, identityOf, refuseAnotherSource } from './source-identity.ts';
import { toolVersion } from '../version.ts';

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

export interface SnapshotResult {
  id: string;
  parent: string | null;
  /** The vault URL, credentials removed. */
  url: string;
  pageSize: number;
  pageCount: number;
  bytesRead: number;
  /** Bytes written to object storage: the packs and the manifest. */
  bytesUploaded: number;
  chunksNew: number;
  chunksReused: number;
  chunksZero: number;
  patches: number;
  packs: string[];
  restarts: number;
  mode: string;
  databaseDigest: string | null;
  durationMs: number;
  /** The source check's record (also in the manifest), or null when none ran. ok false: the source is damaged. */
  sourceCheck: SourceCheckRecord | null;
  /** The source differed from the vault's previous one and newSource accepted it. */
  newSource: boolean;
}

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError('BAD_OPTION', `${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

export async function snapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const started = Date.now();
  const log = componentLogger(options.logger, 'snapshot');
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
  let codec: CodecPool | undefined;
  let packer: PackWriter | undefined;
  let chunker: Chunker | undefined;
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
    // The newest snapshot says which database this vault backs up; with `full` it is not the parent.
    const previous = await latestManifest(storage, { signal, logger: log });
    const identity = identityOf(source.facts);
    const newSource = previous !== undefined && identityDifferences(identityInManifest(previous), identity).length > 0;
    if (previous && !options.newSource) refuseAnotherSource(previous, identity, storage.url);
    if (newSource) log.warn({ previous: previous!.id, source: identity }, 'a new source for this vault (newSource): its snapshots are what a restore returns from now on');
    let parent: typeof previous = options.full ? undefined : previous;
    const parentId = parent?.id ?? null;
    const id = newSnapshotId(new Date(started));
    const pageSize = source.facts.pageSize;
    const pagesEstimated = source.facts.path ? Math.ceil(statSync(source.facts.path).size / pageSize) : 0;
    const chunkPages = chooseChunkPages({
      pageSize,
      estimatedPages: pagesEstimated,
      ...(parent ? { parent } : {}),
      ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
    });
    const chunkBytes = chunkPages * pageSize;
    log.info({ id, parent: parentId, source: source.facts.fileName, pageSize, chunkPages }, 'snapshot started');

    // Content already in the vault, by digest and raw length: the parent's stored extents, then our uploads.
    const packKeys: string[] = [];
    const packIndexOf = new Map<string, number>();
    const packIndex = (key: string): number => {
      let i = packIndexOf.get(key);
      if (i === undefined) packIndexOf.set(key, (i = packKeys.push(key) - 1));
      return i;
    };
    const chunksEstimated = fixedChunkCount(pagesEstimated, chunkPages);
    const locations = new Locations((parent?.extentCount ?? 0) + chunksEstimated);
    // Where the parent stored each chunk (same page size and chunk size): a chunk found unchanged there is
    // digested but not compressed again.
    const parentAt = new FixedChunks(parent ? fixedChunkCount(parent.pageCount, chunkPages) : 16);
    for (const e of parent?.extents() ?? []) {
      if (e.kind !== 'stored') continue;
      const at = locations.add({ pack: packIndex(parent!.packs[e.pack]!), offset: e.offset, length: e.length, rawLength: e.pageCount * parent!.pageSize, codec: e.codec, digest: e.digest });
      const index = (e.firstPage - 1) / chunkPages;
      if (parent!.pageSize === pageSize && Number.isInteger(index) && parentAt.location(index) === UNSET) parentAt.set(index, at, e.pageCount, false);
    }
    parent = undefined; // its extents are in the tables now

    codec = CodecPool.create({ workers: options.workers ?? codecDefaults.workers, level: options.compressionLevel ?? codecDefaults.level });
    // Enough chunks in flight that encodes queue up into batches of codecDefaults.batchBytes per message.
    const encodesInFlight = codec.workers * codecDefaults.jobsPerWorker * Math.max(1, Math.floor(codecDefaults.batchBytes / chunkBytes)) + 1;
    const chunkPool = new BufferPool(encodesInFlight + 6, chunkBytes);
    const encodePool = new BufferPool(encodesInFlight, maxEncodedSize(chunkBytes));
    const partPool = new BufferPool(Math.max(2, Math.floor(maxBytesInFlight / partSize)), partSize);
    const onEvent: StorageEventListener = (event) => {
      if (event.type === 'part') {
        uploadedParts += event.bytes;
        progress();
      } else if (event.type === 'aborted-upload') {
        log.debug({ key: event.key, supported: event.supported }, 'aborted the multipart upload of a pack');
      } else if (event.type === 'abort-failed') {
        log.warn({ key: event.key, err: event.error.message }, 'could not abort the multipart upload of a pack');
      }
    };
    let uploadedParts = 0;
    let pagesRead = 0;
    const progress = () => options.onProgress?.({ pagesRead, pagesEstimated, bytesUploaded: uploadedParts });
    packer = new PackWriter({
      storage,
      snapshotId: id,
      spanPages: Math.max(chunkPages, Math.floor(snapshotDefaults.packSpan / pageSize / chunkPages) * chunkPages),
      parts: partPool,
      partsInFlight: uploadConcurrency,
      signal,
      onEvent,
    });
    // Where each fixed chunk's content is, and the patches: taken as they are when the copy ends, since a restart
    // supersedes whatever was emitted before it (and so do the counts of new and reused chunks).
    const fixed = new FixedChunks(chunksEstimated);
    const patches: { firstPage: number; pageCount: number; at: number; upload: boolean }[] = [];
    let epoch = 0;
    let failure: Error | undefined;
    const inFlight = new Set<Promise<void>>();
    const fail = (err: unknown) => {
      if (failure) return;
      failure = err instanceof Error ? err : new Error(String(err));
      controller.abort(failure);
    };

    const store = async (e: Emission, encodeBuffer: Buffer, myEpoch: number): Promise<void> => {
      const rawLength = e.pageCount * pageSize;
      let raw: Buffer = e.buffer;
      let out: Buffer = encodeBuffer;
      try {
        // The buffers travel to a worker and back: from here on, use (and release) the returned views.
        const hint = e.kind === 'chunk' ? parentAt.location(e.index) : UNSET;
        const knownDigest = hint >= 0 && locations.rawLength(hint) === rawLength ? locations.digest(hint) : undefined;
        const r = await codec!.encode({ input: raw.subarray(0, rawLength), output: out, ...(knownDigest ? { knownDigest } : {}) });
        raw = r.input;
        out = r.output;
        let at = ZERO;
        let upload = false;
        if (!r.zero) {
          at = r.known ? hint : locations.find(r.digest, rawLength);
          if (at < 0) {
            const placed = await packer!.append(e.firstPage, out.subarray(0, r.length));
            at = locations.add({ pack: packIndex(placed.key), offset: placed.offset, length: r.length, rawLength, codec: r.codec, digest: r.digest });
            upload = true;
          }
        }
        if (myEpoch !== epoch) return; // superseded by a restart: the chunk comes again
        if (e.kind === 'chunk') fixed.set(e.index, at, e.pageCount, upload);
        else patches[e.index] = { firstPage: e.firstPage, pageCount: e.pageCount, at, upload };
      } catch (err) {
        const back = returnedBuffers(err);
        if (back) {
          raw = back.input;
          out = back.output;
        }
        throw err;
      } finally {
        chunkPool.release(raw);
        encodePool.release(out);
      }
    };

    chunker = new Chunker({
      pageSize,
      chunkPages,
      pool: chunkPool,
      signal,
      emit: async (e) => {
        const out = await encodePool.acquire(signal);
        const job = store(e, out, epoch).catch(fail);
        inFlight.add(job);
        void job.then(() => inFlight.delete(job));
      },
    });

    for await (const batch of source.pages()) {
      if (failure) throw failure;
      check?.batch(batch.restarted);
      if (batch.restarted) {
        chunker.restart();
        epoch++;
        fixed.clear();
        patches.length = 0;
        pagesRead = 0;
        log.info({ id }, 'the backup restarted; chunks are emitted again (unchanged ones are not uploaded twice)');
      }
      await chunker.addPages(batch.pageNumbers, batch.data, batch.count);
      pagesRead += batch.count;
      progress();
    }
    const sourceResult = source.result;
    check?.copyComplete();
    await chunker.finish(sourceResult.pageCount);
    while (inFlight.size > 0) await Promise.all([...inFlight]);
    if (failure) throw failure;
    await packer.finish();
    // The check ran beside the copy; a damaged source is still published (the best copy there is) and said loudly.
    const sourceCheck = check ? await check.record() : null;
    throwIfCancelled(signal, failure);
    if (sourceCheck && !sourceCheck.ok) {
      log.warn({ id, source: source.facts.path, check: sourceCheck.kind, errors: sourceCheck.errors }, `the source database failed PRAGMA ${sourceCheck.kind}`);
    }

    // The manifest: fixed chunks in page order, then patches in the order they were written. Its packs are the
    // ones its extents use, in the order of first use. The extents are generated from the tables as the
    // manifest is encoded, one at a time.
    const pageCount = sourceResult.pageCount;
    const entries = function* (): Generator<{ firstPage: number; pageCount: number; at: number; upload: boolean }> {
      for (let i = 0; i < fixed.end; i++) {
        const at = fixed.location(i);
        if (at !== UNSET) yield { firstPage: i * chunkPages + 1, pageCount: fixed.pageCount(i), at, upload: fixed.uploaded(i) };
      }
      for (const p of patches) if (p) yield p;
    };
    const packs: string[] = [];
    const manifestPack = new Map<number, number>();
    const stats = { chunksNew: 0, chunksReused: 0, chunksZero: 0 };
    for (const { at, upload } of entries()) {
      if (at === ZERO) stats.chunksZero++;
      else {
        if (upload) stats.chunksNew++;
        else stats.chunksReused++;
        const pack = locations.pack(at);
        if (!manifestPack.has(pack)) manifestPack.set(pack, packs.push(packKeys[pack]!) - 1);
      }
    }
    const extents: Iterable<Extent> = {
      *[Symbol.iterator]() {
        for (const { firstPage, pageCount: count, at } of entries()) {
          if (at === ZERO) yield { kind: 'zero', firstPage, pageCount: count };
          else {
            const l = locations.get(at);
            yield { kind: 'stored', firstPage, pageCount: count, pack: manifestPack.get(l.pack)!, offset: l.offset, length: l.length, codec: l.codec, digest: l.digest };
          }
        }
      },
    };
    // The passes over every chunk below each take tens of ms at 65,536 chunks: the event loop gets a turn
    // between them (an application snapshotting its own database keeps serving).
    await yieldToEventLoop();
    let digest: string | null = null;
    if (patches.length === 0) {
      digest = databaseDigest(
        (function* () {
          for (let i = 0; i < fixedChunkCount(pageCount, chunkPages); i++) {
            const at = fixed.location(i);
            yield at >= 0 ? locations.digest(at) : zeroDigest(chunkRange(i, pageCount, chunkPages).pageCount * pageSize);
          }
        })(),
      );
    }
    const durationMs = Date.now() - started;
    const manifest: ManifestToEncode = {
      formatVersion: FORMAT_VERSION,
      id,
      parent: parentId,
      createdAt: new Date(started).toISOString(),
      completedAt: new Date().toISOString(),
      tool: { name: 'pagevault', version: toolVersion },
      pageSize,
      pageCount,
      chunkPages,
      databaseDigest: digest,
      source: {
        path: identity.path,
        fileName: identity.fileName,
        applicationId: identity.applicationId,
        encoding: identity.encoding,
        journalMode: source.facts.journalMode,
        sqliteVersion: source.facts.sqliteVersion,
        headerChangeCounter: source.facts.headerChangeCounter,
        mode: sourceResult.mode,
        hostname: hostname(),
        check: sourceCheck,
      },
      stats: {
        bytesRead: sourceResult.pagesDelivered * pageSize,
        bytesUploaded: packer.bytesUploaded,
        chunksNew: stats.chunksNew,
        chunksReused: stats.chunksReused,
        chunksZero: stats.chunksZero,
        restarts: sourceResult.restarts,
        durationMs,
      },
      packs,
      extents,
    };
    await yieldToEventLoop();
    const encoded = encodeManifest(manifest);
    const bytesUploaded = manifest.stats.bytesUploaded + encoded.length;
    throwIfCancelled(signal, failure);
    await storage.putIfAbsent(manifestKey(id), encoded, { signal });
    log.info({ id, pageCount, bytesUploaded, ...stats, durationMs, sourceCheck: sourceCheck ? { ok: sourceCheck.ok, durationMs: sourceCheck.durationMs } : null }, 'snapshot published');
    await abortStaleUploads(storage, { olderThanMs: snapshotDefaults.staleUploadAgeMs, signal, logger: log });
    return {
      id,
      parent: manifest.parent,
      url: storage.url,
      pageSize,
      pageCount,
      bytesRead: manifest.stats.bytesRead,
      bytesUploaded,
      ...stats,
      patches: patches.length,
      packs: packer.keys,
      restarts: sourceResult.restarts,
      mode: sourceResult.mode,
      databaseDigest: digest,
      durationMs,
      sourceCheck,
      newSource,
    };
  } catch (err) {
    controller.abort(err);
    await packer?.abort(err);
    // A caller's abort surfaces as AbortedError whatever part of the pipeline noticed it first.
    if (options.signal?.aborted && !(err instanceof AbortedError)) {
      throw new AbortedError('snapshot: aborted', { cause: options.signal.reason });
    }
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
    chunker?.dispose();
    const checkGone = check?.close();
    opened?.close();
    await codec?.close();
    if (ownsStorage) await storage.close();
    // The check's process had the source open too, so close() may have found its -wal and -shm in use: now
    // that the process is gone, the files our connection created can go (PageSource.removeWalFiles).
    await checkGone;
    if (check) opened?.removeWalFiles();
  }
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
