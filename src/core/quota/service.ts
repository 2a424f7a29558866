import type { RecordStore, BlobStore, StoredRecord } from '../../storage/types.js';
import type { StoreRegistry } from '../../storage/registry.js';
import { KeyedLock } from '../../storage/key-lock.js';
import { FreeholdError } from '../errors.js';
import { isSystemTable, SYSTEM_OWNER } from '../system-tables.js';
import { QuotaBlobStore, QuotaRecordStore } from './stores.js';

/** Limits for one owner; 0 means unlimited. */
export interface Quota {
  bytes: number;
  records: number;
}

export interface Usage {
  records: number;
  /** Record JSON plus files and apps. */
  bytes: number;
}

const QUOTA_TABLE = 'system.quotas';
/** Exact usage is re-read this often; in between, this process adds its own writes. */
const RECORDS_REFRESH_MS = 30_000;
const BLOBS_REFRESH_MS = 5 * 60_000;
const QUOTA_CACHE_MS = 5_000;

interface Tally {
  records: number;
  recordBytes: number;
  recordsAt: number;
  blobBytes: number;
  blobsAt: number;
  /** The exact re-read under way, if any: one at a time per owner. */
  recordsRead?: Promise<void>;
  blobsRead?: Promise<void>;
  /**
   * Everything this process has counted (added()), as running totals. A re-read adds to
   * its result what was counted while it ran, which it may have missed (a write it did
   * see is then counted twice until the next re-read: too many, never too few).
   */
  counted: Counted;
}

interface Counted {
  records: number;
  recordBytes: number;
  blobBytes: number;
}

export const recordBytes = (r: StoredRecord): number => Buffer.byteLength(JSON.stringify(r));

export function quotaExceeded(what: string): FreeholdError {
  return new FreeholdError('quota_exceeded', `Storage quota exceeded: ${what}`);
}

/**
 * Per-owner storage quotas (records and bytes). Every write is admitted before it
 * touches a store, so a write that would cross a limit is refused whole (507) and
 * nothing is half written. Usage is read exactly from the stores now and then and
 * kept current in between from this process's own writes; with several processes
 * each may admit the room left until its next refresh (README "Several processes").
 */
export class QuotaService {
  private readonly tallies = new Map<string, Tally>();
  private readonly quotas = new Map<string, { quota: Quota; at: number }>();
  private readonly fileWrites = new KeyedLock();
  /** Growth admitted by reserve() whose writes are still under way, per owner. */
  private readonly pending = new Map<string, { records: number; bytes: number }>();

  constructor(private readonly stores: StoreRegistry, private readonly defaults: Quota) {}

  async quotaOf(owner: string): Promise<Quota> {
    const cached = this.quotas.get(owner);
    if (cached && Date.now() - cached.at < QUOTA_CACHE_MS) return cached.quota;
    const r = await this.stores.host.get(SYSTEM_OWNER, QUOTA_TABLE, owner);
    const quota = r ? { bytes: Number(r.bytes) || 0, records: Number(r.records) || 0 } : this.defaults;
    this.quotas.set(owner, { quota, at: Date.now() });
    return quota;
  }

  /** Sets an owner's own limits (null: back to the host's defaults). */
  async setQuota(owner: string, quota: Quota | null): Promise<void> {
    if (quota === null) {
      await this.stores.host.delete(SYSTEM_OWNER, QUOTA_TABLE, owner);
    } else {
      const now = Date.now();
      const old = await this.stores.host.get(SYSTEM_OWNER, QUOTA_TABLE, owner);
      await this.stores.host.put(SYSTEM_OWNER, QUOTA_TABLE, {
        _id: owner, _date_created: old?._date_created ?? now, _date_modified: Math.max(now, (old?._date_modified ?? 0) + 1), ...quota,
      });
    }
    this.quotas.delete(owner);
  }

  private async tally(owner: string): Promise<Tally> {
    let t = this.tallies.get(owner);
    const now = Date.now();
    if (!t) {
      t = { records: 0, recordBytes: 0, recordsAt: 0, blobBytes: 0, blobsAt: 0, counted: { records: 0, recordBytes: 0, blobBytes: 0 } };
      this.tallies.set(owner, t);
    }
    const tally = t;
    if (now - t.recordsAt > RECORDS_REFRESH_MS) {
      t.recordsRead ??= this.reread(tally, async () => {
        const store = this.stores.records(owner);
        const [u, tables] = await Promise.all([store.usage(owner), store.listTables(owner)]);
        // The owner's records are those of apps: the server's own (app installs, grants) count in bytes only.
        const serverRecords = tables.filter((t) => isSystemTable(t.table)).reduce((n, t) => n + t.count, 0);
        return (d) => Object.assign(tally, { records: u.records - serverRecords + d.records, recordBytes: u.bytes + d.recordBytes, recordsAt: now });
      }).finally(() => (tally.recordsRead = undefined));
      await t.recordsRead;
    }
    if (now - t.blobsAt > BLOBS_REFRESH_MS) {
      t.blobsRead ??= this.reread(tally, async () => {
        let bytes = 0;
        for await (const { size } of this.stores.blobs(owner).list(owner)) bytes += size;
        return (d) => Object.assign(tally, { blobBytes: bytes + d.blobBytes, blobsAt: now });
      }).finally(() => (tally.blobsRead = undefined));
      await t.blobsRead;
    }
    return t;
  }

  /** Runs one exact re-read, then applies its result with what was counted meanwhile (Tally.counted). */
  private async reread(t: Tally, read: () => Promise<(meanwhile: Counted) => void>): Promise<void> {
    const before = { ...t.counted };
    const apply = await read();
    apply({ records: t.counted.records - before.records, recordBytes: t.counted.recordBytes - before.recordBytes, blobBytes: t.counted.blobBytes - before.blobBytes });
  }

  async usage(owner: string): Promise<Usage> {
    const t = await this.tally(owner);
    return { records: t.records, bytes: t.recordBytes + t.blobBytes };
  }

  /** Refuses (507) what reserve() would refuse, reserving nothing: a check ahead of a bulk write. */
  async admit(owner: string, records: number, bytes: number): Promise<void> {
    (await this.reserve(owner, records, bytes))(false);
  }

  /**
   * A limited owner's file writes one at a time (their size is known only once stored,
   * so each may use all the room left; side by side, each would be given the same room).
   */
  serialFiles<T>(owner: string, write: () => Promise<T>): Promise<T> {
    return this.fileWrites.run(owner, write);
  }

  /**
   * Refuses (507) a write that would add `records` records and `bytes` bytes past the
   * owner's limits, counting the writes admitted but not yet done; otherwise reserves
   * that much until the returned `settle` is called: `settle(true)` once written (it is
   * then counted as the owner's), `settle(false)` when the write failed. Checking and
   * reserving happen with no wait between them, so concurrent writes cannot all pass
   * against the same count (an audit's 200 concurrent creates into room for 50 had
   * 117–200 accepted when the check and the count were apart).
   */
  async reserve(owner: string, records: number, bytes: number): Promise<(written: boolean) => void> {
    const q = await this.quotaOf(owner);
    if (q.records === 0 && q.bytes === 0) return () => undefined;
    const t = await this.tally(owner);
    const held = this.pending.get(owner) ?? { records: 0, bytes: 0 };
    const usedRecords = t.records + held.records;
    const usedBytes = t.recordBytes + t.blobBytes + held.bytes;
    if (q.records > 0 && records > 0 && usedRecords + records > q.records) throw quotaExceeded(`at most ${q.records} records`);
    if (q.bytes > 0 && bytes > 0 && usedBytes + bytes > q.bytes) throw quotaExceeded(`at most ${q.bytes} bytes`);
    // Only growth is held: a write that frees room gives it back once it has happened.
    const hold = { records: Math.max(0, records), bytes: Math.max(0, bytes) };
    held.records += hold.records;
    held.bytes += hold.bytes;
    this.pending.set(owner, held);
    let settled = false;
    return (written) => {
      if (settled) return;
      settled = true;
      held.records -= hold.records;
      held.bytes -= hold.bytes;
      if (held.records === 0 && held.bytes === 0 && this.pending.get(owner) === held) this.pending.delete(owner);
      if (written) this.added(owner, records, bytes);
    };
  }

  /** Bytes an owner may still add (writes under way held back), or Infinity. */
  async room(owner: string): Promise<number> {
    const q = await this.quotaOf(owner);
    if (q.bytes === 0) return Infinity;
    const used = (await this.usage(owner)).bytes + (this.pending.get(owner)?.bytes ?? 0);
    return Math.max(0, q.bytes - used);
  }

  /** Counts a write this process made. */
  added(owner: string, records: number, recordBytesDelta: number, blobBytesDelta = 0): void {
    const t = this.tallies.get(owner);
    if (!t) return;
    t.records += records;
    t.recordBytes += recordBytesDelta;
    t.blobBytes += blobBytesDelta;
    t.counted.records += records;
    t.counted.recordBytes += recordBytesDelta;
    t.counted.blobBytes += blobBytesDelta;
  }

  /**
   * Runs an unlimited owner's write, not measured (that would cost a read of the old
   * version per write, for no limit): once it is done, the usage shown is read exactly
   * again the next time it is asked for, instead of staying as it was for up to the
   * refresh interval.
   */
  async unmeasured<T>(owner: string, what: 'records' | 'blobs', write: Promise<T>): Promise<T> {
    const result = await write;
    const t = this.tallies.get(owner);
    if (t && what === 'records') t.recordsAt = 0;
    else if (t) t.blobsAt = 0;
    return result;
  }

  /** Forgets what we know of an owner's usage (after bulk deletes), so the next check reads it exactly. */
  invalidate(owner: string): void {
    this.tallies.delete(owner);
  }

  /** Whether an owner has any limit at all; the unlimited case skips every extra read. */
  async limited(owner: string): Promise<boolean> {
    const q = await this.quotaOf(owner);
    return q.bytes > 0 || q.records > 0;
  }

  wrapRecords(owner: string, inner: RecordStore): RecordStore {
    return new QuotaRecordStore(this, owner, inner);
  }

  wrapBlobs(owner: string, inner: BlobStore): BlobStore {
    return new QuotaBlobStore(this, owner, inner);
  }
}
