// The vault's data model, format v2: what a snapshot's two objects say. The manifest (manifests/<id>) is the
// small summary a listing reads alone, and publishing it is what makes the snapshot exist; the extent table
// (extents/<id>), bound to the manifest by its SHA-256, says where every page is. The byte encodings live in
// envelope.ts, manifest.ts and extent-table.ts and are documented in docs/FORMAT.md; keys in layout.ts.
//
// A database of `pageCount` pages is described by an ordered list of extents. Each extent covers a run of
// pages; applying the extents in order (a later extent overrides the pages it covers) and zero-filling
// whatever no extent covers gives the database. Normally the extents are the fixed chunks, pages
// [i * chunkPages + 1, min((i + 1) * chunkPages, pageCount)], once each, in page order. Pages that an
// application connection wrote again after their chunk had been uploaded follow as smaller "patch" extents.

export const FORMAT_VERSION = 2;

/** How chunk digests (extent digests, databaseDigest's inputs) are computed. */
export type ChunkDigest = 'sha256';

/** How a stored extent's bytes are encoded in its pack. */
export type ExtentCodec = 'zstd' | 'raw';

export interface StoredExtent {
  kind: 'stored';
  /** 1-based number of the first page covered. */
  firstPage: number;
  pageCount: number;
  /** Index into Manifest.packs. */
  pack: number;
  /** Byte offset of the encoded bytes in the pack object. */
  offset: number;
  /**
   * Stored length in the pack object. Independent of the page count: what is stored may be compressed (or,
   * later, carry an AEAD's nonce and tag); only the decoded bytes must be pageCount * pageSize.
   */
  length: number;
  codec: ExtentCodec;
  /** The vault's chunk digest (RepositoryConfig.digest) of the raw (decoded) bytes. 32 bytes. */
  digest: Uint8Array;
}

/** Pages that are all zero: recorded, not stored. Their digest is implied (SHA-256 of the zero bytes). */
export interface ZeroExtent {
  kind: 'zero';
  firstPage: number;
  pageCount: number;
}

export type Extent = StoredExtent | ZeroExtent;

/** Which PRAGMA the source check ran. */
export type SourceCheckKind = 'quick_check' | 'integrity_check';

/** What the source check found: SQLite's verdict on the source database as the snapshot read it. */
export interface SourceCheckRecord {
  kind: SourceCheckKind;
  /** SQLite answered "ok" and nothing else. */
  ok: boolean;
  /**
   * The first lines SQLite reported (at most 20, each at most 500 characters), or why the check did not
   * complete ("the check did not complete: ..."); empty when ok.
   */
  errors: string[];
  /** How long the PRAGMA ran (0 when it did not complete). */
  durationMs: number;
  /**
   * The check provably read the state the snapshot holds (see docs/FORMAT.md, "The source check"); false when
   * that cannot be shown (the copy restarted after the check began, or an application wrote meanwhile).
   */
  sameState: boolean;
}

/**
 * The source database, as the snapshot found it. Its identity (path, fileName, the manifest's pageSize,
 * applicationId, encoding) is what a later snapshot into the same vault is compared with.
 */
export interface SourceFactsRecord {
  /** Absolute path of the database file (as given, made absolute; symlinks not resolved); null in memory. */
  path: string | null;
  /** Base name of the database file; null for an application's in-memory database. */
  fileName: string | null;
  /** PRAGMA application_id: the header's signed 32-bit integer at offset 68 (0 unless the application set it). */
  applicationId: number;
  /** PRAGMA encoding: "UTF-8", "UTF-16le" or "UTF-16be", fixed when the database was created. */
  encoding: string;
  journalMode: string;
  sqliteVersion: string;
  headerChangeCounter: number;
  /** The consistency mode that produced the snapshot (see src/source/page-source.ts). */
  mode: string;
  hostname: string;
  /** The source check, or null when none ran (none asked for, or an in-memory database). */
  check: SourceCheckRecord | null;
}

export interface SnapshotStats {
  /** Bytes of database pages read from the source (pages delivered, re-sent ones included). */
  bytesRead: number;
  /** Bytes of the packs this snapshot wrote; the manifest's own size, the size of its object, is not in it. */
  bytesUploaded: number;
  /** Stored extents whose bytes were uploaded by this snapshot. */
  chunksNew: number;
  /**
   * Stored extents whose bytes were already in the vault: in an earlier snapshot's pack, or uploaded earlier
   * in this one (an identical chunk, or the same chunk before a restart).
   */
  chunksReused: number;
  chunksZero: number;
  restarts: number;
  durationMs: number;
}

/** A pack a snapshot's extents use. */
export interface PackRecord {
  /** The pack's key, relative to the vault prefix. */
  key: string;
  /** The pack object's length in bytes. */
  size: number;
  /**
   * Bytes of the pack this snapshot's stored extents use, each distinct byte range counted once. A pack no
   * kept snapshot lists is unused; one whose `used` is far below `size` in every snapshot listing it is mostly
   * dead (see docs/FORMAT.md, "What prune can know").
   */
  used: number;
}

/** Where a snapshot's extent table is, and what binds it to the manifest. */
export interface ExtentTableRef {
  /** Extents in the table, and how many of them are stored (not zero). */
  count: number;
  stored: number;
  /** The extent table object's length and hex SHA-256: a table that is not this one is refused. */
  length: number;
  sha256: string;
}

export interface Manifest {
  formatVersion: typeof FORMAT_VERSION;
  /** Snapshot id (see ids.ts): sorts by creation time, unique across hosts. */
  id: string;
  /** The snapshot whose chunks this one reused, or null for a full snapshot. */
  parent: string | null;
  /** When the snapshot began and was published, ISO 8601 UTC. */
  createdAt: string;
  completedAt: string;
  tool: { name: 'pagevault'; version: string };
  /** Labels given to the snapshot (distinct, in the order given); retention can keep snapshots by tag. */
  tags: string[];
  pageSize: number;
  pageCount: number;
  /** Pages per fixed chunk. */
  chunkPages: number;
  /**
   * Hex SHA-256 of the concatenated SHA-256 digests of the final database's fixed chunks, in page order (the
   * last chunk may be short; an all-zero chunk's digest is that of its zero bytes). Null when patch extents
   * made the final content of some chunk unknowable at snapshot time; a restore then relies on the extents'
   * digests and the integrity check.
   */
  databaseDigest: string | null;
  source: SourceFactsRecord;
  stats: SnapshotStats;
  /** The packs the extents use, in order of first use; extents refer to them by index. */
  packs: PackRecord[];
  /** The extent table (extents/<id>). */
  extents: ExtentTableRef;
}

/** The repository config object (pagevault.json): written once, with the vault's first snapshot. */
export interface RepositoryConfig {
  format: 'pagevault';
  formatVersion: typeof FORMAT_VERSION;
  /** Codec new stored extents use. */
  codec: ExtentCodec;
  /** How chunk digests are made: SHA-256 of the raw bytes (a keyed MAC is for encrypted vaults, to come). */
  digest: ChunkDigest;
  /** Encryption parameters; null: the vault is not encrypted (the only kind format 2 writes yet). */
  encryption: null;
  createdAt: string;
}
