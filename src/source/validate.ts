// Checks of a source database file made before SQLite ever opens it, so that a missing file is not
// created, a file that is not SQLite is refused with a clear error, and nothing is written beside either.
import { open } from 'node:fs/promises';
import { SourceError } from '../errors.ts';

export const SQLITE_HEADER_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
export const SQLITE_HEADER_SIZE = 100;

/** What the first 100 bytes of a database file say. An empty (0-byte) file is a valid, empty database. */
export interface DatabaseHeader {
  fileSize: number;
  /** Page size in bytes (the header's 1 means 65536); 0 for an empty file. */
  pageSize: number;
  /** 2 in both version bytes means WAL; 1 means a rollback journal. */
  wal: boolean;
  /** File change counter, header bytes 24-27 (not necessarily bumped by every commit in WAL mode). */
  changeCounter: number;
  /** Page count in the header (bytes 28-31); valid only when the "version-valid-for" number matches. */
  headerPageCount: number;
}

/** Parses a header; returns undefined when the bytes are not a SQLite database header. */
export function parseHeader(bytes: Uint8Array, fileSize: number): DatabaseHeader | undefined {
  if (bytes.length < SQLITE_HEADER_SIZE) return undefined;
  if (!SQLITE_HEADER_MAGIC.equals(bytes.subarray(0, 16))) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const raw = view.getUint16(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return undefined;
  const write = bytes[18];
  const read = bytes[19];
  if ((write !== 1 && write !== 2) || (read !== 1 && read !== 2)) return undefined;
  return {
    fileSize,
    pageSize,
    wal: write === 2 && read === 2,
    changeCounter: view.getUint32(24),
    headerPageCount: view.getUint32(28),
  };
}

function fsError(path: string, err: NodeJS.ErrnoException): SourceError {
  if (err.code === 'ENOENT' || err.code === 'ENOTDIR') {
    return new SourceError('SOURCE_MISSING', `source database ${path} does not exist: check the path`, { cause: err });
  }
  return new SourceError('SOURCE_UNREADABLE', `cannot read source database ${path}: ${err.code ?? err.message}`, { cause: err });
}

/** Reads and checks the header of a database file; throws SourceError with a stable code. */
export async function readSourceHeader(path: string): Promise<DatabaseHeader> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw fsError(path, err as NodeJS.ErrnoException);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new SourceError('SOURCE_UNREADABLE', `source database ${path} is not a regular file`);
    }
    if (stat.size === 0) {
      return { fileSize: 0, pageSize: 0, wal: false, changeCounter: 0, headerPageCount: 0 };
    }
    const bytes = Buffer.alloc(SQLITE_HEADER_SIZE);
    const { bytesRead } = await handle.read(bytes, 0, SQLITE_HEADER_SIZE, 0);
    const header = bytesRead === SQLITE_HEADER_SIZE ? parseHeader(bytes, stat.size) : undefined;
    if (!header) {
      throw new SourceError(
        'SOURCE_NOT_SQLITE',
        `source ${path} is not a SQLite database (no SQLite header; an encrypted database is not readable either)`,
      );
    }
    return header;
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw fsError(path, err as NodeJS.ErrnoException);
  } finally {
    await handle.close();
  }
}
