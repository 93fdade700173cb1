// Garbage collection without locks: what prune and forget share (docs/FORMAT.md, "Garbage collection", is the
// specification and the argument for why it is safe). One run:
//
//   1. writes its run record and reads its LastModified back: the store's clock, the only one compared;
//   2. lists the manifests and reads each once (a damaged one stops every deletion: its references are unknown);
//   3. decides what to forget (the policy, or the ids given);
//   4. lists the marks and reads each, then lists extents/ and packs/ (after the manifests: see the argument);
//   5. forgets: writes a forget mark per forgotten snapshot (everything it referenced), then deletes those
//      manifests, within half the grace period of the first mark (else it stops, having forgotten nothing);
//   6. marks what no manifest references and no mark holds yet (a killed snapshot's objects, leftovers);
//   7. deletes each marked object that every mark holding it has held for longer than the grace period and that
//      no kept manifest references, then the marks it has done with, then stale multipart uploads and run records.
//
// A snapshot's side of the bargain is in publish-check.ts.
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { gcDefaults, storageDefaults } from '../config/defaults.ts';
import { ConflictError, IntegrityError, StorageError, UsageError } from '../errors.ts';
import { listObjects, type ObjectInfo, type StorageClient } from '../storage/client.ts';
import { openStorage, type StorageOptions } from '../storage/registry.ts';
import { CountStore } from '../storage/wrappers/count.ts';
import { abortStaleUploads } from '../snapshot/cleanup.ts';
import { componentLogger } from '../util/logger.ts';
import { formatDuration } from '../util/format.ts';
import { runAll } from '../util/run-all.ts';
import { newSnapshotId } from '../vault/ids.ts';
import { extentTableKey, extentsPrefix, manifestKey, markKey, marksPrefix, packsPrefix, parseMarkKey, runKey, runsPrefix, snapshotIdOfKey } from '../vault/layout.ts';
import { decodeMark, encodeMark, type Mark, type MarkKind } from '../vault/mark.ts';
import { listSnapshotIds, readManifest, type StoredManifest } from '../vault/repository.ts';

export interface CollectOptions {
  /** Vault URL; ignored when `storage` is given. */
  url?: string;
  /** An already opened storage client (the caller closes it). */
  storage?: StorageClient;
  storageOptions?: Omit<StorageOptions, 'onEvent'>;
  /** How long a marked object stays before it may be deleted (default gcDefaults.graceMs). */
  graceMs?: number;
  /** Decide and report, write and delete nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
  logger?: Logger;
}

/** Objects and their bytes. */
export interface ObjectCount {
  objects: number;
  bytes: number;
}

export interface CollectResult {
  /** This run's id (the form of a snapshot id), in its run record and marks. */
  id: string;
  url: string;
  dryRun: boolean;
  graceMs: number;
  /** Snapshots kept and forgotten by this run, oldest first. */
  kept: string[];
  forgotten: string[];
  /** Snapshots whose manifest could not be read: kept, and while there are any nothing is deleted. */
  damaged: string[];
  /** Objects deleted by this run (with --dry-run: that it would delete). */
  deleted: ObjectCount;
  /** Unreferenced objects still in their grace period (marked by this run or an earlier one). */
  waiting: ObjectCount & { /** When the first of them may go, by the store's clock; null when none waits. */ nextAt: string | null };
  /** Objects this run marked (part of `waiting`). */
  marked: ObjectCount;
  /** Every object of the vault after this run: extent tables, packs and manifests. */
  stored: ObjectCount;
  /** Multipart uploads older than the grace period that were aborted. */
  abortedUploads: number;
  /** Requests made, in total and by operation. */
  requests: { total: number; byOp: Record<string, number> };
  /** Why nothing was deleted, when that is the case although some marked object is past its grace period. */
  deletionBlocked?: string;
  durationMs: number;
}

interface ListedMark {
  key: string;
  mark: Mark;
  /** Store time the mark was written (its LastModified), ms. */
  at: number;
}

/**
 * What to forget: given the readable manifests (oldest first) and the ids of those that cannot be read, the ids
 * to forget. It may throw (a bad id): nothing has been written yet.
 */
export type ForgetDecision = (manifests: StoredManifest[], damaged: readonly string[]) => Set<string>;

/** The grace period checked (UsageError BAD_OPTION). */
export function checkGrace(graceMs: number | undefined): number {
  const g = graceMs ?? gcDefaults.graceMs;
  if (!Number.isSafeInteger(g) || g < gcDefaults.minGraceMs) {
    throw new UsageError('BAD_OPTION', `the grace period must be at least ${gcDefaults.minGraceMs / 1000}s, got ${g} ms`);
  }
  return g;
}

/** How long after its start (or a prune after its first mark) a snapshot may still publish: half the grace, less a margin. */
export function safeWindowMs(graceMs: number): number {
  return graceMs / 2 - Math.min(graceMs * gcDefaults.publishMarginFraction, gcDefaults.publishMarginMaxMs);
}

/** The keys a manifest references: its extent table and every pack it lists. */
export function referencedKeys(m: StoredManifest): string[] {
  return [extentTableKey(m.id), ...m.packs.map((p) => p.key)];
}

export async function collect(options: CollectOptions, decide: ForgetDecision): Promise<CollectResult> {
  const graceMs = checkGrace(options.graceMs);
  if (!options.storage && !options.url) throw new UsageError('BAD_OPTION', 'prune needs a vault url (or a storage client)');
  const log = componentLogger(options.logger, 'prune');
  const inner = options.storage ?? openStorage(options.url!, { ...options.storageOptions, logger: log });
  const storage = new CountStore(inner);
  try {
    return await new Run(storage, graceMs, options, log).run(decide);
  } finally {
    if (!options.storage) await inner.close();
  }
}

class Run {
  readonly id = newSnapshotId(new Date());
  readonly #started = performance.now();
  readonly #call: { signal?: AbortSignal };
  /** The store's time at this run's start, ms (by the local clock in a dry run, which writes nothing). */
  #storeNow = 0;
  #manifests = new Map<string, StoredManifest>();
  #damaged: string[] = [];
  #marks: ListedMark[] = [];
  #damagedMarks: string[] = [];
  #objects = new Map<string, ObjectInfo>();

  constructor(
    readonly storage: CountStore,
    readonly graceMs: number,
    readonly options: CollectOptions,
    readonly log: Logger,
  ) {
    this.#call = options.signal ? { signal: options.signal } : {};
  }

  async run(decide: ForgetDecision): Promise<CollectResult> {
    const dryRun = this.options.dryRun === true;
    // The clock before the manifests: a mark is past its grace period only if it was so before the listing
    // that decides what is referenced (a snapshot published after that listing published before it expired).
    this.#storeNow = dryRun ? Date.now() : await this.#clock();
    await this.#readManifests();
    const readable = [...this.#manifests.values()];
    let forget: Set<string>;
    try {
      forget = decide(readable, this.#damaged);
    } catch (err) {
      // A bad id: nothing is done, and the run leaves no record.
      if (!dryRun) await this.storage.deleteMany([runKey(this.id)], this.#call).catch(() => undefined);
      throw err;
    }
    await this.#readMarks();
    await this.#listObjects();

    const kept = readable.filter((m) => !forget.has(m.id));
    const referenced = new Set(kept.flatMap(referencedKeys));
    const forgotten = [...readable.filter((m) => forget.has(m.id)).map((m) => m.id), ...this.#damaged.filter((id) => forget.has(id))].sort();
    const forgetMarks = forgotten.map((id) => this.#mark(id, 'forget', this.#forgetObjects(id)));
    // A damaged manifest forgotten by name no longer blocks deletion: what it referenced but its own objects is unknown, and no one can restore it.
    this.#damaged = this.#damaged.filter((id) => !forget.has(id));
    if (!dryRun && forgetMarks.length > 0) await this.#forget(forgetMarks);

    // Marked: held by a mark already (an earlier one, or this run's forget marks).
    const held = new Map<string, ListedMark[]>();
    for (const m of [...this.#marks, ...forgetMarks.map((mark) => ({ key: markKey(mark.snapshot, mark.prune), mark, at: Infinity }))]) {
      for (const o of m.mark.objects) {
        const list = held.get(o.key);
        if (list) list.push(m);
        else held.set(o.key, [m]);
      }
    }
    const newMarks = this.#unreferencedMarks(referenced, held);
    if (!dryRun && newMarks.length > 0) await this.#putMarks(newMarks);
    const marked = count(newMarks.flatMap((m) => m.objects));

    const { deletable, waiting, nextAt, blocked } = this.#deletable(referenced, held);
    if (!dryRun && deletable.length > 0) await this.storage.deleteMany(deletable.map((o) => o.key), this.#call);
    if (!dryRun && !blocked) await this.#dropDoneMarks();
    const abortedUploads = dryRun ? 0 : await this.#sweepUploads();
    if (!dryRun) await this.#dropRunRecords();

    const gone = new Set(deletable.map((o) => o.key));
    const storedObjects = [...this.#objects.values()].filter((o) => !gone.has(o.key));
    const storedManifests = kept.map((m) => ({ size: m.byteLength }));
    const waitingObjects = [...waiting, ...newMarks.flatMap((m) => m.objects).filter((o) => this.#objects.has(o.key))];
    const result: CollectResult = {
      id: this.id,
      url: this.storage.url,
      dryRun,
      graceMs: this.graceMs,
      kept: kept.map((m) => m.id).concat(this.#damaged).sort(),
      forgotten,
      damaged: this.#damaged,
      deleted: count(deletable),
      waiting: { ...count(waitingObjects), nextAt: waitingObjects.length === 0 ? null : new Date(Math.min(nextAt, this.#storeNow + this.graceMs)).toISOString() },
      marked,
      stored: count([...storedObjects, ...storedManifests]),
      abortedUploads,
      requests: this.storage.requests,
      ...(blocked ? { deletionBlocked: blocked } : {}),
      durationMs: Math.round(performance.now() - this.#started),
    };
    this.log.info(
      { id: this.id, kept: result.kept.length, forgotten: result.forgotten.length, deleted: result.deleted, waiting: count(waitingObjects), requests: result.requests.total, dryRun },
      dryRun ? 'prune dry run' : 'prune done',
    );
    return result;
  }

  /** Writes this run's record and reads back the store's time of it. */
  async #clock(): Promise<number> {
    const key = runKey(this.id);
    const body = Buffer.from(`${JSON.stringify({ prune: this.id, hostname: hostname(), graceMs: this.graceMs, createdAt: new Date().toISOString() })}\n`);
    await this.storage.putIfAbsent(key, body, this.#call);
    const info = await this.storage.head(key, this.#call);
    if (!info.lastModified) throw new StorageError('NOT_SUPPORTED', `${this.storage.url} does not report when an object was written (LastModified): garbage collection needs the store's clock`);
    return info.lastModified.getTime();
  }

  async #readManifests(): Promise<void> {
    const ids = await listSnapshotIds(this.storage, this.#call);
    await runAll(
      ids,
      storageDefaults.concurrency,
      async (id) => {
        try {
          this.#manifests.set(id, await readManifest(this.storage, id, this.#call));
        } catch (err) {
          if (err instanceof StorageError && err.code === 'NOT_FOUND') return; // forgotten by another prune meanwhile
          if (!(err instanceof IntegrityError)) throw err;
          this.log.warn({ snapshot: id, err: err.message }, 'a manifest cannot be read: nothing is deleted while it is there');
          this.#damaged.push(id);
        }
      },
      { ...this.#call, what: 'prune: read manifests' },
    );
    this.#damaged.sort();
    this.#manifests = new Map([...this.#manifests].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  async #readMarks(): Promise<void> {
    const listed: ObjectInfo[] = [];
    for await (const o of listObjects(this.storage, marksPrefix, this.#call)) if (parseMarkKey(o.key)) listed.push(o);
    await runAll(
      listed,
      storageDefaults.concurrency,
      async (o) => {
        try {
          const mark = decodeMark(await this.storage.getObject(o.key, this.#call), o.key);
          this.#marks.push({ key: o.key, mark, at: o.lastModified?.getTime() ?? Infinity });
        } catch (err) {
          if (err instanceof StorageError && err.code === 'NOT_FOUND') return; // done with by another prune meanwhile
          if (!(err instanceof IntegrityError)) throw err;
          this.log.warn({ key: o.key, err: err.message }, 'a mark cannot be read: nothing is deleted while it is there');
          this.#damagedMarks.push(o.key);
        }
      },
      { ...this.#call, what: 'prune: read marks' },
    );
  }

  async #listObjects(): Promise<void> {
    for (const prefix of [extentsPrefix, packsPrefix]) {
      for await (const o of listObjects(this.storage, prefix, this.#call)) if (snapshotIdOfKey(o.key) !== undefined) this.#objects.set(o.key, o);
    }
  }

  /**
   * Everything a forgotten snapshot referenced, and every object of its own id (a pack its manifest does not
   * list); of a damaged manifest, only the latter.
   */
  #forgetObjects(id: string): { key: string; size: number }[] {
    const m = this.#manifests.get(id);
    const objects = new Map<string, number>();
    if (m) {
      objects.set(extentTableKey(id), m.extents.length);
      for (const p of m.packs) objects.set(p.key, p.size);
    }
    for (const o of this.#objects.values()) if (snapshotIdOfKey(o.key) === id) objects.set(o.key, o.size);
    return [...objects].map(([key, size]) => ({ key, size }));
  }

  #mark(snapshot: string, kind: MarkKind, objects: { key: string; size: number }[]): Mark {
    return { snapshot, prune: this.id, kind, graceMs: this.graceMs, hostname: hostname(), createdAt: new Date().toISOString(), objects };
  }

  async #putMarks(marks: Mark[]): Promise<void> {
    await runAll(marks, storageDefaults.concurrency, (m) => this.storage.putIfAbsent(markKey(m.snapshot, m.prune), encodeMark(m), this.#call), {
      ...this.#call,
      what: 'prune: write marks',
    });
  }

  /**
   * The forget marks first, then the manifests: a snapshot that read one of them before it went is covered by
   * its mark for the whole grace period. Marks and deletions must land within half of it (safeWindowMs), so
   * they go in batches, each timed on its own: a prune paused longer forgets nothing more (the batch's marks
   * expire harmlessly), and one whose deletion itself came late marks that batch again.
   */
  async #forget(marks: Mark[]): Promise<void> {
    const window = safeWindowMs(this.graceMs);
    for (let i = 0; i < marks.length; i += gcDefaults.forgetBatch) {
      const batch = marks.slice(i, i + gcDefaults.forgetBatch);
      const since = performance.now();
      const late = () => performance.now() - since > window;
      await this.#putMarks(batch);
      if (late()) {
        throw new ConflictError(
          'PRUNE_PAUSED',
          `this prune took ${formatDuration(performance.now() - since)} to write the marks of ${batch.length} snapshots, more than the ${formatDuration(window)} ` +
            `the grace period allows; it forgot ${i} of the ${marks.length} snapshots it was to forget, and no more (the marks expire harmlessly): run it again`,
        );
      }
      await this.storage.deleteMany(batch.map((m) => manifestKey(m.snapshot)), this.#call);
      if (late()) {
        this.log.warn({ prune: this.id }, 'forgetting took longer than the grace period allows: marking the forgotten snapshots again');
        const again = newSnapshotId(new Date());
        await this.#putMarks(batch.map((m) => ({ ...m, prune: again, createdAt: new Date().toISOString() })));
      }
    }
  }

  /** Marks, by snapshot id, for the objects that nothing references and no mark holds. */
  #unreferencedMarks(referenced: Set<string>, held: Map<string, ListedMark[]>): Mark[] {
    const bySnapshot = new Map<string, { key: string; size: number }[]>();
    for (const o of this.#objects.values()) {
      if (referenced.has(o.key) || held.has(o.key)) continue;
      const id = snapshotIdOfKey(o.key)!;
      const list = bySnapshot.get(id);
      if (list) list.push({ key: o.key, size: o.size });
      else bySnapshot.set(id, [{ key: o.key, size: o.size }]);
    }
    return [...bySnapshot].map(([id, objects]) => this.#mark(id, 'unreferenced', objects));
  }

  #pastGrace(m: ListedMark): boolean {
    return this.#storeNow - m.at >= Math.max(m.mark.graceMs, this.graceMs);
  }

  /** The marked objects that may go now, those still waiting, and why nothing may go, if that is so. */
  #deletable(referenced: Set<string>, held: Map<string, ListedMark[]>) {
    const deletable: ObjectInfo[] = [];
    const waiting: ObjectInfo[] = [];
    let nextAt = Infinity;
    for (const [key, marks] of held) {
      const object = this.#objects.get(key);
      if (!object || referenced.has(key)) continue;
      const young = marks.filter((m) => !this.#pastGrace(m));
      if (young.length > 0) {
        waiting.push(object);
        for (const m of young) nextAt = Math.min(nextAt, (Number.isFinite(m.at) ? m.at : this.#storeNow) + Math.max(m.mark.graceMs, this.graceMs));
      } else deletable.push(object);
    }
    const blocked =
      this.#damaged.length > 0
        ? `the manifests of ${this.#damaged.join(', ')} cannot be read, so what they reference is unknown: verify the vault, then forget them (pagevault forget) or put them back`
        : this.#damagedMarks.length > 0
          ? `the marks ${this.#damagedMarks.join(', ')} cannot be read: delete them by hand once no snapshot or prune is running (they are only bookkeeping)`
          : undefined;
    if (blocked && deletable.length > 0) this.log.warn({ reason: blocked, objects: deletable.length }, 'deleting nothing');
    return blocked ? { deletable: [], waiting: [...waiting, ...deletable], nextAt, blocked } : { deletable, waiting, nextAt, blocked };
  }

  /** Marks past their grace period are done with: each of their objects is deleted, referenced again, or held by a younger mark. */
  async #dropDoneMarks(): Promise<void> {
    const done = this.#marks.filter((m) => this.#pastGrace(m)).map((m) => m.key);
    if (done.length > 0) await this.storage.deleteMany(done, this.#call);
  }

  /** Multipart uploads older than the grace period; best effort (a server that cannot list them is no failure). */
  #sweepUploads(): Promise<number> {
    return abortStaleUploads(this.storage, { olderThanMs: this.graceMs, ...this.#call, logger: this.log });
  }

  /** This run's record, and those of runs (killed ones included) older than the grace period. */
  async #dropRunRecords(): Promise<void> {
    const old: string[] = [runKey(this.id)];
    for await (const o of listObjects(this.storage, runsPrefix, this.#call)) {
      if (o.key !== old[0] && o.lastModified && this.#storeNow - o.lastModified.getTime() >= this.graceMs) old.push(o.key);
    }
    await this.storage.deleteMany(old, this.#call);
  }
}

function count(objects: readonly { size: number }[]): ObjectCount {
  return { objects: objects.length, bytes: objects.reduce((n, o) => n + o.size, 0) };
}
