import type { StoreRegistry } from '../../storage/registry.js';
import { FreeholdError } from '../errors.js';
import { compareDigests, digestOwner, syncBlobs, syncRecords, type CopyProgress } from './copy.js';
import { holdsOwnerData, sameBlobStore, sameRecordStore } from './same-store.js';
import { maskStoreUrl, storesInUse } from '../storage-settings.js';
import { checkNoOverlap } from '../storage-policy.js';
import { withMigrationLease } from './lease.js';

export interface MigrateTarget {
  records: string;
  blobs: string;
}

export interface MigrateOptions {
  onProgress?: (p: CopyProgress | { phase: 'freeze' | 'switch' | 'waiting for an earlier run to let go'; done: number; total: number }) => void;
  /** How long to wait after making the owner read-only, so every process has seen it (ms). */
  propagationMs: number;
  /** How long to wait for another run's lease on this owner to lapse before refusing (ms; default 20 s). */
  leaseWaitMs?: number;
  /** The backup store's URL, if any: a target may not overlap it. */
  backupBlobs?: string;
}

const LEASE_WAIT_MS = 20_000;

export interface MigrateResult {
  from: MigrateTarget;
  to: MigrateTarget;
  tables: number;
  records: number;
  files: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Moves one owner's data to other stores, resumably:
 * 1. a first copy while the owner keeps working;
 * 2. the owner turns read-only (recorded in the host store, so every process follows);
 * 3. a final pass makes the target equal to the source, and both are compared by
 *    counts and content hashes;
 * 4. one write switches the owner to the target and remembers the source, which is
 *    kept until the owner confirms.
 * Every step is idempotent, so a rerun after a crash at any point finishes the job
 * without losing or duplicating anything.
 */
export async function migrateOwner(stores: StoreRegistry, owner: string, asked: MigrateTarget, opts: MigrateOptions): Promise<MigrateResult> {
  return withMigrationLease(stores.host, owner, opts.leaseWaitMs ?? LEASE_WAIT_MS, () => migrateLeased(stores, owner, asked, opts),
    // A rerun right after a killed run waits for the dead run's lease to lapse (up to 15 s): say so.
    () => opts.onProgress?.({ phase: 'waiting for an earlier run to let go', done: 0, total: 1 }));
}

/**
 * This process's view of where owners are, brought up to date: a run that waited for
 * another's lease must see what that run did (switched the owner, say) before acting.
 * The first poll may be one already under way since before; the second reads afresh.
 */
async function freshView(stores: StoreRegistry): Promise<void> {
  await stores.poll();
  await stores.poll();
}

async function migrateLeased(stores: StoreRegistry, owner: string, asked: MigrateTarget, opts: MigrateOptions): Promise<MigrateResult> {
  const progress = opts.onProgress ?? (() => undefined);
  await freshView(stores);
  const current = stores.storageOf(owner);
  const resuming = current.target !== undefined && current.target.records === asked.records && current.target.blobs === asked.blobs;
  if (current.target && !resuming) {
    throw new FreeholdError('conflict', `A move to ${maskStoreUrl(current.target.records)} + ${maskStoreUrl(current.target.blobs)} is under way: rerun it with the same target, or abort it first`);
  }
  if (current.records === asked.records && current.blobs === asked.blobs) {
    throw new FreeholdError('bad_request', 'The owner already uses these stores');
  }
  // One old copy at a time: a second move would forget where the first one's is, which
  // nothing would then delete (not --confirm, not removing the user), and a new account
  // of the same name would find it.
  if (!resuming && current.previous) {
    throw new FreeholdError('conflict', `The copy left by the last move (on ${maskStoreUrl(current.previous.records)} + ${maskStoreUrl(current.previous.blobs)}) is still kept: `
      + 'delete it with migrate --confirm before moving again');
  }
  // A target rooted inside another store (or around one) would mix this owner's keys with others'.
  for (const url of [asked.records, asked.blobs]) {
    if (url !== current.records && url !== current.blobs) await checkNoOverlap(url, storesInUse(stores, owner, opts.backupBlobs ?? ''));
  }
  const src = { records: await stores.openRecords(current.records), blobs: await stores.openBlobs(current.blobs) };
  const dst = { records: await stores.openRecords(asked.records), blobs: await stores.openBlobs(asked.blobs) };
  // A store under another address is the same store: that part does not move.
  const recordsMove = !(await sameRecordStore(dst.records, src.records));
  const blobsMove = !(await sameBlobStore(dst.blobs, src.blobs));
  if (!recordsMove && !blobsMove) throw new FreeholdError('bad_request', 'The owner already uses these stores (under other addresses)');
  const target = { records: recordsMove ? asked.records : current.records, blobs: blobsMove ? asked.blobs : current.blobs };
  if (!resuming) {
    if (await holdsOwnerData(recordsMove ? dst.records : null, blobsMove ? dst.blobs : null, owner)) {
      throw new FreeholdError('conflict', `The target already holds data of ${owner}; a move never merges into or replaces it (move to an empty store)`);
    }
    // Remembered before the first copy, so a rerun after a crash resumes instead of finding "someone's data" there.
    await stores.setOwnerStorage(owner, { ...current, target: asked });
  }

  if (current.state !== 'migrating') {
    await syncRecords(src.records, dst.records, owner, progress);
    await syncBlobs(src.blobs, dst.blobs, owner, progress);
    await stores.setOwnerStorage(owner, { records: current.records, blobs: current.blobs, state: 'migrating', target: asked });
    progress({ phase: 'freeze', done: 0, total: opts.propagationMs });
    await sleep(opts.propagationMs);
  }
  await syncRecords(src.records, dst.records, owner, progress);
  await syncBlobs(src.blobs, dst.blobs, owner, progress);
  progress({ phase: 'verify', done: 0, total: 1 });
  const [a, b] = await Promise.all([digestOwner(src.records, src.blobs, owner), digestOwner(dst.records, dst.blobs, owner)]);
  const problems = compareDigests(a, b);
  if (problems.length) {
    throw new FreeholdError('internal', `The copy does not match the source; nothing was switched. ${problems.slice(0, 5).join('; ')}`, problems);
  }
  progress({ phase: 'switch', done: 1, total: 1 });
  await stores.setOwnerStorage(owner, { ...target, state: 'active', previous: { records: current.records, blobs: current.blobs } });
  const tables = Object.values(a.tables);
  return {
    from: { records: current.records, blobs: current.blobs }, to: target,
    tables: tables.length, records: tables.reduce((n, t) => n + t.count, 0), files: Object.keys(a.files).length,
  };
}

/**
 * Gives up a move under way (or one whose first copy was interrupted): the owner stays
 * on (and may write to) their current stores, and what the move copied to the target
 * is deleted there (a move starts only on a target holding nothing of the owner, so all
 * of it is the move's own), never from a store the owner uses.
 */
export async function abortMigration(stores: StoreRegistry, owner: string, leaseWaitMs = LEASE_WAIT_MS): Promise<{ tables: number; files: number }> {
  return withMigrationLease(stores.host, owner, leaseWaitMs, async () => {
    await freshView(stores);
    const current = stores.storageOf(owner);
    if (current.state !== 'migrating' && !current.target) throw new FreeholdError('bad_request', 'No move is under way for this owner');
    await stores.setOwnerStorage(owner, { records: current.records, blobs: current.blobs, state: 'active', ...(current.previous ? { previous: current.previous } : {}) });
    if (!current.target) return { tables: 0, files: 0 };
    const { tables, files } = await deleteOwnerData(stores, owner, current.target, { records: current.records, blobs: current.blobs });
    return { tables, files };
  });
}

/**
 * Deletes the owner's data from the stores `from`, but from neither of `inUse` (asked of
 * the stores, see same-store.ts). `deletedFrom` says which parts were really elsewhere.
 */
async function deleteOwnerData(stores: StoreRegistry, owner: string, from: MigrateTarget, inUse: MigrateTarget):
  Promise<{ tables: number; files: number; deletedFrom: { records: boolean; blobs: boolean } }> {
  const [records, usedRecords] = await Promise.all([stores.openRecords(from.records), stores.openRecords(inUse.records)]);
  const [blobs, usedBlobs] = await Promise.all([stores.openBlobs(from.blobs), stores.openBlobs(inUse.blobs)]);
  const deletedFrom = { records: !(await sameRecordStore(usedRecords, records)), blobs: !(await sameBlobStore(usedBlobs, blobs)) };
  let tables = 0;
  if (deletedFrom.records) {
    for (const { table } of await records.listTables(owner)) {
      await records.dropTable(owner, table);
      tables++;
    }
  }
  const files = deletedFrom.blobs ? await blobs.deletePrefix(owner) : 0;
  return { tables, files, deletedFrom };
}

/**
 * After the owner has checked their data on the new stores: deletes it from the stores
 * they left, never from one they use (asked of the stores themselves, whatever the
 * addresses say: see same-store.ts).
 */
export async function confirmMigration(stores: StoreRegistry, owner: string, leaseWaitMs = LEASE_WAIT_MS): Promise<{ tables: number; files: number }> {
  return withMigrationLease(stores.host, owner, leaseWaitMs, async () => {
    await freshView(stores);
    const current = stores.storageOf(owner);
    if (!current.previous) throw new FreeholdError('bad_request', 'There is no previous storage to delete');
    const inUse = { records: current.records, blobs: current.blobs };
    const { tables, files, deletedFrom } = await deleteOwnerData(stores, owner, current.previous, inUse);
    await stores.setOwnerStorage(owner, { ...inUse, state: 'active' });
    if (!deletedFrom.records && !deletedFrom.blobs) {
      throw new FreeholdError('conflict', 'The previous stores are the ones in use (under other addresses): nothing was deleted');
    }
    return { tables, files };
  });
}
