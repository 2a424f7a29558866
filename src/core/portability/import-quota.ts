import { isDeepStrictEqual } from 'node:util';
import type { StoredRecord } from '../../storage/types.js';
import { fileBlobKey, userFileKey } from '../files/paths.js';
import { recordBytes } from '../quota/service.js';
import { FreeholdError } from '../errors.js';
import { formatBytes } from '../sizes.js';
import type { Services } from '../services.js';
import { isSystemTable, OwnerTable } from '../system-tables.js';
import type { ArchiveEntry, OpenArchive } from './archive-reader.js';
import { openVerified, tableRecords } from './archive-streams.js';
import type { Plan } from './archive-verify.js';
import type { ImportLimits } from './limits.js';
import { ProgressMeter } from './progress.js';
import { installedAlready } from './same-install.js';

/**
 * An import is refused whole when it would take its owner past their quota. The
 * write pass admits each batch as it goes (the quota-wrapped stores), which would
 * refuse the batch that crosses the limit after earlier ones had landed; so for an
 * owner with limits, this pass reads the archive once more beforehand and admits
 * what the whole import would add: new records, the byte difference of changed
 * ones, user files whose bytes differ, and app packages (counted whole: the new
 * install is stored before the old one is removed). Owners without limits skip it.
 */

const BATCH = 500;

export async function admitImport(services: Services, owner: string, a: OpenArchive, plan: Plan, limits: ImportLimits): Promise<void> {
  if (!(await services.quota.limited(owner))) return;
  const meter = new ProgressMeter('verify', a.entries.length, a.totalBytes);
  let records = 0;
  let bytes = 0;
  for (const e of a.entries) {
    if (e.kind.kind !== 'table' || e.kind.table === OwnerTable.apps) continue;
    const d = await tableDelta(services, owner, a, e, e.kind.table, limits, meter);
    // As for every write: the server's own records (grants, kept apps) take bytes but no record of the quota.
    if (!isSystemTable(e.kind.table)) records += d.records;
    bytes += d.bytes;
  }
  const blobs = services.stores.blobs(owner);
  const store = services.stores.records(owner);
  for (const e of a.entries) {
    if (e.kind.kind !== 'file') continue;
    // Where the file's bytes are now: its record says (user files live under their blob id).
    const record = await store.get(owner, `${e.kind.app}.files`, e.kind.path);
    const current = await blobs.head(record ? fileBlobKey(owner, e.kind.app, record) : userFileKey(owner, e.kind.app, e.kind.path));
    if (!current || current.size !== e.size || current.etag !== e.digest.sha256) bytes += e.size - (current?.size ?? 0);
  }
  for (const app of plan.apps.values()) {
    // An install holding the same files already is kept as it is (import.ts, writeApp).
    if (!(await installedAlready(services, owner, app))) bytes += app.totalBytes;
  }
  try {
    await services.quota.admit(owner, records, bytes);
  } catch (err) {
    // Said whole: what it would add, and who can make room (an owner cannot raise their own quota).
    if (err instanceof FreeholdError && err.code === 'quota_exceeded') {
      throw new FreeholdError('quota_exceeded', `${err.message}. Nothing was written: this would add ${records} record${records === 1 ? '' : 's'} `
        + `and ${formatBytes(Math.max(0, bytes))}; delete some data first, or ask the admin to raise the quota (freehold user quota ${owner} …)`);
    }
    throw err;
  }
}

async function tableDelta(services: Services, owner: string, a: OpenArchive, e: ArchiveEntry, table: string, limits: ImportLimits,
  meter: ProgressMeter): Promise<{ records: number; bytes: number }> {
  const store = services.stores.records(owner);
  let records = 0;
  let bytes = 0;
  let batch: StoredRecord[] = [];
  const settle = async () => {
    if (batch.length === 0) return;
    const existing = await store.query(owner, table, { op: 'in', path: ['_id'], values: batch.map((r) => r._id) },
      { sort: [], skip: 0, limit: batch.length });
    const byId = new Map(existing.map((r) => [r._id, r]));
    for (const record of batch) {
      const old = byId.get(record._id);
      if (!old) {
        records++;
        bytes += recordBytes(record);
      } else if (!isDeepStrictEqual(old, record)) {
        bytes += recordBytes(record) - recordBytes(old);
      }
    }
    batch = [];
  };
  for await (const { record } of tableRecords(await openVerified(a.zip, e, meter), e, table, limits.maxLineBytes)) {
    batch.push(record);
    if (batch.length >= BATCH) await settle();
  }
  await settle();
  return { records, bytes };
}
