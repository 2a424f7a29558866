import type { Readable } from 'node:stream';
import type { Condition } from '../../query/types.js';
import type { BatchOp, BlobInfo, BlobStore, RecordStore, RecordUpdate, StoredRecord } from '../../storage/types.js';
import { DelegatingBlobStore, DelegatingRecordStore } from '../../storage/delegating.js';
import { FreeholdError } from '../errors.js';
import { quotaExceeded, recordBytes, type QuotaService } from './service.js';
import { isSystemTable } from '../system-tables.js';

/**
 * An owner's record store seen through their quota: each write is admitted first
 * (refused whole, 507, when it would cross a limit; its growth held while it runs),
 * then counted. Reads pass.
 */
export class QuotaRecordStore extends DelegatingRecordStore {
  constructor(private readonly quota: QuotaService, private readonly owner: string, private readonly store: RecordStore) { super(); }
  protected get inner(): RecordStore { return this.store; }

  /** What a set of writes adds: new records, and the byte difference (old versions read only when limited). */
  private async delta(ops: BatchOp[]): Promise<{ records: number; bytes: number }> {
    let records = 0;
    let bytes = 0;
    for (const op of ops) {
      const old = await this.inner.get(this.owner, op.table, op.kind === 'delete' ? op.id : op.record._id);
      // The server's own records (an app's install, a grant) take bytes but no record of the owner's quota.
      const counts = isSystemTable(op.table) ? 0 : 1;
      if (op.kind === 'delete') {
        if (old) { records -= counts; bytes -= recordBytes(old); }
      } else {
        if (!old) records += counts;
        bytes += recordBytes(op.record) - (old ? recordBytes(old) : 0);
      }
    }
    return { records, bytes };
  }

  private async guarded<T>(ops: BatchOp[], write: () => Promise<T>): Promise<T> {
    if (!(await this.quota.limited(this.owner))) return this.quota.unmeasured(this.owner, 'records', write());
    const d = await this.delta(ops);
    const settle = await this.quota.reserve(this.owner, d.records, d.bytes);
    let written = false;
    try {
      const result = await write();
      written = true;
      return result;
    } finally {
      settle(written);
    }
  }

  override create(o: string, t: string, r: StoredRecord): Promise<void> { return this.guarded([{ kind: 'create', table: t, record: r }], () => this.inner.create(o, t, r)); }
  override replace(o: string, t: string, r: StoredRecord): Promise<boolean> { return this.guarded([{ kind: 'put', table: t, record: r }], () => this.inner.replace(o, t, r)); }
  override put(o: string, t: string, r: StoredRecord): Promise<void> { return this.guarded([{ kind: 'put', table: t, record: r }], () => this.inner.put(o, t, r)); }
  /** A limited owner's update takes the general path, where the new record's size is known before it is admitted. */
  override async update(o: string, t: string, id: string, u: RecordUpdate): Promise<{ _date_created: number; _date_modified: number } | null> {
    if (!this.inner.update || (await this.quota.limited(this.owner))) return null;
    return this.quota.unmeasured(this.owner, 'records', this.inner.update(o, t, id, u));
  }
  override batch(o: string, ops: BatchOp[]): Promise<void> { return this.guarded(ops, () => this.inner.batch(o, ops)); }
  /**
   * In one step for a limited owner too: the store builds every new record before it
   * writes any, and `build` refuses (507) the one with which the bulk update's growth
   * passes the bytes left, so the store writes none of them. It adds no record.
   */
  override async updateWhere(o: string, t: string, w: Condition, limit: number, build: (stored: StoredRecord) => StoredRecord): Promise<number | null> {
    if (!this.inner.updateWhere) return null;
    if (!(await this.quota.limited(this.owner))) return this.quota.unmeasured(this.owner, 'records', this.inner.updateWhere(o, t, w, limit, build));
    const room = await this.quota.room(this.owner);
    const quota = await this.quota.quotaOf(this.owner);
    let growth = 0;
    const n = await this.inner.updateWhere(o, t, w, limit, (stored) => {
      const record = build(stored);
      growth += recordBytes(record) - recordBytes(stored);
      if (growth > room) throw quotaExceeded(`at most ${quota.bytes} bytes`);
      return record;
    });
    if (n !== null) this.quota.added(this.owner, 0, growth);
    return n;
  }
  /** The sizes of what it removed are not known here: usage is counted afresh, as after dropTable. */
  override async deleteWhere(o: string, t: string, w: Condition, limit: number): Promise<number | null> {
    if (!this.inner.deleteWhere) return null;
    const n = await this.inner.deleteWhere(o, t, w, limit);
    if (n) this.quota.invalidate(this.owner);
    return n;
  }

  override async delete(o: string, t: string, id: string): Promise<StoredRecord | null> {
    const old = await this.inner.delete(o, t, id);
    if (old) this.quota.added(this.owner, -1, -recordBytes(old));
    return old;
  }

  override async dropTable(o: string, t: string): Promise<number> {
    const n = await this.inner.dropTable(o, t);
    this.quota.invalidate(this.owner);
    return n;
  }
}

/** An owner's blob store seen through their quota: a file may use only the bytes left. */
export class QuotaBlobStore extends DelegatingBlobStore {
  constructor(private readonly quota: QuotaService, private readonly owner: string, private readonly store: BlobStore) { super(); }
  protected get inner(): BlobStore { return this.store; }

  override async put(key: string, body: Readable | Buffer, options: { contentType?: string; maxBytes?: number } = {}): Promise<BlobInfo> {
    if (!(await this.quota.limited(this.owner))) return this.quota.unmeasured(this.owner, 'blobs', this.inner.put(key, body, options));
    return this.quota.serialFiles(this.owner, () => this.limitedPut(key, body, options));
  }

  private async limitedPut(key: string, body: Readable | Buffer, options: { contentType?: string; maxBytes?: number }): Promise<BlobInfo> {
    const old = await this.inner.head(key);
    // Replacing a file frees its old bytes; the new one may use those plus what is left.
    const room = (await this.quota.room(this.owner)) + (old?.size ?? 0);
    const limit = Math.min(options.maxBytes ?? Infinity, room);
    try {
      const info = await this.inner.put(key, body, { ...options, ...(Number.isFinite(limit) ? { maxBytes: limit } : {}) });
      this.quota.added(this.owner, 0, 0, info.size - (old?.size ?? 0));
      return info;
    } catch (err) {
      // The store's own size cap tripped on the quota's limit, not the caller's.
      if (err instanceof FreeholdError && err.code === 'too_large' && limit === room && room < (options.maxBytes ?? Infinity)) {
        throw quotaExceeded('no room left for this file');
      }
      throw err;
    }
  }

  override async delete(key: string): Promise<boolean> {
    if (!(await this.quota.limited(this.owner))) return this.quota.unmeasured(this.owner, 'blobs', this.inner.delete(key));
    const old = await this.inner.head(key);
    const gone = await this.inner.delete(key);
    if (gone && old) this.quota.added(this.owner, 0, 0, -old.size);
    return gone;
  }

  override async deletePrefix(prefix: string): Promise<number> {
    const n = await this.inner.deletePrefix(prefix);
    this.quota.invalidate(this.owner);
    return n;
  }
}
