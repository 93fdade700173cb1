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
import { pino, type Logger } from 'pino';
import { codecDefaults, snapshotDefaults, storageDefaults } from '../config/defaults.ts';
import { CodecPool, returnedBuffers } from '../chunk/pool.ts';
import { maxEncodedSize } from '../chunk/codec.ts';
import { AbortedError, PagevaultError, UsageError } from '../errors.ts';
import { PageSource } from '../source/index.ts';
import type { StorageClient, StorageEventListener } from '../storage/client.ts';
import { openStorage, type StorageOptions } from '../storage/registry.ts';
import { partSizeFor } from '../storage/upload.ts';
import { BufferPool } from '../util/buffer-pool.ts';
import { newSnapshotId } from '../vault/ids.ts';
import { manifestKey } from '../vault/layout.ts';
import { databaseDigest, encodeManifest, fixedChunkCount, chunkRange, zeroDigest } from '../vault/manifest.ts';
import { FORMAT_VERSION, type Extent, type Manifest } from '../vault/model.ts';
import { ensureRepository, latestManifest } from '../vault/repository.ts';
import { Chunker, type Emission } from './chunker.ts';
import { abortStaleUploads } from './cleanup.ts';
import { chooseChunkPages } from './chunk-size.ts';
import { PackWriter } from './pack-writer.ts';
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
}

interface Location {
  pack: string;
  offset: number;
  length: number;
  codec: 'zstd' | 'raw';
  digest: Uint8Array;
}

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError('BAD_OPTION', `${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

export async function snapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const started = Date.now();
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'snapshot' });
  const uploadConcurrency = positiveInt('uploadConcurrency', options.uploadConcurrency ?? snapshotDefaults.uploadConcurrency);
  const partSize = partSizeFor(undefined, options.partSize ?? storageDefaults.partSize);
  const maxBytesInFlight = positiveInt('maxBytesInFlight', options.maxBytesInFlight ?? snapshotDefaults.maxBytesInFlight);
  const maxBytesPerSecond = options.maxBytesPerSecond ?? 0;
  if (!Number.isFinite(maxBytesPerSecond) || maxBytesPerSecond < 0) {
    throw new UsageError('BAD_OPTION', `maxBytesPerSecond must be >= 0, got ${maxBytesPerSecond}`);
  }
  if (!options.storage && !options.url) throw new UsageError('BAD_OPTION', 'snapshot needs a vault url (or a storage client)');

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
    });
  const ownsStorage = !options.storage;
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  let codec: CodecPool | undefined;
  let packer: PackWriter | undefined;
  let chunker: Chunker | undefined;
  let opened: PageSource | undefined;
  try {
    const source = await PageSource.open(options.source, { signal, logger: log });
    opened = source;
    await ensureRepository(storage, { signal });
    const parent = options.full ? undefined : await latestManifest(storage, { signal, logger: log });
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
    log.info({ id, parent: parent?.id ?? null, source: source.facts.fileName, pageSize, chunkPages }, 'snapshot started');

    // Content already in the vault, by digest and length: the parent's stored extents, then our own uploads.
    const known = new Map<string, Location>();
    const keyOf = (digest: Uint8Array, length: number) => `${Buffer.from(digest).toString('hex')}:${length}`;
    // The digest the parent stored at each first page: a chunk found unchanged there is not compressed again.
    const hints = new Map<number, { digest: Uint8Array; pageCount: number }>();
    for (const e of parent?.extents ?? []) {
      if (e.kind !== 'stored') continue;
      if (parent!.pageSize === pageSize && !hints.has(e.firstPage)) hints.set(e.firstPage, { digest: e.digest, pageCount: e.pageCount });
      known.set(keyOf(e.digest, e.pageCount * parent!.pageSize), {
        pack: parent!.packs[e.pack]!,
        offset: e.offset,
        length: e.length,
        codec: e.codec,
        digest: e.digest,
      });
    }

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
    const fixed = new Map<number, Extent>();
    const patches: Extent[] = [];
    let epoch = 0;
    let failure: Error | undefined;
    const inFlight = new Set<Promise<void>>();
    const fail = (err: unknown) => {
      if (failure) return;
      failure = err instanceof Error ? err : new Error(String(err));
      controller.abort(failure);
    };

    const packOf = new Map<Extent, string>();
    // Extents whose bytes this snapshot uploaded. The counts are taken from the final extents, since a
    // restart supersedes whatever was emitted before it.
    const uploaded = new Set<Extent>();
    const store = async (e: Emission, encodeBuffer: Buffer, myEpoch: number): Promise<void> => {
      const rawLength = e.pageCount * pageSize;
      let raw: Buffer = e.buffer;
      let out: Buffer = encodeBuffer;
      try {
        // The buffers travel to a worker and back: from here on, use (and release) the returned views.
        const hint = hints.get(e.firstPage);
        const knownDigest = hint?.pageCount === e.pageCount ? hint.digest : undefined;
        const r = await codec!.encode({ input: raw.subarray(0, rawLength), output: out, ...(knownDigest ? { knownDigest } : {}) });
        raw = r.input;
        out = r.output;
        let extent: Extent;
        if (r.zero) {
          extent = { kind: 'zero', firstPage: e.firstPage, pageCount: e.pageCount };
        } else {
          const key = keyOf(r.digest, rawLength);
          let at = known.get(key);
          const upload = at === undefined;
          if (!at) {
            // A hint is taken only from an extent of this length, which `known` holds under the same key.
            if (r.known) throw new PagevaultError('INTERNAL', `chunk at page ${e.firstPage} matched its parent's digest, which is not among the known extents`);
            const placed = await packer!.append(e.firstPage, out.subarray(0, r.length));
            at = { pack: placed.key, offset: placed.offset, length: r.length, codec: r.codec, digest: Buffer.from(r.digest) };
            known.set(key, at);
          }
          extent = { kind: 'stored', firstPage: e.firstPage, pageCount: e.pageCount, pack: -1, offset: at.offset, length: at.length, codec: at.codec, digest: at.digest };
          packOf.set(extent, at.pack);
          if (upload) uploaded.add(extent);
        }
        if (myEpoch !== epoch) return; // superseded by a restart: the chunk comes again
        if (e.kind === 'chunk') fixed.set(e.index, extent);
        else patches[e.index] = extent;
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
    await chunker.finish(sourceResult.pageCount);
    while (inFlight.size > 0) await Promise.all([...inFlight]);
    if (failure) throw failure;
    await packer.finish();

    // The manifest: fixed chunks in page order, then patches in the order they were written.
    const pageCount = sourceResult.pageCount;
    const extents: Extent[] = [];
    for (const index of [...fixed.keys()].sort((a, b) => a - b)) extents.push(fixed.get(index)!);
    for (const p of patches) if (p) extents.push(p);
    const stats = { chunksNew: 0, chunksReused: 0, chunksZero: 0 };
    for (const e of extents) {
      if (e.kind === 'zero') stats.chunksZero++;
      else if (uploaded.has(e)) stats.chunksNew++;
      else stats.chunksReused++;
    }
    const packs: string[] = [];
    const packIndex = new Map<string, number>();
    for (const e of extents) {
      if (e.kind !== 'stored') continue;
      const key = packOf.get(e)!;
      let index = packIndex.get(key);
      if (index === undefined) {
        index = packs.length;
        packs.push(key);
        packIndex.set(key, index);
      }
      e.pack = index;
    }
    let digest: string | null = null;
    if (patches.length === 0) {
      const digests: Uint8Array[] = [];
      for (let i = 0; i < fixedChunkCount(pageCount, chunkPages); i++) {
        const e = fixed.get(i);
        digests.push(e?.kind === 'stored' ? e.digest : zeroDigest(chunkRange(i, pageCount, chunkPages).pageCount * pageSize));
      }
      digest = databaseDigest(digests);
    }
    const durationMs = Date.now() - started;
    const manifest: Manifest = {
      formatVersion: FORMAT_VERSION,
      id,
      parent: parent?.id ?? null,
      createdAt: new Date(started).toISOString(),
      completedAt: new Date().toISOString(),
      tool: { name: 'pagevault', version: toolVersion },
      pageSize,
      pageCount,
      chunkPages,
      databaseDigest: digest,
      source: {
        fileName: source.facts.fileName ?? null,
        journalMode: source.facts.journalMode,
        sqliteVersion: source.facts.sqliteVersion,
        headerChangeCounter: source.facts.headerChangeCounter,
        mode: sourceResult.mode,
        hostname: hostname(),
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
    let encoded = encodeManifest(manifest);
    manifest.stats.bytesUploaded += encoded.length;
    encoded = encodeManifest(manifest);
    throwIfCancelled(signal, failure);
    await storage.putIfAbsent(manifestKey(id), encoded, { signal });
    log.info({ id, pageCount, bytesUploaded: manifest.stats.bytesUploaded, ...stats, durationMs }, 'snapshot published');
    await abortStaleUploads(storage, { olderThanMs: snapshotDefaults.staleUploadAgeMs, signal, logger: log });
    return {
      id,
      parent: manifest.parent,
      url: storage.url,
      pageSize,
      pageCount,
      bytesRead: manifest.stats.bytesRead,
      bytesUploaded: manifest.stats.bytesUploaded,
      ...stats,
      patches: patches.length,
      packs: packer.keys,
      restarts: sourceResult.restarts,
      mode: sourceResult.mode,
      databaseDigest: digest,
      durationMs,
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
    opened?.close();
    await codec?.close();
    if (ownsStorage) await storage.close();
  }
}

function throwIfCancelled(signal: AbortSignal, failure: Error | undefined): void {
  if (failure) throw failure;
  if (signal.aborted) throw new AbortedError('snapshot: aborted', { cause: signal.reason });
}
