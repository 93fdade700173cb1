// The source check: PRAGMA quick_check (or integrity_check) of the source database while the snapshot copies
// it, so that a damaged source is known when its snapshot is published, not at its first restore.
//
// It runs in a process of its own on its own read-only connection: on another core, and killable at once (a
// worker thread inside a PRAGMA cannot be stopped, and would hold up the exit on SIGINT or SIGTERM until the
// PRAGMA returned). It is the page source's companion (ReadCompanion): its read transaction begins when the
// snapshot's does, and it checks the state the snapshot copies (docs/FORMAT.md, "The source"):
// - held read transaction (wal-read-transaction, rollback-locked): the check's connection reads PRAGMA
//   data_version, the snapshot begins its transaction, the check begins its own and reads data_version again;
//   unchanged, no commit landed between, and both read one state. Otherwise the page source begins again.
// - rollback-stepped, application: the check begins its transaction before the copy's first step and holds it
//   past that step; the copy reads the same state unless it restarted afterwards (another connection's commit)
//   or the application wrote through its own connection meanwhile, which sameState then says.
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { sourceDefaults } from '../config/defaults.ts';
import type { ConsistencyMode, ReadCompanion } from '../source/page-source.ts';
import { SOURCE_CHECK_MAX_ERRORS, SOURCE_CHECK_MAX_LINE } from '../vault/manifest.ts';
import type { SourceCheckKind, SourceCheckRecord } from '../vault/model.ts';
import { spawnSqliteChild } from '../util/sqlite-child.ts';

/** What the check is asked to be: the PRAGMA, or none. */
export type SourceCheckChoice = 'quick' | 'full' | 'none';

export const sourceCheckChoices: readonly SourceCheckChoice[] = ['quick', 'full', 'none'];

const pragmaOf: Record<Exclude<SourceCheckChoice, 'none'>, SourceCheckKind> = { quick: 'quick_check', full: 'integrity_check' };

// The check process (see spawnSqliteChild). It answers each of the parent's messages, in order, with one reply carrying the message's seq. Signals are the parent's to act
// on (it kills this process).
const checkProcessSource = `
const [sqlite, path, busyTimeoutMs] = process.argv.slice(1);
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));
const pause = new Int32Array(new SharedArrayBuffer(4));
let seq = 0;
const reply = (m) => process.send({ ...m, seq });
let db;
let version;
function whileBusy(fn) {
  const deadline = Date.now() + Number(busyTimeoutMs);
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      const code = String((err && err.code) || '');
      if (!(code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) || Date.now() >= deadline) throw err;
    }
    Atomics.wait(pause, 0, 0, Math.min(50, 2 ** attempt));
  }
}
function end() {
  if (db.inTransaction) db.exec('ROLLBACK');
}
try {
  const Database = require(sqlite);
  db = new Database(path, { readonly: true, fileMustExist: true, timeout: 0 });
} catch (err) {
  reply({ op: 'failed', message: 'open ' + path + ': ' + (err && err.message) });
  process.exit(0);
}
process.on('message', (m) => {
  seq = m.seq;
  try {
    if (m.op === 'probe') {
      end();
      version = whileBusy(() => db.pragma('data_version', { simple: true }));
      reply({ op: 'probed' });
    } else if (m.op === 'pin') {
      end();
      whileBusy(() => {
        db.exec('BEGIN');
        try {
          db.prepare('SELECT count(*) FROM sqlite_schema').get();
        } catch (err) {
          db.exec('ROLLBACK');
          throw err;
        }
      });
      reply({ op: 'pinned', same: db.pragma('data_version', { simple: true }) === version });
    } else if (m.op === 'run') {
      const started = Date.now();
      const lines = [];
      try {
        for (const row of db.prepare('PRAGMA ' + m.pragma).pluck().iterate()) lines.push(String(row));
      } catch (err) {
        // SQLite may give up part way (SQLITE_CORRUPT) after the lines it reported: keep both.
        lines.push(String((err && err.message) || err) + (err && err.code ? ' (' + err.code + ')' : ''));
      }
      end();
      reply({ op: 'checked', lines, ms: Date.now() - started });
    }
  } catch (err) {
    reply({ op: 'failed', message: String((err && err.message) || err) });
  }
});
reply({ op: 'ready' });
`;

interface Reply {
  op: 'ready' | 'probed' | 'pinned' | 'checked' | 'failed';
  /** The request's number (0: the process is ready). */
  seq?: number;
  same?: boolean;
  lines?: string[];
  ms?: number;
  message?: string;
}

/** The consistency modes in which the snapshot holds one read transaction across the whole copy. */
const heldModes: ReadonlySet<ConsistencyMode> = new Set(['wal-read-transaction', 'rollback-locked']);

export interface SourceCheckOptions {
  /** The database file; the check opens its own read-only connection to it. */
  path: string;
  kind: SourceCheckKind;
  logger: Logger;
  /** How long the check's connection waits for a locked database before it gives up (the page source's). */
  busyTimeoutMs?: number;
  /** Stops the check (the process is killed; the record says it did not complete). */
  signal?: AbortSignal;
  /**
   * For an application's connection: a token of the writes made through it (which PRAGMA data_version does
   * not see), taken when the check's transaction begins and when the copy ends; when they differ (or either
   * is unknown: undefined), the copy holds writes the check did not read.
   */
  writesToken?: () => string | undefined;
}

/**
 * One source check: a companion for PageSource (probe, pin), started by the first batch of pages after each
 * pin (batch()), read when the copy is complete (copyComplete(), then record()). close() kills the process.
 */
export class SourceCheck implements ReadCompanion {
  readonly kind: SourceCheckKind;
  private readonly options: SourceCheckOptions;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  /** Requests sent to the current process, by seq (0: its "ready"). */
  private pending = new Map<number, (r: Reply) => void>();
  private seq = 0;
  private failure: string | undefined;
  private ready: Promise<Reply> | undefined;

  private pinnedMode: ConsistencyMode | undefined;
  private pinnedSame = false;
  private pinnedWrites: string | undefined;
  private pins = 0;
  private pinsAtLastBatch = 0;
  private restartedSincePin = false;
  private writesSincePin = false;
  private running: Promise<Reply> | undefined;

  constructor(options: SourceCheckOptions) {
    this.options = options;
    this.kind = options.kind;
    this.log = options.logger;
    this.spawn();
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** The check for `choice`, or undefined for none (or a source without a file a second connection could read). */
  static start(choice: SourceCheckChoice, path: string | undefined, options: Omit<SourceCheckOptions, 'path' | 'kind'>): SourceCheck | undefined {
    if (choice === 'none' || path === undefined) return undefined;
    return new SourceCheck({ ...options, path, kind: pragmaOf[choice] });
  }

  async probe(): Promise<void> {
    // A new backup after a fallback: a check begun for the previous one is of no use; start over.
    if (this.running) this.respawn();
    this.pinnedMode = undefined;
    await this.ask({ op: 'probe' }, 'probed');
  }

  async pin(mode: ConsistencyMode): Promise<boolean> {
    const r = await this.ask({ op: 'pin' }, 'pinned');
    if (r?.op !== 'pinned') return true; // failed: nothing to begin again for
    this.pins++;
    this.pinnedMode = mode;
    this.pinnedSame = r.same === true;
    this.restartedSincePin = false;
    this.writesSincePin = false;
    this.pinnedWrites = this.options.writesToken?.();
    if (this.options.writesToken && this.pinnedWrites === undefined) this.writesSincePin = true;
    return this.pinnedSame;
  }

  /**
   * Called with every batch the snapshot takes from the page source. The first batch after a pin means the
   * copy's first step has run, so the check may begin (and end its transaction when it is done); a restart
   * after that means the copy reads a later state than the check did.
   */
  batch(restarted: boolean): void {
    if (restarted && this.pins === this.pinsAtLastBatch) this.restartedSincePin = true;
    this.pinsAtLastBatch = this.pins;
    this.run();
  }

  /** The copy is complete: what it read is settled (call right after the page source's last batch). */
  copyComplete(): void {
    if (this.options.writesToken) {
      const now = this.options.writesToken();
      if (now === undefined || now !== this.pinnedWrites) this.writesSincePin = true;
    }
    this.run(); // a database without pages gives no batch
  }

  private run(): void {
    if (this.running || this.pinnedMode === undefined || this.failure) return;
    const check = `${this.kind}(${SOURCE_CHECK_MAX_ERRORS})`;
    this.running = this.ask({ op: 'run', pragma: check }, 'checked').then((r) => r ?? { op: 'failed', message: this.failure });
  }

  /** The check's record for the manifest, once it has finished. */
  async record(): Promise<SourceCheckRecord> {
    const r = this.running ? await this.running : ({ op: 'failed', message: this.failure ?? 'the check never began: the copy read no pages' } satisfies Reply);
    if (r.op !== 'checked') {
      return { kind: this.kind, ok: false, errors: [`the check did not complete: ${r.message ?? 'no reason given'}`], durationMs: 0, sameState: false };
    }
    const lines = r.lines!.flatMap((l) => l.split('\n')).filter((l) => l !== '' && l !== '*** in database main ***');
    const ok = lines.length === 1 && lines[0] === 'ok';
    const held = this.pinnedMode !== undefined && heldModes.has(this.pinnedMode);
    return {
      kind: this.kind,
      ok,
      errors: ok ? [] : lines.slice(0, SOURCE_CHECK_MAX_ERRORS).map((l) => (l.length > SOURCE_CHECK_MAX_LINE ? `${l.slice(0, SOURCE_CHECK_MAX_LINE - 3)}...` : l)),
      durationMs: r.ms!,
      sameState: held ? this.pinnedSame : !this.restartedSincePin && !this.writesSincePin,
    };
  }

  /**
   * Kills the check process (SIGKILL: it may be inside a PRAGMA that nothing else interrupts); resolves once it
   * has exited, so that its connection is gone. Idempotent.
   */
  close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    this.failAll(this.failure ?? 'the check was stopped');
    return stop(child);
  }

  private spawn(): void {
    const busyTimeoutMs = String(this.options.busyTimeoutMs ?? sourceDefaults.busyTimeoutMs);
    const child = spawnSqliteChild(checkProcessSource, [this.options.path, busyTimeoutMs], { stderr: 'pipe' });
    this.child = child;
    this.failure = undefined;
    this.pending = new Map();
    this.seq = 0;
    this.ready = new Promise((resolve) => this.pending.set(0, resolve));
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
    child.on('message', (m: Reply) => {
      if (this.child !== child) return; // a process replaced or stopped: its answers are of no use
      if (m.op === 'failed') this.failure ??= m.message;
      const resolve = this.pending.get(m.seq ?? -1);
      this.pending.delete(m.seq ?? -1);
      resolve?.(m);
    });
    child.once('error', (err) => this.fail(child, `the check process could not run: ${err.message}`));
    child.once('exit', (code, signal) => this.fail(child, `the check process exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`));
  }

  private respawn(): void {
    const old = this.child;
    this.child = undefined;
    void stop(old);
    this.failAll('a new backup began');
    this.running = undefined;
    this.spawn();
  }

  private fail(child: ChildProcess, message: string): void {
    if (this.child !== child) return; // an old process, killed on purpose
    this.failure ??= message;
    this.log.warn({ err: message }, 'the source check failed to run');
    this.failAll(message);
  }

  /** Answers every request still waiting with a failure. */
  private failAll(message: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const resolve of waiting) resolve({ op: 'failed', message });
  }

  /** The reply to `message`; undefined once the check has failed (it never throws: a check that fails says so). */
  private async ask(message: { op: string; pragma?: string }, answer: Reply['op']): Promise<Reply | undefined> {
    const child = this.child;
    if ((await this.ready)?.op !== 'ready' || this.failure || !child?.connected || child !== this.child) return undefined;
    const seq = ++this.seq;
    const reply = new Promise<Reply>((resolve) => this.pending.set(seq, resolve));
    child.send({ ...message, seq });
    const r = await reply;
    return r.op === answer ? r : undefined;
  }
}

/** SIGKILL, then the exit. */
function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return exited;
}
