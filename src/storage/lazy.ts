import type { Readable } from 'node:stream';
import type { Condition, QueryOptions } from '../query/types.js';
import type { BatchOp, BlobInfo, BlobRange, BlobStore, Change, RecordStore, StoredRecord } from './types.js';

/**
 * A store whose backend module is loaded by `init()`, not at start-up: the drivers
 * of the network stores (pg, the AWS SDK) cost tens of MB of memory, and most
 * servers never use one of them. The URL is parsed before, so a bad URL still
 * fails at once.
 */
export class LazyRecordStore implements RecordStore {
  private inner: RecordStore | undefined;
  constructor(readonly kind: string, private readonly load: () => Promise<RecordStore>) {}

  async init(): Promise<void> {
    this.inner ??= await this.load();
    await this.inner.init();
  }

  private get s(): RecordStore {
    if (!this.inner) throw new Error(`The ${this.kind} store was used before init()`);
    return this.inner;
  }

  close(): Promise<void> { return this.inner ? this.inner.close() : Promise.resolve(); }
  create(o: string, t: string, r: StoredRecord): Promise<void> { return this.s.create(o, t, r); }
  get(o: string, t: string, id: string): Promise<StoredRecord | null> { return this.s.get(o, t, id); }
  replace(o: string, t: string, r: StoredRecord): Promise<boolean> { return this.s.replace(o, t, r); }
  put(o: string, t: string, r: StoredRecord): Promise<void> { return this.s.put(o, t, r); }
  delete(o: string, t: string, id: string): Promise<StoredRecord | null> { return this.s.delete(o, t, id); }
  query(o: string, t: string, w: Condition, opts: QueryOptions): Promise<StoredRecord[]> { return this.s.query(o, t, w, opts); }
  count(o: string, t: string, w: Condition): Promise<number> { return this.s.count(o, t, w); }
  batch(o: string, ops: BatchOp[]): Promise<void> { return this.s.batch(o, ops); }
  ensureIndex(o: string, t: string, f: string[][]): Promise<void> { return this.s.ensureIndex(o, t, f); }
  listTables(o: string): Promise<Array<{ table: string; count: number }>> { return this.s.listTables(o); }
  usage(o: string): Promise<{ records: number; bytes: number }> { return this.s.usage(o); }
  changes(o: string, since: number, limit: number): Promise<Change[]> { return this.s.changes(o, since, limit); }
  dropTable(o: string, t: string): Promise<number> { return this.s.dropTable(o, t); }
}

/** The blob-store counterpart of LazyRecordStore. */
export class LazyBlobStore implements BlobStore {
  private inner: BlobStore | undefined;
  constructor(readonly kind: string, private readonly load: () => Promise<BlobStore>) {}

  async init(): Promise<void> {
    this.inner ??= await this.load();
    await this.inner.init();
  }

  private get s(): BlobStore {
    if (!this.inner) throw new Error(`The ${this.kind} store was used before init()`);
    return this.inner;
  }

  close(): Promise<void> { return this.inner ? this.inner.close() : Promise.resolve(); }
  put(key: string, body: Readable | Buffer, options?: { contentType?: string; maxBytes?: number }): Promise<BlobInfo> { return this.s.put(key, body, options); }
  get(key: string, range?: BlobRange): Promise<Readable | null> { return this.s.get(key, range); }
  head(key: string): Promise<BlobInfo | null> { return this.s.head(key); }
  delete(key: string): Promise<boolean> { return this.s.delete(key); }
  deletePrefix(prefix: string): Promise<number> { return this.s.deletePrefix(prefix); }
  list(prefix: string): AsyncIterable<{ key: string; size: number }> { return this.s.list(prefix); }
}
