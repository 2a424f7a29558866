import type { Readable } from 'node:stream';
import type { Condition, QueryOptions } from '../query/types.js';

/**
 * A record as stored: the client's fields plus the reserved fields the server sets.
 * `_id`, `_date_created` and `_date_modified` are always present.
 */
export interface StoredRecord {
  _id: string;
  _date_created: number;
  _date_modified: number;
  [field: string]: unknown;
}

/** What RecordStore.update writes. */
export interface RecordUpdate {
  /** The new fields; they win over kept ones. Never `_id`, `_date_created` or `_date_modified`. */
  fields: Record<string, unknown>;
  /** The stored record's fields that stay: every one (a merge), or only these. */
  keep: 'all' | readonly string[];
  /** The new `_date_modified`, unless the stored one + 1 is later. */
  modified: number;
  /** Most UTF-8 bytes the new record's JSON.stringify may take. */
  maxBytes: number;
  /**
   * The same new record, built in JS from the stored one: for stores that apply the
   * update in their own process (SQLite inside its write transaction, flat files inside
   * their journalled unit) rather than in a database server. Stores that build it in
   * SQL ignore it.
   */
  build(stored: StoredRecord): StoredRecord;
}

/** One write in an atomic batch. */
export type BatchOp =
  /** Fails the whole batch with FreeholdError('conflict') if the id exists. */
  | { kind: 'create'; table: string; record: StoredRecord }
  | { kind: 'put'; table: string; record: StoredRecord }
  | { kind: 'delete'; table: string; id: string };

export interface Change {
  seq: number;
  table: string;
  id: string;
  op: 'put' | 'delete';
  at: number;
}

/**
 * Collections of JSON records per (owner, app table). Backends know nothing of apps,
 * permissions or HTTP; they store and find records. Every method is atomic on its own;
 * `batch` makes several writes atomic together. Each write appends to the owner's
 * change sequence (for change feeds, sync and incremental export).
 */
export interface RecordStore {
  readonly kind: string;
  /** Creates schema if needed. Idempotent. */
  init(): Promise<void>;
  close(): Promise<void>;

  /** Inserts a new record; throws FreeholdError('conflict') if the id exists in the table. */
  create(owner: string, table: string, record: StoredRecord): Promise<void>;
  get(owner: string, table: string, id: string): Promise<StoredRecord | null>;
  /** Replaces an existing record whole; returns false (and writes nothing) if it does not exist. */
  replace(owner: string, table: string, record: StoredRecord): Promise<boolean>;
  /**
   * Optional: rewrites an existing record in one step, with no read before the write and
   * no other write of the record between the two (so two merges at once both land). The
   * new record is `fields` over the stored record's `keep` fields, with `_id` and
   * `_date_created` as stored and `_date_modified` = max(`modified`, stored + 1).
   * Resolves to the new dates, or to null having written nothing: when there is no such
   * record, or when the new record might be over `maxBytes` (a store may judge that
   * roughly, erring large). The caller then takes the general path, `get` and `replace`,
   * which decides both exactly.
   */
  update?(owner: string, table: string, id: string, change: RecordUpdate): Promise<{ _date_created: number; _date_modified: number } | null>;
  /**
   * Optional: rewrites every record of `table` matching `where` (at most `limit`) in one
   * step, finding and writing them with no other write between, so a write racing the
   * bulk update is neither lost under it nor missed by it. `build` makes each new record
   * from the stored one and may throw to refuse it, which writes nothing at all.
   * Resolves to the number rewritten, or to null having done nothing, when the caller
   * must take the general path: a query, then a batch.
   */
  updateWhere?(owner: string, table: string, where: Condition, limit: number, build: (stored: StoredRecord) => StoredRecord): Promise<number | null>;
  /** Optional: deletes the records matching `where` (at most `limit`) in one step, as updateWhere does; how many, or null. */
  deleteWhere?(owner: string, table: string, where: Condition, limit: number): Promise<number | null>;
  /** Inserts or replaces. */
  put(owner: string, table: string, record: StoredRecord): Promise<void>;
  /** Deletes one record, returning what was stored, or null if absent. */
  delete(owner: string, table: string, id: string): Promise<StoredRecord | null>;

  query(owner: string, table: string, where: Condition, options: QueryOptions): Promise<StoredRecord[]>;
  /**
   * Optional fast paths for stores that keep records as JSON text: `get` and `query`
   * answered as the JSON text of the record (or of the array of records), so a read
   * goes to the client without a parse and a re-serialisation. Must describe exactly
   * what `get`/`query` return. Callers use the helpers in record-json.ts, which fall
   * back to `get`/`query` + JSON.stringify for stores without them.
   */
  getJson?(owner: string, table: string, id: string): Promise<string | null>;
  queryJson?(owner: string, table: string, where: Condition, options: QueryOptions): Promise<string>;
  /**
   * Optional: a value that changes whenever another connection or process commits a
   * change to a system record (SYSTEM_OWNER's), read synchronously and cheaply;
   * undefined when the store cannot tell. Lets a process trust what it read of those
   * earlier (the token cache) exactly as long as nobody else changed them. A store may
   * move it more often: SQLite moves it for any commit by another connection, and
   * answers from a read made earlier in the same event-loop turn; PostgreSQL moves it
   * when the notification of such a commit arrives, a moment after it.
   */
  changeStamp?(): number | undefined;
  count(owner: string, table: string, where: Condition): Promise<number>;
  /** Applies every op or none. */
  batch(owner: string, ops: BatchOp[]): Promise<void>;

  /** Creates an index on the given fields of one table (app-declared indexes). Idempotent. */
  ensureIndex(owner: string, table: string, fields: string[][]): Promise<void>;
  /** The owner's tables with their record counts. */
  listTables(owner: string): Promise<Array<{ table: string; count: number }>>;
  /** How many records the owner has, and roughly how many bytes they take (their JSON), for quotas. */
  usage(owner: string): Promise<{ records: number; bytes: number }>;
  /** Changes after `sinceSeq`, oldest first. */
  changes(owner: string, sinceSeq: number, limit: number): Promise<Change[]>;
  /** Removes every record of a table (app removal). */
  dropTable(owner: string, table: string): Promise<number>;
}

export interface BlobInfo {
  size: number;
  /** Modification time in epoch ms. */
  modified: number;
  /** Content hash (hex sha256) where the backend knows it, for ETags. */
  etag: string;
  contentType?: string;
}

export interface BlobRange {
  start: number;
  /** Inclusive end offset. */
  end: number;
}

/**
 * Byte streams by key. Keys are `/`-separated paths made by core code (never raw
 * client input); backends still refuse keys that would escape their root.
 */
export interface BlobStore {
  readonly kind: string;
  init(): Promise<void>;
  close(): Promise<void>;
  /** Streams `body` into the store; the blob appears only when complete (no partial blobs). */
  put(key: string, body: Readable | Buffer, options?: { contentType?: string; maxBytes?: number }): Promise<BlobInfo>;
  get(key: string, range?: BlobRange): Promise<Readable | null>;
  head(key: string): Promise<BlobInfo | null>;
  delete(key: string): Promise<boolean>;
  /** Deletes every blob under a prefix, returning how many. */
  deletePrefix(prefix: string): Promise<number>;
  list(prefix: string): AsyncIterable<{ key: string; size: number }>;
  /**
   * Removes what writes killed mid-way left behind in the store itself (temp files older
   * than `olderThanMs`, which no listing shows), returning how many. Stores whose writes
   * leave nothing behind (or that their service cleans, as S3 lifecycle rules do) need not.
   */
  sweepLeftovers?(olderThanMs: number): Promise<number>;
}
