// The restore target: what is at the path before a restore, whether another process holds it, and putting
// the verified temp file in its place. The rules (docs/OPERATIONS.md, "What a restore does to the target"):
//
// - A symlink at the path is followed: the file it points to is what gets replaced (SQLite opens the
//   database, and puts its -wal and -shm, where the link points), and the link stays.
// - A -wal, -shm or -journal beside the target would be replayed into the restored database by the first
//   connection that opens it. They are moved aside under names the result lists before the rename. Beside a
//   file that --force replaces they belonged to that file and are deleted once the new file is in place;
//   beside a missing target they may belong to a database someone moved away, so they are kept.
// - Replacing a database another process holds pulls it out from under that process: its later commits go
//   into an unlinked file. Holders are found by SQLite's own locks (POSIX record locks on the database's
//   lock bytes and on the -shm's WAL locks, probed with F_GETLK, which takes none) and, on Linux, by open
//   file descriptors under /proc (an idle rollback-journal connection holds no lock). A holder refuses the
//   restore (TargetInUseError) unless `evenIfOpen`; the check runs before the download and again just
//   before the rename.
// - The replaced file's owner, group and mode are kept; a new file takes its owner and group from the
//   directory when pagevault runs as root, and its mode from the directory's read and write bits (masked by
//   the umask): a database in a 0750 app:app directory comes back app:app 0640.
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { access, lstat, open, readdir, readFile, readlink, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { TargetExistsError, TargetInUseError, TargetWriteError, UsageError } from '../errors.ts';
import { native, SQLITE_LOCK_BYTES } from '../native/index.ts';
import { formatBytes } from '../util/format.ts';

/** Files SQLite keeps beside a database. */
export const SIDECARS = ['-wal', '-shm', '-journal'] as const;


export interface TargetState {
  /** The path given, absolute. */
  given: string;
  /** The file that will be replaced or created: `given`, or where a symlink there points. */
  path: string;
  dir: string;
  /** The regular file there now, if any. */
  existing: Stats | undefined;
  dirStat: Stats;
}

export interface Holder {
  /** Process id, or null when a lock's holder is not visible from here (another pid namespace). */
  pid: number | null;
  /** Its command name, where /proc tells. */
  command?: string;
  /** The file it holds. */
  file: string;
  how: 'lock' | 'open';
}

export interface MovedAside {
  from: string;
  to: string;
  /** Deleted after the rename (it belonged to the file --force replaced), or kept at `to`. */
  kept: boolean;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

/** A failed write to the target's directory as the error a user can act on; anything else unchanged. */
export function targetWriteFailure(what: string, path: string, err: unknown, needed?: number): unknown {
  const code = errnoOf(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    const size = needed === undefined ? '' : ` (the database needs ${formatBytes(needed)})`;
    return new TargetWriteError('NO_SPACE', `${what} ${path}: the disk is full${size}; free space there or restore to another disk`, { cause: err });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    const why = code === 'EROFS' ? 'the file system is read-only' : 'permission denied';
    return new TargetWriteError('NOT_WRITABLE', `${what} ${path}: ${why}; run as a user who can write ${dirname(path)}, or restore elsewhere`, { cause: err });
  }
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new TargetWriteError('DIR_MISSING', `${what} ${path}: the directory ${dirname(path)} does not exist: create it first`, { cause: err });
  }
  return err;
}

/** `path` with symlinks at its last component followed (a dangling link names the file to create). */
async function followLinks(path: string): Promise<string> {
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    let s: Stats;
    try {
      s = await lstat(current);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return current;
      throw err;
    }
    if (!s.isSymbolicLink()) return current;
    current = resolve(dirname(current), await readlink(current));
  }
  throw new UsageError('BAD_TARGET', `cannot restore to ${path}: too many levels of symbolic links`);
}

/**
 * What is at the target, checked before anything is downloaded: the directory exists and is writable, an
 * existing file is a regular file and may be replaced (`force`) or is to be kept (`ifNotExists`: returns
 * undefined). Throws TargetWriteError, TargetExistsError or UsageError.
 */
export async function inspectTarget(given: string, options: { force: boolean; ifNotExists: boolean }): Promise<TargetState | undefined> {
  const absolute = resolve(given);
  const path = await followLinks(absolute).catch((err) => {
    throw targetWriteFailure('cannot restore to', absolute, err);
  });
  const dir = dirname(path);
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat) throw new TargetWriteError('DIR_MISSING', `cannot restore to ${path}: the directory ${dir} does not exist: create it first`);
  if (!dirStat.isDirectory()) throw new TargetWriteError('DIR_MISSING', `cannot restore to ${path}: ${dir} is not a directory`);
  let existing: Stats | undefined;
  try {
    existing = await stat(path);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw targetWriteFailure('cannot restore to', path, err);
  }
  if (existing) {
    const link = path === absolute ? '' : ` (where the symlink ${absolute} points)`;
    if (options.ifNotExists) return undefined;
    if (!options.force) {
      throw new TargetExistsError(
        'TARGET_EXISTS',
        `${path}${link} already exists: pass --force to replace it (its -wal and -shm go too), or --if-not-exists to keep it`,
      );
    }
    if (!existing.isFile()) throw new UsageError('BAD_TARGET', `cannot replace ${path}${link}: it is not a regular file`);
  }
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    throw targetWriteFailure('cannot restore to', path, err);
  }
  return { given: absolute, path, dir, existing, dirStat };
}

/** Refuses (TargetWriteError NO_SPACE) when the target's file system has less than `bytes` free for us. */
export async function checkFreeSpace(state: TargetState, bytes: number): Promise<void> {
  const fs = await statfs(state.dir);
  const free = fs.bavail * fs.bsize;
  if (free < bytes) {
    throw new TargetWriteError(
      'NO_SPACE',
      `cannot restore to ${state.path}: the database needs ${formatBytes(bytes)} and ${state.dir} has ${formatBytes(free)} free; ` +
        'free space there or restore to another disk',
    );
  }
}

/** The processes holding the database at `path`, its -wal, -shm or -journal (see the file comment). */
export async function findHolders(path: string): Promise<Holder[]> {
  const files = [path, ...SIDECARS.map((s) => path + s)];
  const present: { file: string; stat: Stats }[] = [];
  for (const file of files) {
    const s = await stat(file).catch(() => undefined);
    if (s) present.push({ file, stat: s });
  }
  if (present.length === 0) return [];
  const holders = await openDescriptors(present);
  // Probing opens and closes the file, which would drop this process's own SQLite locks on it (POSIX lock
  // semantics): never probe what this process itself has open.
  if (holders.some((h) => h.pid === process.pid)) return holders;
  for (const { file } of present) {
    const bytes = file === path ? SQLITE_LOCK_BYTES.database : file.endsWith('-shm') ? SQLITE_LOCK_BYTES.shm : undefined;
    if (!bytes) continue;
    let pid: number;
    try {
      pid = native().lockHolder(file, bytes.start, bytes.length);
    } catch (err) {
      throw new TargetInUseError(
        'TARGET_UNCHECKED',
        `cannot tell whether another process holds ${file} (${errnoOf(err) ?? String(err)}): run as a user who can read it, or pass --even-if-open`,
        { cause: err },
      );
    }
    if (pid === 0) continue;
    if (!holders.some((h) => h.pid === pid && h.file === file)) {
      holders.push({ pid: pid > 0 ? pid : null, ...(pid > 0 ? await commandOf(pid) : {}), file, how: 'lock' });
    }
  }
  return holders;
}

/** Processes with a descriptor open on one of `files`, from /proc (Linux; elsewhere none are found). */
async function openDescriptors(files: { file: string; stat: Stats }[]): Promise<Holder[]> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  const holders: Holder[] = [];
  await Promise.all(
    pids.map(async (p) => {
      const fds = await readdir(`/proc/${p}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const s = await stat(`/proc/${p}/fd/${fd}`).catch(() => undefined);
        if (!s) continue;
        const hit = files.find((f) => f.stat.ino === s.ino && f.stat.dev === s.dev);
        if (hit && !holders.some((h) => h.pid === Number(p) && h.file === hit.file)) {
          holders.push({ pid: Number(p), ...(await commandOf(Number(p))), file: hit.file, how: 'open' });
        }
      }
    }),
  );
  return holders.sort((a, b) => (a.pid ?? 0) - (b.pid ?? 0));
}

async function commandOf(pid: number): Promise<{ command?: string }> {
  try {
    return { command: (await readFile(`/proc/${pid}/comm`, 'utf8')).trim() };
  } catch {
    return {};
  }
}

/** Throws TargetInUseError naming every holder of the target, unless there is none. */
export async function refuseIfHeld(state: TargetState, when: string): Promise<void> {
  const holders = await findHolders(state.path);
  if (holders.length === 0) return;
  // One clause per process: "pid 4242 (python3) has /srv/app.db, /srv/app.db-wal open and a lock on /srv/app.db-shm".
  const byProcess = new Map<number | null, Holder[]>();
  for (const h of holders) byProcess.set(h.pid, [...(byProcess.get(h.pid) ?? []), h]);
  const who = [...byProcess.values()]
    .map((hs) => {
      const h = hs[0]!;
      const proc = h.pid === null ? 'a process in another pid namespace' : h.pid === process.pid ? 'this process' : `pid ${h.pid}${h.command ? ` (${h.command})` : ''}`;
      const open = hs.filter((x) => x.how === 'open').map((x) => x.file);
      const locked = hs.filter((x) => x.how === 'lock').map((x) => x.file);
      const parts = [open.length ? `has ${open.join(', ')} open` : '', locked.length ? `holds a lock on ${locked.join(', ')}` : ''];
      return `${proc} ${parts.filter(Boolean).join(' and ')}`;
    })
    .join('; ');
  throw new TargetInUseError(
    'TARGET_IN_USE',
    `${when}: ${who}. Replacing a database another process uses loses its next commits: stop that process first ` +
      '(or, knowing that, pass --even-if-open)',
  );
}

const tempPattern = /^\.(.+)\.pagevault-(.+)-(\d+)-[0-9a-f]{8}(?:-wal|-shm|-journal)?$/;

/** A fresh temp file name beside the target, naming this host and process so that a later restore can tell it is stale. */
export function tempPathFor(state: TargetState): string {
  return join(state.dir, `.${basename(state.path)}.pagevault-${tempHost()}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** This host's name as it goes into temp file names. */
function tempHost(): string {
  return hostname().replace(/[^A-Za-z0-9_.]/g, '_') || 'host';
}

/**
 * Removes temp files an earlier restore of the same target left behind when it was killed: those of this
 * host whose process is gone. Returns the paths removed.
 */
export async function removeStaleTemps(state: TargetState, log: Logger): Promise<string[]> {
  const host = tempHost();
  const removed: string[] = [];
  for (const name of await readdir(state.dir).catch(() => [] as string[])) {
    const m = tempPattern.exec(name);
    if (!m || m[1] !== basename(state.path) || m[2] !== host) continue;
    const pid = Number(m[3]);
    if (pid !== process.pid && isAlive(pid)) continue;
    const file = join(state.dir, name);
    await rm(file, { force: true });
    removed.push(file);
  }
  if (removed.length > 0) log.info({ removed }, 'removed temp files of an earlier restore that was killed');
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

/**
 * Gives the temp file the owner, group and mode the target will have (see the file comment). Before
 * anything is downloaded, so that a restore that cannot keep them fails while the target is untouched.
 */
export async function applyOwnership(fh: FileHandle, state: TargetState): Promise<void> {
  const mine = await fh.stat();
  const root = process.getuid?.() === 0;
  const want = state.existing
    ? { uid: state.existing.uid, gid: state.existing.gid, mode: state.existing.mode & 0o7777 }
    : { uid: root ? state.dirStat.uid : mine.uid, gid: root ? state.dirStat.gid : mine.gid, mode: undefined };
  try {
    if (want.uid !== mine.uid || want.gid !== mine.gid) await fh.chown(want.uid, want.gid);
    if (want.mode !== undefined) await fh.chmod(want.mode);
  } catch (err) {
    throw new TargetWriteError(
      'OWNER',
      `cannot give the restored ${state.path} the owner ${want.uid}:${want.gid}${want.mode === undefined ? '' : ` and mode ${want.mode.toString(8)}`} ` +
        `of the file it replaces (${errnoOf(err) ?? String(err)}): run the restore as root or as that user`,
      { cause: err },
    );
  }
}

/** The mode a new temp file is created with: the directory's read and write bits (the umask applies). */
export function createMode(state: TargetState): number {
  return state.existing ? 0o600 : state.dirStat.mode & 0o666;
}

function asideName(file: string, stamp: string): string {
  return `${file}.pagevault-aside-${stamp}`;
}

/**
 * Moves the target's -wal, -shm and -journal aside, renames the temp file over the target and fsyncs the
 * directory. On a failed rename the moved files go back. Returns what was moved where.
 */
export async function putInPlace(temp: string, state: TargetState, log: Logger): Promise<MovedAside[]> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const moved: MovedAside[] = [];
  for (const suffix of SIDECARS) {
    const from = state.path + suffix;
    const s = await lstat(from).catch(() => undefined);
    if (!s) continue;
    const to = asideName(from, stamp);
    await rename(from, to).catch((err) => {
      throw targetWriteFailure('cannot move aside', from, err);
    });
    moved.push({ from, to, kept: state.existing === undefined });
  }
  try {
    await rename(temp, state.path);
  } catch (err) {
    for (const m of moved) await rename(m.to, m.from).catch(() => undefined);
    throw targetWriteFailure('cannot rename the restored database to', state.path, err);
  }
  for (const m of moved) {
    if (!m.kept) await unlink(m.to).catch(() => undefined);
    else log.warn({ from: m.from, to: m.to }, 'moved a file beside the target aside: SQLite would have replayed it into the restored database');
  }
  const d = await open(state.dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  return moved;
}
