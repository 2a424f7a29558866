import type { Readable } from 'node:stream';
import type { Condition, QueryOptions } from '../query/types.js';
import { getRecordJson, queryRecordsJson } from './record-json.js';
import type { BatchOp, BlobInfo, BlobRange, BlobStore, Change, RecordStore, RecordUpdate, StoredRecord } from './types.js';

/**
 * A record store that hands every call to another one. Views of a store (read-only
 * while an owner moves, quota-checked, loaded on first use) extend it and override
 * only what they change. `close` does nothing: a view never owns the store it wraps.
 */
export abstract class DelegatingRecordStore implements RecordStore {
  protected abstract get inner(): RecordStore;
  get kind(): string { return this.inner.kind; }
  init(): Promise<void> { return this.inner.init(); }
  close(): Promise<void> { return Promise.resolve(); }
  create(o: string, t: string, r: StoredRecord): Promise<void> { return this.inner.create(o, t, r); }
  get(o: string, t: string, id: string): Promise<StoredRecord | null> { return this.inner.get(o, t, id); }
  replace(o: string, t: string, r: StoredRecord): Promise<boolean> { return this.inner.replace(o, t, r); }
  /** Null ("take the general path") when the inner store has no single-step update. */
  update(o: string, t: string, id: string, u: RecordUpdate): Promise<{ _date_created: number; _date_modified: number } | null> {
    return this.inner.update ? this.inner.update(o, t, id, u) : Promise.resolve(null);
  }
  /** Null ("take the general path") when the inner store has no single-step bulk update or delete. */
  updateWhere(o: string, t: string, w: Condition, limit: number, build: (stored: StoredRecord) => StoredRecord): Promise<number | null> {
    return this.inner.updateWhere ? this.inner.updateWhere(o, t, w, limit, build) : Promise.resolve(null);
  }
  deleteWhere(o: string, t: string, w: Condition, limit: number): Promise<number | null> {
    return this.inner.deleteWhere ? this.inner.deleteWhere(o, t, w, limit) : Promise.resolve(null);
  }
  put(o: string, t: string, r: StoredRecord): Promise<void> { return this.inner.put(o, t, r); }
  delete(o: string, t: string, id: string): Promise<StoredRecord | null> { return this.inner.delete(o, t, id); }
  query(o: string, t: string, w: Condition, opts: QueryOptions): Promise<StoredRecord[]> { return this.inner.query(o, t, w, opts); }
  getJson(o: string, t: string, id: string): Promise<string | null> { return getRecordJson(this.inner, o, t, id); }
  queryJson(o: string, t: string, w: Condition, opts: QueryOptions): Promise<string> { return queryRecordsJson(this.inner, o, t, w, opts); }
  changeStamp(): number | undefined { return this.inner.changeStamp?.(); }
  count(o: string, t: string, w: Condition): Promise<number> { return this.inner.count(o, t, w); }
  batch(o: string, ops: BatchOp[]): Promise<void> { return this.inner.batch(o, ops); }
  ensureIndex(o: string, t: string, f: string[][]): Promise<void> { return this.inner.ensureIndex(o, t, f); }
  listTables(o: string): Promise<Array<{ table: string; count: number }>> { return this.inner.listTables(o); }
  usage(o: string): Promise<{ records: number; bytes: number }> { return this.inner.usage(o); }
  changes(o: string, since: number, limit: number): Promise<Change[]> { return this.inner.changes(o, since, limit); }
  dropTable(o: string, t: string): Promise<number> { return this.inner.dropTable(o, t); }
}

/** The blob-store counterpart of DelegatingRecordStore. */
export abstract class DelegatingBlobStore implements BlobStore {
  protected abstract get inner(): BlobStore;
  get kind(): string { return this.inner.kind; }
  init(): Promise<void> { return this.inner.init(); }
  close(): Promise<void> { return Promise.resolve(); }
  put(key: string, body: Readable | Buffer, options?: { contentType?: string; maxBytes?: number }): Promise<BlobInfo> { return this.inner.put(key, body, options); }
  get(key: string, range?: BlobRange): Promise<Readable | null> { return this.inner.get(key, range); }
  head(key: string): Promise<BlobInfo | null> { return this.inner.head(key); }
  delete(key: string): Promise<boolean> { return this.inner.delete(key); }
  deletePrefix(prefix: string): Promise<number> { return this.inner.deletePrefix(prefix); }
  list(prefix: string): AsyncIterable<{ key: string; size: number }> { return this.inner.list(prefix); }
  sweepLeftovers(olderThanMs: number): Promise<number> { return this.inner.sweepLeftovers?.(olderThanMs) ?? Promise.resolve(0); }
}
