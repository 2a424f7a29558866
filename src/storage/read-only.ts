import type { Readable } from 'node:stream';
import type { BatchOp, BlobInfo, BlobRange, BlobStore, Change, RecordStore, StoredRecord } from './types.js';
import type { Condition, QueryOptions } from '../query/types.js';
import { FreeholdError } from '../core/errors.js';

function moving(): FreeholdError {
  return new FreeholdError('unavailable', 'This data is being moved to other storage; try again in a minute');
}

/** An owner's record store while their data moves: reads pass, every write is refused whole. */
export class ReadOnlyRecordStore implements RecordStore {
  constructor(private readonly inner: RecordStore) {}
  get kind(): string { return this.inner.kind; }
  init(): Promise<void> { return this.inner.init(); }
  close(): Promise<void> { return Promise.resolve(); }
  get(owner: string, table: string, id: string): Promise<StoredRecord | null> { return this.inner.get(owner, table, id); }
  query(owner: string, table: string, where: Condition, options: QueryOptions): Promise<StoredRecord[]> { return this.inner.query(owner, table, where, options); }
  count(owner: string, table: string, where: Condition): Promise<number> { return this.inner.count(owner, table, where); }
  listTables(owner: string): Promise<Array<{ table: string; count: number }>> { return this.inner.listTables(owner); }
  usage(owner: string): Promise<{ records: number; bytes: number }> { return this.inner.usage(owner); }
  changes(owner: string, sinceSeq: number, limit: number): Promise<Change[]> { return this.inner.changes(owner, sinceSeq, limit); }
  async create(_o: string, _t: string, _r: StoredRecord): Promise<void> { throw moving(); }
  async replace(_o: string, _t: string, _r: StoredRecord): Promise<boolean> { throw moving(); }
  async put(_o: string, _t: string, _r: StoredRecord): Promise<void> { throw moving(); }
  async delete(_o: string, _t: string, _id: string): Promise<StoredRecord | null> { throw moving(); }
  async batch(_o: string, _ops: BatchOp[]): Promise<void> { throw moving(); }
  async ensureIndex(_o: string, _t: string, _f: string[][]): Promise<void> { throw moving(); }
  async dropTable(_o: string, _t: string): Promise<number> { throw moving(); }
}

/** An owner's blob store while their data moves: reads pass, every write is refused. */
export class ReadOnlyBlobStore implements BlobStore {
  constructor(private readonly inner: BlobStore) {}
  get kind(): string { return this.inner.kind; }
  init(): Promise<void> { return this.inner.init(); }
  close(): Promise<void> { return Promise.resolve(); }
  get(key: string, range?: BlobRange): Promise<Readable | null> { return this.inner.get(key, range); }
  head(key: string): Promise<BlobInfo | null> { return this.inner.head(key); }
  list(prefix: string): AsyncIterable<{ key: string; size: number }> { return this.inner.list(prefix); }
  async put(_k: string, body: Readable | Buffer): Promise<BlobInfo> {
    if (!Buffer.isBuffer(body)) body.resume();
    throw moving();
  }
  async delete(_k: string): Promise<boolean> { throw moving(); }
  async deletePrefix(_p: string): Promise<number> { throw moving(); }
}
