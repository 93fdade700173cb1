// verify(): is every snapshot in the vault whole? Three levels, each including the one before:
//
//   structure   the config, every manifest (its digest, its fields) and its extent table (bound to the manifest
//               by length and SHA-256) decode; every pack a manifest lists exists, with the size the manifest
//               recorded, and at least the bytes its extents need. One listing of packs/, no pack is read.
//   readData    every distinct stored extent (pack, offset, length, digest) is downloaded once, however many
//               snapshots share it, decoded in the codec workers and checked against its digest; a pack is read
//               in ranges of its live bytes, each byte once.
//   subset      readData for a random p% of the packs (at least one), like restic's check --read-data-subset.
//
// Damage is the result, never an exception: each damaged object with the code of what is wrong and every
// snapshot it breaks. Memory: the extent tables are read one at a time; what is kept is per pack (its size, its
// need, the snapshots listing it) and, with readData, per distinct stored extent of the packs to read (about
// 150 bytes each: 16,384 for a 1 GiB database, plus each incremental's new ones), not per snapshot.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { codecDefaults, snapshotDefaults, storageDefaults } from '../config/defaults.ts';
import { maxEncodedSize } from '../chunk/codec.ts';
import { CodecPool, failedItem, returnedBuffers } from '../chunk/pool.ts';
import { AbortedError, IntegrityError, StorageError, UsageError, throwIfAborted } from '../errors.ts';
import { listObjects, type StorageClient } from '../storage/client.ts';
import { openStorage, type StorageOptions } from '../storage/registry.ts';
import { CountStore } from '../storage/wrappers/count.ts';
import { BufferPool } from '../util/buffer-pool.ts';
import { componentLogger } from '../util/logger.ts';
import { runAll } from '../util/run-all.ts';
import { parseSnapshotId } from '../vault/ids.ts';
import { configKey, extentTableKey, manifestKey, packsPrefix, snapshotIdOfKey } from '../vault/layout.ts';
import type { ExtentCodec } from '../vault/model.ts';
import { openExtentTable } from '../vault/extent-table.ts';
import { extentTableBytes, listSnapshotIds, readExtentTable, readManifest, readRepository } from '../vault/repository.ts';

export interface VerifyOptions {
  url?: string;
  storage?: StorageClient;
  storageOptions?: Omit<StorageOptions, 'onEvent'>;
  /** Download every stored extent and check its digest. */
  readData?: boolean;
  /** Percent (0 < p <= 100) of the packs whose data is read, chosen at random; implies readData for those. */
  readDataSubset?: number;
  /** Verify this snapshot only (and the packs it uses). */
  snapshot?: string;
  /** Ranged reads at once (default storageDefaults.concurrency). */
  concurrency?: number;
  signal?: AbortSignal;
  logger?: Logger;
  onProgress?: (p: { packsRead: number; packsToRead: number; bytesRead: number }) => void;
}

export interface Damage {
  /** The key of the damaged or missing object. */
  object: string;
  /** CONFIG_*, MANIFEST_DAMAGED, MANIFEST_VERSION, EXTENTS_MISSING, EXTENTS_DAMAGED, PACK_MISSING, PACK_TRUNCATED, PACK_SIZE, CHUNK_DAMAGED, CHUNK_DIGEST. */
  code: string;
  problem: string;
  /** Every snapshot it breaks (those that need it), oldest first. */
  snapshots: string[];
}

export interface VerifyResult {
  url: string;
  ok: boolean;
  /** Snapshots checked. */
  snapshots: number;
  /** Packs the checked snapshots reference. */
  packs: number;
  packsRead: number;
  /** Distinct stored extents decoded and checked. */
  extentsChecked: number;
  bytesRead: number;
  damaged: Damage[];
  /** The snapshots that do not restore, oldest first. */
  brokenSnapshots: string[];
  requests: { total: number; byOp: Record<string, number> };
  durationMs: number;
}

interface PackState {
  /** Size the first manifest listing it recorded. */
  size: number;
  need: number;
  snapshots: Set<string>;
  /** By offset; more than one only when manifests disagree about the bytes there (one of them is damaged). */
  extents?: Map<number, ExtentToCheck[]>;
}

interface ExtentToCheck {
  offset: number;
  length: number;
  rawLength: number;
  codec: ExtentCodec;
  digest: Uint8Array;
}

/**
 * Bytes of one ranged read, at most (a single extent may be up to the largest chunk's encoded size), and the
 * most they decode to; gaps of dead bytes up to GAP are read through rather than split at.
 */
const READ_BYTES = 4 * 1024 * 1024;
const RAW_BYTES = 2 * READ_BYTES;
const GAP = 256 * 1024;

export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  const started = performance.now();
  const subset = options.readDataSubset;
  if (subset !== undefined && !(subset > 0 && subset <= 100)) throw new UsageError('BAD_OPTION', `readDataSubset must be a percentage above 0 and at most 100, got ${subset}`);
  if (options.snapshot !== undefined) parseSnapshotId(options.snapshot);
  if (!options.storage && !options.url) throw new UsageError('BAD_OPTION', 'verify needs a vault url (or a storage client)');
  const log = componentLogger(options.logger, 'verify');
  const inner = options.storage ?? openStorage(options.url!, { ...options.storageOptions, logger: log });
  const storage = new CountStore(inner);
  const signal = options.signal;
  const call = signal ? { signal } : {};
  const damage = new Map<string, Damage>();
  const hurt = (object: string, code: string, problem: string, snapshots: Iterable<string>) => {
    const d = damage.get(object) ?? { object, code, problem, snapshots: [] };
    damage.set(object, d);
    for (const s of snapshots) if (!d.snapshots.includes(s)) d.snapshots.push(s);
  };
  try {
    const ids = options.snapshot ? [options.snapshot] : await listSnapshotIds(storage, call);
    try {
      await readRepository(storage, call);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      hurt(configKey, err.code, err.message, ids);
    }
    const listed = new Map<string, number>();
    for await (const o of listObjects(storage, packsPrefix, call)) if (snapshotIdOfKey(o.key)) listed.set(o.key, o.size);

    const readData = options.readData === true || subset !== undefined;
    const packs = new Map<string, PackState>();
    const walked = new Set<string>();
    await runAll(
      ids,
      storageDefaults.concurrency,
      async (id) => {
        // The manifest and the extent table at once: a round trip per snapshot, not two.
        const tableBytes = extentTableBytes(storage, { id }, call);
        tableBytes.catch(() => undefined); // awaited below, unless the manifest fails first
        let manifest;
        try {
          manifest = await readManifest(storage, id, call);
        } catch (err) {
          if (err instanceof StorageError && err.code === 'NOT_FOUND' && !options.snapshot) return; // forgotten since listed
          if (!(err instanceof IntegrityError)) throw err;
          return hurt(manifestKey(id), err.code, err.message, [id]);
        }
        // Snapshots of a database that did not change have byte-identical extent tables over the same packs: each
        // such table is checked to be the one its manifest names (length, SHA-256), and decoded and walked once.
        const same = `${manifest.extents.sha256} ${manifest.extents.length} ${manifest.pageSize} ${manifest.pageCount} ${manifest.chunkPages} ${manifest.packs.map((p) => `${p.key}:${p.size}`).join(' ')}`;
        let table;
        try {
          const bytes = await tableBytes;
          const known = walked.has(same) && bytes.length === manifest.extents.length && createHash('sha256').update(bytes).digest('hex') === manifest.extents.sha256;
          table = known ? undefined : openExtentTable(bytes, manifest);
        } catch (err) {
          if (!(err instanceof IntegrityError)) throw err;
          return hurt(extentTableKey(id), err.code, err.message, [id]);
        }
        const states = manifest.packs.map((p) => {
          let s = packs.get(p.key);
          if (!s) packs.set(p.key, (s = { size: p.size, need: 0, snapshots: new Set(), ...(readData ? { extents: new Map() } : {}) }));
          s.snapshots.add(id);
          return s;
        });
        if (table) {
          walked.add(same);
          for (const e of table.extents()) {
            if (e.kind !== 'stored') continue;
            const s = states[e.pack]!;
            s.need = Math.max(s.need, e.offset + e.length);
            if (!s.extents) continue;
            const at = s.extents.get(e.offset);
            if (at?.some((x) => x.length === e.length && Buffer.compare(x.digest, e.digest) === 0)) continue;
            const record = { offset: e.offset, length: e.length, rawLength: e.pageCount * manifest.pageSize, codec: e.codec, digest: new Uint8Array(e.digest) };
            if (at) at.push(record);
            else s.extents.set(e.offset, [record]);
          }
        }
        // Sizes recorded by different manifests must agree: a pack is one object, written once.
        manifest.packs.forEach((p, i) => {
          if (p.size !== states[i]!.size) hurt(p.key, 'PACK_SIZE', `manifests disagree on the size of pack ${p.key} (${states[i]!.size} and ${p.size} bytes)`, [id]);
        });
      },
      { ...call, what: 'verify: read manifests' },
    );

    for (const [key, s] of packs) {
      const size = listed.get(key);
      if (size === undefined) hurt(key, 'PACK_MISSING', `pack ${storage.url}/${key} is missing`, s.snapshots);
      else if (size < s.need) hurt(key, 'PACK_TRUNCATED', `pack ${storage.url}/${key} is ${size} bytes, but its extents need ${s.need}`, s.snapshots);
      else if (size !== s.size) hurt(key, 'PACK_SIZE', `pack ${storage.url}/${key} is ${size} bytes, but its manifests recorded ${s.size}: it was replaced`, s.snapshots);
    }

    let packsRead = 0;
    let bytesRead = 0;
    let extentsChecked = 0;
    let toRead = [...packs].filter(([key]) => !damage.has(key));
    if (subset !== undefined) toRead = sample(toRead, Math.max(1, Math.ceil((toRead.length * subset) / 100)));
    if (readData && toRead.length > 0) {
      const concurrency = options.concurrency ?? storageDefaults.concurrency;
      const codec = CodecPool.create({ workers: codecDefaults.workers });
      const reads = new BufferPool(concurrency, Math.max(READ_BYTES, maxEncodedSize(snapshotDefaults.maxChunkSize)));
      const outputs = new BufferPool(concurrency, Math.max(RAW_BYTES, snapshotDefaults.maxChunkSize));
      const total = toRead.length;
      let done = 0;
      try {
        await runAll(
          toRead.flatMap(([key, s]) => batches(key, [...s.extents!.values()].flat())),
          concurrency,
          async (batch) => {
            throwIfAborted(signal, 'verify');
            let encoded = await reads.acquire(signal);
            let output = await outputs.acquire(signal);
            try {
              try {
                await storage.readRange(batch.key, batch.offset, batch.length, { into: encoded, ...call });
              } catch (err) {
                if (err instanceof StorageError && (err.code === 'NOT_FOUND' || err.code === 'INVALID_RANGE')) {
                  return hurt(batch.key, 'PACK_TRUNCATED', `pack ${storage.url}/${batch.key} cannot be read at bytes ${batch.offset}+${batch.length}: ${err.message}`, packs.get(batch.key)!.snapshots);
                }
                throw err;
              }
              bytesRead += batch.length;
              if (batch.last) options.onProgress?.({ packsRead: ++done, packsToRead: total, bytesRead });
              // Decode all of it; a failing extent is recorded and the rest decoded on.
              let from = 0;
              while (from < batch.extents.length) {
                const items = [];
                let outAt = 0;
                for (const e of batch.extents.slice(from)) {
                  items.push({ at: e.offset - batch.offset, length: e.length, codec: e.codec, digest: e.digest, outAt, rawLength: e.rawLength });
                  outAt += e.rawLength;
                }
                try {
                  const r = await codec.decodeMany({ encoded: encoded.subarray(0, batch.length), output: output.subarray(0, outAt), items });
                  encoded = Buffer.from(r.encoded.buffer as ArrayBuffer);
                  output = Buffer.from(r.output.buffer as ArrayBuffer);
                  extentsChecked += items.length;
                  break;
                } catch (err) {
                  const back = returnedBuffers(err);
                  if (back) {
                    encoded = Buffer.from(back.input.buffer as ArrayBuffer);
                    output = Buffer.from(back.output.buffer as ArrayBuffer);
                  }
                  const i = failedItem(err);
                  if (!(err instanceof IntegrityError) || i === undefined) throw err;
                  const e = batch.extents[from + i]!;
                  extentsChecked += i + 1;
                  hurt(batch.key, err.code, `pack ${storage.url}/${batch.key} bytes ${e.offset}+${e.length}: ${err.message}`, await snapshotsUsing(storage, ids, batch.key, e, call));
                  from += i + 1;
                }
              }
            } finally {
              reads.release(encoded);
              outputs.release(output);
            }
          },
          { ...call, what: 'verify: read data' },
        );
      } finally {
        await codec.close();
      }
      packsRead = toRead.length;
    }

    const damaged = [...damage.values()].map((d) => ({ ...d, snapshots: d.snapshots.sort() })).sort((a, b) => (a.object < b.object ? -1 : 1));
    const brokenSnapshots = [...new Set(damaged.flatMap((d) => d.snapshots))].sort();
    const result: VerifyResult = {
      url: storage.url,
      ok: damaged.length === 0,
      snapshots: ids.length,
      packs: packs.size,
      packsRead,
      extentsChecked,
      bytesRead,
      damaged,
      brokenSnapshots,
      requests: storage.requests,
      durationMs: Math.round(performance.now() - started),
    };
    log.info({ ok: result.ok, snapshots: result.snapshots, packs: result.packs, packsRead, bytesRead, damaged: damaged.length }, 'verify done');
    return result;
  } catch (err) {
    if (signal?.aborted && !(err instanceof AbortedError)) throw new AbortedError('verify: aborted', { cause: signal.reason });
    throw err;
  } finally {
    if (!options.storage) await inner.close();
  }
}

interface Batch {
  key: string;
  offset: number;
  length: number;
  extents: ExtentToCheck[];
  /** The pack's last read. */
  last?: boolean;
}

/** The ranged reads of a pack: its extents in offset order, in reads of at most READ_BYTES, each byte read once. */
function batches(key: string, extents: ExtentToCheck[]): Batch[] {
  extents.sort((a, b) => a.offset - b.offset || a.length - b.length);
  const out: Batch[] = [];
  let cur: Batch | undefined;
  for (const e of extents) {
    const end = e.offset + e.length;
    if (cur && e.offset <= cur.offset + cur.length + GAP && Math.max(end, cur.offset + cur.length) - cur.offset <= READ_BYTES && rawOf(cur) + e.rawLength <= RAW_BYTES) {
      cur.length = Math.max(cur.length, end - cur.offset);
      cur.extents.push(e);
    } else {
      out.push((cur = { key, offset: e.offset, length: e.length, extents: [e] }));
    }
  }
  if (cur) cur.last = true;
  return out;
}

function rawOf(b: Batch): number {
  return b.extents.reduce((n, e) => n + e.rawLength, 0);
}

/** `n` of `items`, chosen uniformly at random. */
function sample<T>(items: T[], n: number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

/** The snapshots whose extent tables point at this extent (read again: damage is rare, memory is not spent on it). */
async function snapshotsUsing(storage: StorageClient, ids: string[], key: string, e: ExtentToCheck, call: { signal?: AbortSignal }): Promise<string[]> {
  const using: string[] = [];
  for (const id of ids) {
    try {
      const m = await readManifest(storage, id, call);
      const pack = m.packs.findIndex((p) => p.key === key);
      if (pack < 0) continue;
      for (const x of (await readExtentTable(storage, m, call)).extents()) {
        if (x.kind === 'stored' && x.pack === pack && x.offset === e.offset && x.length === e.length) {
          using.push(id);
          break;
        }
      }
    } catch (err) {
      if (!(err instanceof IntegrityError || (err instanceof StorageError && err.code === 'NOT_FOUND'))) throw err;
    }
  }
  return using;
}
