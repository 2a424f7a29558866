import type { BlobStore, RecordStore, StoredRecord } from './types.js';
import { openBlobStore, openRecordStore } from './urls.js';
import { ReadOnlyBlobStore, ReadOnlyRecordStore } from './read-only.js';
import type { StoreConnectOptions } from './connect.js';
import { unreachableBlobs, unreachableRecords } from './unreachable.js';

/** Where the host keeps its own state; owners never write here through CEPS. */
const HOST_OWNER = '_system';
/** One record per owner with their own stores: `{ _id: owner, records, blobs, state, previous? }`. */
export const STORAGE_TABLE = 'system.storage';

export type OwnerStorageState = 'active' | 'migrating';

export interface OwnerStorage {
  records: string;
  blobs: string;
  state: OwnerStorageState;
  /** The stores the owner left by migrating; kept until the owner confirms. */
  previous?: { records: string; blobs: string };
  /** While migrating: where the data is going (a rerun resumes towards the same target). */
  target?: { records: string; blobs: string };
  /**
   * Which of `records` and `blobs` the owner chose themselves (FREEHOLD_OWNER_STORAGE),
   * not the admin: the host's rules for owners' stores apply to those each time they are
   * opened and at each connection (RegistryOptions.ownerChosen).
   */
  ownerChosen?: string[];
}

interface StorageRecord extends StoredRecord, OwnerStorage {}

export interface StoreDecorator {
  records(owner: string, store: RecordStore): RecordStore;
  blobs(owner: string, store: BlobStore): BlobStore;
}

export interface RegistryOptions {
  hostRecordsUrl: string;
  hostBlobsUrl: string;
  /** How often to look for storage changes made by other processes (ms); 0 turns polling off. */
  pollMs?: number;
  /**
   * How stores an owner chose are opened while owners' stores must be on public
   * addresses: `check` looks at the URL again before opening (the host's rules may have
   * changed since the owner chose it), and the store's connections resolve names with
   * `connect` (a name can point elsewhere later than the check). Absent: opened as any other.
   */
  ownerChosen?: { check(url: string): Promise<void>; connect: StoreConnectOptions };
  /** How long an owner's stores that could not be opened wait before the next try (ms; default 10 s). */
  reopenMs?: number;
  /** Told when an owner's stores cannot be opened at start (their requests answer 503 until they open). */
  onUnreachable?: (owner: string, error: unknown) => void;
}

const DEFAULT_REOPEN_MS = 10_000;

/** An owner whose stores could not be opened at start (their setting is in `owners`): when to try again. */
interface Unreachable {
  retryAt: number;
  reopening?: Promise<void>;
}

/**
 * Which stores hold which owner's data ("bring your own storage"). Owners without a
 * setting use the host's stores. Settings live in the host store, so every process
 * sharing it agrees; each process follows changes through the host's change log
 * (polled), and an owner whose data is being moved is read-only everywhere until
 * the switch (writes answer 503), so no write can land in a store being left.
 */
export class StoreRegistry {
  private readonly owners = new Map<string, OwnerStorage>();
  private readonly recordStores = new Map<string, RecordStore>();
  private readonly blobStores = new Map<string, BlobStore>();
  /** Owners whose stores did not open at start; every call to them fails with 503 meanwhile (unreachable.ts). */
  private readonly unreachable = new Map<string, Unreachable>();
  private lastSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(readonly host: RecordStore, readonly hostBlobs: BlobStore, private readonly opts: RegistryOptions = { hostRecordsUrl: '', hostBlobsUrl: '' }) {
    if (opts.hostRecordsUrl) this.recordStores.set(opts.hostRecordsUrl, host);
    if (opts.hostBlobsUrl) this.blobStores.set(opts.hostBlobsUrl, hostBlobs);
  }

  /** Loads every owner's setting and starts following changes. */
  async start(): Promise<void> {
    // Note where the change log stands, read the whole table, then follow the log from there.
    this.lastSeq = await this.currentSeq();
    const rows = (await this.host.query(HOST_OWNER, STORAGE_TABLE, { op: 'true' }, { sort: [], skip: 0, limit: 1_000_000 })) as StorageRecord[];
    for (const r of rows) {
      try {
        await this.apply(r._id, r);
      } catch (error) {
        // One owner's stores (a server down, a store the host's rules no longer allow) stop neither the start nor anyone else.
        this.owners.set(r._id, settingOf(r));
        this.unreachable.set(r._id, { retryAt: Date.now() + this.reopenMs });
        this.opts.onUnreachable?.(r._id, error);
      }
    }
    const pollMs = this.opts.pollMs ?? 1000;
    if (pollMs > 0) {
      this.timer = setInterval(() => {
        void this.poll().catch(() => undefined);
        for (const owner of this.unreachable.keys()) this.reopen(owner);
      }, pollMs);
      this.timer.unref();
    }
  }

  private async currentSeq(): Promise<number> {
    let seq = 0;
    for (;;) {
      const page = await this.host.changes(HOST_OWNER, seq, 10_000);
      if (page.length === 0) return seq;
      seq = page[page.length - 1]!.seq;
    }
  }

  /** Applies storage changes made by any process since the last look. */
  poll(): Promise<void> {
    this.polling ??= (async () => {
      try {
        for (;;) {
          const page = await this.host.changes(HOST_OWNER, this.lastSeq, 1000);
          if (page.length === 0) return;
          for (const c of page) {
            if (c.table === STORAGE_TABLE) {
              const r = (await this.host.get(HOST_OWNER, STORAGE_TABLE, c.id)) as StorageRecord | null;
              await this.apply(c.id, r);
            }
            this.lastSeq = c.seq;
          }
        }
      } finally {
        this.polling = undefined;
      }
    })();
    return this.polling;
  }

  private async apply(owner: string, r: OwnerStorage | null): Promise<void> {
    if (!r) {
      this.owners.delete(owner);
      this.unreachable.delete(owner);
      return;
    }
    // Open (and create the schema of) the stores before any request is routed to them.
    await this.openOwnerStores(r);
    this.owners.set(owner, settingOf(r));
    this.unreachable.delete(owner);
  }

  private get reopenMs(): number {
    return this.opts.reopenMs ?? DEFAULT_REOPEN_MS;
  }

  /** Tries again to open the stores of an owner whose stores did not open, once `reopenMs` has passed since the last try. */
  private reopen(owner: string): void {
    const u = this.unreachable.get(owner);
    const storage = this.owners.get(owner);
    if (!u || !storage || u.reopening || Date.now() < u.retryAt) return;
    u.reopening = this.openOwnerStores(storage).then(() => {
      // Unless a newer setting (polled meanwhile) took this one's place: then that one stands.
      if (this.unreachable.get(owner) === u) this.unreachable.delete(owner);
    }, () => {
      u.retryAt = Date.now() + this.reopenMs;
      u.reopening = undefined;
    });
  }

  /**
   * Opens an owner's stores, those the owner chose under the host's rules for them
   * (RegistryOptions.ownerChosen): checked as this process opens them, once.
   */
  async openOwnerStores(s: { records: string; blobs: string; ownerChosen?: string[] }): Promise<void> {
    const rules = (url: string) => (s.ownerChosen?.includes(url) ? this.opts.ownerChosen : undefined);
    if (!this.recordStores.has(s.records)) await rules(s.records)?.check(s.records);
    if (!this.blobStores.has(s.blobs)) await rules(s.blobs)?.check(s.blobs);
    await this.openRecords(s.records, rules(s.records)?.connect);
    await this.openBlobs(s.blobs, rules(s.blobs)?.connect);
  }

  /** The store at `url`, opened once per process: `connect` applies only if this opens it. */
  async openRecords(url: string, connect?: StoreConnectOptions): Promise<RecordStore> {
    let store = this.recordStores.get(url);
    if (!store) {
      store = openRecordStore(url, connect);
      await initOrClose(store);
      this.recordStores.set(url, store);
    }
    return store;
  }

  async openBlobs(url: string, connect?: StoreConnectOptions): Promise<BlobStore> {
    let store = this.blobStores.get(url);
    if (!store) {
      store = openBlobStore(url, connect);
      await initOrClose(store);
      this.blobStores.set(url, store);
    }
    return store;
  }

  /**
   * Lets the domain see every owner's stores through its own rules (quotas) without
   * the storage layer knowing them.
   */
  decorator: StoreDecorator | undefined;

  /** The owner's record store; read-only while their data is being moved. */
  records(owner: string): RecordStore {
    const s = this.owners.get(owner);
    let store = s ? this.recordStores.get(s.records) : this.host;
    if (!store) {
      this.reopen(owner);
      store = unreachableRecords;
    }
    if (s?.state === 'migrating') store = new ReadOnlyRecordStore(store);
    return this.decorator ? this.decorator.records(owner, store) : store;
  }

  /** The owner's blob store; read-only while their data is being moved. */
  blobs(owner: string): BlobStore {
    const s = this.owners.get(owner);
    let store = s ? this.blobStores.get(s.blobs) : this.hostBlobs;
    if (!store) {
      this.reopen(owner);
      store = unreachableBlobs;
    }
    if (s?.state === 'migrating') store = new ReadOnlyBlobStore(store);
    return this.decorator ? this.decorator.blobs(owner, store) : store;
  }

  /** The owner's storage as configured (host stores when nothing is set). */
  storageOf(owner: string): OwnerStorage {
    return this.owners.get(owner) ?? { records: this.opts.hostRecordsUrl, blobs: this.opts.hostBlobsUrl, state: 'active' };
  }

  /**
   * Every store URL in use but `except`'s own: the host's, and each other owner's
   * (where they are, where they left, where they are going), named for messages.
   */
  storesInUse(except: string): Array<{ url: string; what: string; sameRootShared: true }> {
    const out: Array<{ url: string; what: string; sameRootShared: true }> = [
      { url: this.opts.hostRecordsUrl, what: "the host's record store", sameRootShared: true },
      { url: this.opts.hostBlobsUrl, what: "the host's file store", sameRootShared: true },
    ];
    for (const [owner, st] of this.owners) {
      if (owner === except) continue;
      for (const place of [st, st.previous, st.target]) {
        if (place) {
          out.push({ url: place.records, what: "another owner's store", sameRootShared: true }, { url: place.blobs, what: "another owner's store", sameRootShared: true });
        }
      }
    }
    return out.filter((s) => s.url !== '');
  }

  /** Every blob store opened in this process (the host's and owners'), each once. */
  openedBlobStores(): BlobStore[] {
    return [...new Set(this.blobStores.values())];
  }

  /** Owners whose data is being moved (read-only everywhere until the move ends or is given up). */
  ownersMoving(): string[] {
    return [...this.owners].filter(([, st]) => st.state === 'migrating').map(([owner]) => owner).sort();
  }

  /** Forgets an owner's own storage settings (the owner is gone): every process goes back to the host's defaults for that id. */
  async forgetOwnerStorage(owner: string): Promise<void> {
    await this.host.delete(HOST_OWNER, STORAGE_TABLE, owner);
    await this.apply(owner, null);
  }

  /**
   * Records an owner's storage for every process to follow, and follows it here at once.
   * Without `ownerChosen`, the stores the owner chose before stay marked as theirs while
   * they are still in use (a move elsewhere leaves them behind).
   */
  async setOwnerStorage(owner: string, given: OwnerStorage): Promise<void> {
    const inUse = (url: string) => url === given.records || url === given.blobs;
    const ownerChosen = [...new Set(given.ownerChosen ?? this.owners.get(owner)?.ownerChosen ?? [])].filter(inUse);
    const storage = settingOf({ ...given, ownerChosen });
    await this.openOwnerStores(storage);
    const existing = await this.host.get(HOST_OWNER, STORAGE_TABLE, owner);
    const now = Date.now();
    const record: StorageRecord = {
      _id: owner, _date_created: existing?._date_created ?? now,
      _date_modified: existing ? Math.max(now, existing._date_modified + 1) : now,
      ...storage,
    };
    await this.host.put(HOST_OWNER, STORAGE_TABLE, record);
    await this.apply(owner, record);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.polling?.catch(() => undefined);
    for (const u of this.unreachable.values()) await u.reopening;
    for (const s of new Set([this.host, ...this.recordStores.values()])) await s.close();
    for (const s of new Set([this.hostBlobs, ...this.blobStores.values()])) await s.close();
  }
}

/** The fields of an owner's storage setting the registry keeps (a stored record has more). */
function settingOf(r: OwnerStorage): OwnerStorage {
  return {
    records: r.records, blobs: r.blobs, state: r.state,
    ...(r.previous ? { previous: r.previous } : {}), ...(r.target ? { target: r.target } : {}),
    ...(r.ownerChosen?.length ? { ownerChosen: [...r.ownerChosen] } : {}),
  };
}

/** Initialises a store just made; one that fails is closed again, so a store tried every few seconds leaves no clients or locks behind. */
async function initOrClose(store: RecordStore | BlobStore): Promise<void> {
  try {
    await store.init();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
}
