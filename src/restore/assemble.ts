// Assembling a restored database in its temp file from the restore plan: ranged reads of the packs into
// pooled buffers, decoded and verified extent by extent in the codec workers (each against its digest), then
// positional writes; the parallel reads first, then the ordered steps (patches) one by one.
import type { FileHandle } from 'node:fs/promises';
import { codecDefaults } from '../config/defaults.ts';
import { CodecPool, failedItem, returnedBuffers } from '../chunk/pool.ts';
import { IntegrityError, StorageError, throwIfAborted } from '../errors.ts';
import type { StorageClient } from '../storage/client.ts';
import { BufferPool } from '../util/buffer-pool.ts';
import { runAll } from '../util/run-all.ts';
import type { Manifest } from '../vault/model.ts';
import type { PlannedRead, RestorePlan } from './plan.ts';

export interface AssembleOptions {
  storage: StorageClient;
  manifest: Manifest;
  plan: RestorePlan;
  /** The temp file, already of the database's size (holes read as zeros). */
  fh: FileHandle;
  /** Ranged reads at once, and codec workers. */
  concurrency: number;
  workers?: number;
  signal: AbortSignal | undefined;
  onProgress?: (p: { bytesDownloaded: number; bytesTotal: number }) => void;
}

/** Downloads, verifies and writes every extent of the plan; returns the bytes downloaded. */
export async function assemble(o: AssembleOptions): Promise<number> {
  const { storage, manifest, plan, fh, concurrency, signal } = o;
  const id = manifest.id;
  const codec = CodecPool.create({ workers: o.workers ?? codecDefaults.workers });
  const reads = new BufferPool(concurrency, Math.max(plan.largestRead, 1));
  const outputs = new BufferPool(concurrency, Math.max(plan.largestRaw, 1));
  let downloaded = 0;
  const fetchAndWrite = async (read: PlannedRead): Promise<void> => {
    let buffers = { encoded: await reads.acquire(signal), output: await outputs.acquire(signal) };
    try {
      await readPack(storage, id, read, buffers.encoded, signal);
      downloaded += read.length;
      o.onProgress?.({ bytesDownloaded: downloaded, bytesTotal: plan.bytes });
      buffers = await decodeRead(codec, manifest, read, buffers);
      await writeRead(fh, read, buffers.output, manifest.pageSize);
    } finally {
      outputs.release(buffers.output);
      reads.release(buffers.encoded);
    }
  };
  try {
    await runAll(plan.parallel, concurrency, fetchAndWrite, { ...(signal ? { signal } : {}), what: 'restore' });
    for (const step of plan.ordered) {
      throwIfAborted(signal, 'restore');
      if (step.kind === 'read') await fetchAndWrite(step.read);
      else {
        const zeros = Buffer.alloc(step.extent.pageCount * manifest.pageSize);
        await fh.write(zeros, 0, zeros.length, (step.extent.firstPage - 1) * manifest.pageSize);
      }
    }
  } finally {
    await codec.close();
  }
  return downloaded;
}

interface ReadBuffers {
  encoded: Buffer;
  output: Buffer;
}

/**
 * Decodes and verifies every extent of `read` (in `b.encoded`) into `b.output`, in a codec worker. The buffers
 * travel to the worker and back: the ones returned (also on failure) are the ones to use and release.
 */
async function decodeRead(codec: CodecPool, manifest: Manifest, read: PlannedRead, b: ReadBuffers): Promise<ReadBuffers> {
  const items = read.extents.map((p) => ({
    at: p.at,
    length: p.extent.length,
    codec: p.extent.codec,
    digest: p.extent.digest,
    outAt: p.outAt,
    rawLength: p.extent.pageCount * manifest.pageSize,
  }));
  try {
    const r = await codec.decodeMany({ encoded: b.encoded.subarray(0, read.length), output: b.output.subarray(0, read.rawLength), items });
    return { encoded: Buffer.from(r.encoded.buffer as ArrayBuffer), output: Buffer.from(r.output.buffer as ArrayBuffer) };
  } catch (err) {
    const back = returnedBuffers(err);
    if (back) {
      b.encoded = Buffer.from(back.input.buffer as ArrayBuffer);
      b.output = Buffer.from(back.output.buffer as ArrayBuffer);
    }
    const e = read.extents[failedItem(err) ?? 0]!.extent;
    if (err instanceof IntegrityError) {
      throw new IntegrityError(
        err.code,
        `snapshot ${manifest.id}: pack ${read.pack} bytes ${e.offset}+${e.length} (pages ${e.firstPage}-${e.firstPage + e.pageCount - 1}): ${err.message}`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** Writes the decoded extents of `read`: one write per run contiguous both in `output` and in the database. */
async function writeRead(fh: FileHandle, read: PlannedRead, output: Buffer, pageSize: number): Promise<void> {
  for (let i = 0; i < read.extents.length; ) {
    const first = read.extents[i]!;
    let j = i;
    let bytes = first.extent.pageCount * pageSize;
    while (j + 1 < read.extents.length) {
      const prev = read.extents[j]!;
      const next = read.extents[j + 1]!;
      const contiguous = next.outAt === prev.outAt + prev.extent.pageCount * pageSize && next.extent.firstPage === prev.extent.firstPage + prev.extent.pageCount;
      if (!contiguous) break;
      bytes += next.extent.pageCount * pageSize;
      j++;
    }
    await fh.write(output, first.outAt, bytes, (first.extent.firstPage - 1) * pageSize);
    i = j + 1;
  }
}

/** A pack that is gone, or shorter than its manifest says: the vault lost data (5), not a storage failure (4). */
export class PackMissingError extends IntegrityError {
  constructor(
    message: string,
    readonly key: string,
    options: { cause: unknown },
  ) {
    super('PACK_MISSING', message, options);
    this.name = 'IntegrityError';
  }
}

async function readPack(storage: StorageClient, id: string, read: PlannedRead, into: Buffer, signal: AbortSignal | undefined): Promise<void> {
  try {
    await storage.readRange(read.pack, read.offset, read.length, { into, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (err instanceof StorageError && (err.code === 'NOT_FOUND' || err.code === 'INVALID_RANGE')) {
      const what = err.code === 'NOT_FOUND' ? 'is missing' : `ends before byte ${read.offset + read.length} that the snapshot needs (truncated)`;
      throw new PackMissingError(`snapshot ${id}: pack ${storage.url}/${read.pack} ${what}`, read.pack, { cause: err });
    }
    throw err;
  }
}

