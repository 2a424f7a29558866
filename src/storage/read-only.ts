import type { Readable } from 'node:stream';
import type { BatchOp, BlobInfo, BlobStore, RecordStore, RecordUpdate, StoredRecord } from './types.js';
import { FreeholdError } from '../core/errors.js';
import { DelegatingBlobStore, DelegatingRecordStore } from './delegating.js';

function moving(): FreeholdError {
  return new FreeholdError('unavailable', 'This data is being moved to other storage; try again in a minute');
}

/** An owner's record store while their data moves: reads pass, every write is refused whole. */
export class ReadOnlyRecordStore extends DelegatingRecordStore {
  constructor(private readonly store: RecordStore) { super(); }
  protected get inner(): RecordStore { return this.store; }
  override async create(_o: string, _t: string, _r: StoredRecord): Promise<void> { throw moving(); }
  override async replace(_o: string, _t: string, _r: StoredRecord): Promise<boolean> { throw moving(); }
  /** The general path it leaves to refuses the write (and still answers 404 for a missing record). */
  override async update(_o: string, _t: string, _id: string, _u: RecordUpdate): Promise<null> { return null; }
  override async updateWhere(): Promise<null> { return null; }
  override async deleteWhere(): Promise<null> { return null; }
  override async put(_o: string, _t: string, _r: StoredRecord): Promise<void> { throw moving(); }
  override async delete(_o: string, _t: string, _id: string): Promise<StoredRecord | null> { throw moving(); }
  override async batch(_o: string, _ops: BatchOp[]): Promise<void> { throw moving(); }
  override async ensureIndex(_o: string, _t: string, _f: string[][]): Promise<void> { throw moving(); }
  override async dropTable(_o: string, _t: string): Promise<number> { throw moving(); }
}

/** An owner's blob store while their data moves: reads pass, every write is refused. */
export class ReadOnlyBlobStore extends DelegatingBlobStore {
  constructor(private readonly store: BlobStore) { super(); }
  protected get inner(): BlobStore { return this.store; }
  override async put(_k: string, body: Readable | Buffer): Promise<BlobInfo> {
    if (!Buffer.isBuffer(body)) body.resume();
    throw moving();
  }
  override async delete(_k: string): Promise<boolean> { throw moving(); }
  override async deletePrefix(_p: string): Promise<number> { throw moving(); }
}
