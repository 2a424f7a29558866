import { isDeepStrictEqual } from 'node:util';
import type { BatchOp, StoredRecord } from '../../storage/types.js';
import { contentTypeOf } from '../apps/service.js';
import { FreeholdError } from '../errors.js';
import { lookupType } from '../mime.js';
import { fileBlobKey, userFileKey } from '../files/paths.js';
import { mimeTypeOf } from '../files/freezr-fields.js';
import { newRecordId } from '../ids.js';
import { assertUserId, filesTableApp, isValidAppName, parentAppOf } from '../names.js';
import type { Services } from '../services.js';
import { OwnerTable } from '../system-tables.js';
import { openArchive, type ArchiveEntry, type OpenArchive } from './archive-reader.js';
import { openVerified, tableRecords } from './archive-streams.js';
import { verifyArchive, type AppPlan, type Plan } from './archive-verify.js';
import { sameInstall } from './same-install.js';
import { KeyedLock } from '../../storage/key-lock.js';
import { admitImport } from './import-quota.js';
import { ProgressMeter, type ProgressCallback } from './progress.js';
import { DEFAULT_IMPORT_LIMITS, type ImportLimits } from './limits.js';

/**
 * Import of an export archive (docs/export-format.md) into one owner's stores.
 *
 * Two passes over the zip. The first writes nothing: it checks the zip's structure,
 * the manifest, every name, every byte (sha256 and size) and every record, and
 * refuses the archive with one clear message naming the entry at the first problem.
 * Only then does the second pass write, streaming again (the zip is a file on disk,
 * so entries can be reread; nothing is held in memory but one batch of records).
 *
 * Writing keeps ids and dates, and skips what is already stored unchanged, so a
 * second import of the same archive writes nothing at all (no change-feed noise).
 * Import merges: what the owner has that the archive lacks is left alone, and so is a
 * record changed here since the archive was made (its stored `_date_modified` is
 * later), with its file's bytes: an older archive never silently undoes newer work, nor
 * moves a record's `_date_modified` back, which sync clients reading changes since a
 * time would never see. A backup restore asks for the archive's version regardless.
 *
 * The pieces: archive-reader.ts opens the zip and checks its directory and manifest,
 * archive-names.ts what each entry and name may be, archive-streams.ts each entry's
 * bytes and lines as they stream, archive-verify.ts the first pass; this file the
 * second.
 */

export { DEFAULT_IMPORT_LIMITS, type ImportLimits } from './limits.js';

export interface ImportSummary {
  /** Records per table in the archive. */
  tables: Record<string, number>;
  /** User files in the archive. */
  files: number;
  apps: number;
  recordsWritten: number;
  recordsUnchanged: number;
  /** User files' bytes written, and found already stored. */
  blobsWritten: number;
  blobsUnchanged: number;
  /** The apps' own package files written (an app install), and found already installed. */
  appFilesWritten: number;
  appFilesUnchanged: number;
  /** Records the archive holds that were not taken (grants for apps neither in it nor installed). */
  recordsSkipped: number;
  /** Records left as they are because they were changed here after the archive's copy (with their files' bytes). */
  recordsNewerKept: number;
}

export interface ImportOptions {
  /** Write the archive's copy even over a record changed here since (a backup restore). Default: keep the newer one. */
  replaceNewer?: boolean;
}

/** Records per atomic batch when writing; also capped in bytes so a batch of big records stays small. */
const BATCH_RECORDS = 500;
const BATCH_BYTES = 8 * 1024 * 1024;

type Counters = Pick<ImportSummary, 'recordsWritten' | 'recordsUnchanged' | 'blobsWritten' | 'blobsUnchanged' | 'appFilesWritten' | 'appFilesUnchanged'
  | 'recordsSkipped' | 'recordsNewerKept'>
  & {
    /** `<app>.files` table and path of file records kept newer: their bytes stay too. */
    newerFiles: Set<string>;
  };

const fileKey = (table: string, id: string) => `${table}\0${id}`;

/** Puts the records of one batch that differ from what is stored, atomically. */
async function writeBatch(services: Services, owner: string, table: string, batch: StoredRecord[], c: Counters, opts: ImportOptions): Promise<void> {
  if (batch.length === 0) return;
  const store = services.stores.records(owner);
  const existing = await store.query(owner, table, { op: 'in', path: ['_id'], values: batch.map((r) => r._id) },
    { sort: [], skip: 0, limit: batch.length });
  const byId = new Map(existing.map((r) => [r._id, r]));
  const ops: BatchOp[] = [];
  for (const record of batch) {
    const stored = byId.get(record._id);
    if (isDeepStrictEqual(stored, record)) c.recordsUnchanged++;
    else if (stored && !opts.replaceNewer && stored._date_modified > record._date_modified) {
      c.recordsNewerKept++;
      if (filesTableApp(table) !== null) c.newerFiles.add(fileKey(table, record._id));
    } else ops.push({ kind: 'put', table, record });
  }
  if (ops.length > 0) await store.batch(owner, ops);
  c.recordsWritten += ops.length;
}

/**
 * `keep` says which of the entry's records to write: grants are taken only for apps the
 * archive brings or the owner has installed. A grant for any other app would wait
 * unseen and apply the day an app of that name is installed, granted by nobody here.
 */
async function writeTable(services: Services, owner: string, a: OpenArchive, e: ArchiveEntry, table: string, limits: ImportLimits,
  meter: ProgressMeter, c: Counters, opts: ImportOptions, keep: (record: StoredRecord) => boolean = () => true): Promise<void> {
  let batch: StoredRecord[] = [];
  let batchBytes = 0;
  for await (const { record, bytes } of tableRecords(await openVerified(a.zip, e, meter), e, table, limits.maxLineBytes)) {
    if (!keep(record)) {
      c.recordsSkipped++;
      continue;
    }
    batch.push(record);
    batchBytes += bytes;
    if (batch.length >= BATCH_RECORDS || batchBytes >= BATCH_BYTES) {
      await writeBatch(services, owner, table, batch, c, opts);
      batch = [];
      batchBytes = 0;
    }
  }
  await writeBatch(services, owner, table, batch, c, opts);
}

/** Stores one entry's bytes at `key` unless the same bytes are already there. Returns whether it wrote. */
async function writeBlob(services: Services, owner: string, a: OpenArchive, e: ArchiveEntry, key: string, contentType: string,
  meter: ProgressMeter): Promise<boolean> {
  const blobs = services.stores.blobs(owner);
  const current = await blobs.head(key);
  if (current && current.size === e.size && current.etag === e.digest.sha256) {
    meter.bytes(e.size);
    return false;
  }
  // The verifying stream errors before its end if the bytes differ, so the put never commits them.
  await blobs.put(key, await openVerified(a.zip, e, meter), { contentType, maxBytes: e.size });
  return true;
}

async function userFileType(services: Services, owner: string, app: string, path: string): Promise<string> {
  const record = await services.stores.records(owner).get(owner, `${app}.files`, path);
  const type = record ? mimeTypeOf(record) : undefined;
  return typeof type === 'string' && type.length > 0 && type.length < 200 ? type : (lookupType(path) || 'application/octet-stream');
}

/**
 * Stores an app's files under a fresh installId, then switches its system.apps
 * record to it (as AppService.install does: visitors see the old version or the new
 * one, never a mix), then removes the old files. An app whose live install already
 * has the same files keeps it, so a repeated import changes nothing.
 */
async function writeApp(services: Services, owner: string, a: OpenArchive, plan: AppPlan, meter: ProgressMeter, c: Counters,
  opts: ImportOptions): Promise<void> {
  const records = services.stores.records(owner);
  const blobs = services.stores.blobs(owner);
  const manifest = plan.manifest!;
  const previous = await records.get(owner, OwnerTable.apps, plan.app);
  if (previous && !opts.replaceNewer && previous._date_modified > plan.record!._date_modified) {
    // Installed or updated here since the archive was made: an older archive does not take the app back.
    c.recordsNewerKept++;
    for (const f of plan.files) {
      meter.startEntry(f.name);
      meter.bytes(f.size);
      meter.endEntry();
    }
    return;
  }
  const previousInstall = typeof previous?.install_id === 'string' ? previous.install_id : null;
  let installId: string;
  if (previousInstall && await sameInstall(services, owner, plan, previousInstall)) {
    installId = previousInstall;
    for (const f of plan.files) {
      meter.startEntry(f.name);
      meter.bytes(f.size);
      meter.endEntry();
    }
    c.appFilesUnchanged += plan.files.length;
  } else {
    installId = newRecordId();
    const prefix = `${owner}/apps/${plan.app}/${installId}/`;
    try {
      for (const f of plan.files) {
        meter.startEntry(f.name);
        const path = (f.kind as { path: string }).path;
        await blobs.put(prefix + path, await openVerified(a.zip, f, meter), { contentType: contentTypeOf(path), maxBytes: f.size });
        meter.endEntry();
      }
    } catch (err) {
      await blobs.deletePrefix(prefix).catch(() => undefined);
      throw err;
    }
    c.appFilesWritten += plan.files.length;
  }
  // A fresh server has none of the app's indexes; they are made before the record switch, as on install.
  for (const [table, spec] of Object.entries(manifest.appTables)) {
    for (const index of spec.indexes) await records.ensureIndex(owner, table, index.map((field) => field.split('.')));
  }
  // The archive's record, with what this server derives itself: where the files are, and the
  // manifest as this server's parser reads it (the archive's parsed copy is not trusted).
  // Through JSON, as the store will keep it, so that comparing with the stored record is exact.
  const record = JSON.parse(JSON.stringify({
    ...plan.record!,
    install_id: installId,
    version: manifest.version,
    display_name: manifest.displayName,
    file_count: plan.files.length,
    total_bytes: plan.totalBytes,
    manifest,
    raw_manifest: plan.rawManifest,
  })) as StoredRecord;
  if (isDeepStrictEqual(previous, record)) c.recordsUnchanged++;
  else {
    await records.put(owner, OwnerTable.apps, record);
    c.recordsWritten++;
  }
  if (previousInstall && previousInstall !== installId) {
    // Best effort, as in AppService: a leftover old prefix wastes space but never serves.
    await blobs.deletePrefix(`${owner}/apps/${plan.app}/${previousInstall}/`).catch(() => undefined);
  }
}

async function writeArchive(services: Services, owner: string, a: OpenArchive, plan: Plan, limits: ImportLimits,
  opts: ImportOptions, onProgress?: ProgressCallback): Promise<Counters> {
  const meter = new ProgressMeter('write', a.entries.length, a.totalBytes, onProgress);
  const c: Counters = {
    recordsWritten: 0, recordsUnchanged: 0, blobsWritten: 0, blobsUnchanged: 0, appFilesWritten: 0, appFilesUnchanged: 0,
    recordsSkipped: 0, recordsNewerKept: 0, newerFiles: new Set(),
  };
  const installed = new Set((await services.apps.list(owner)).map((app) => app.appName));
  const grantOfKnownApp = (r: StoredRecord) => {
    const app = r._id.slice(0, r._id.indexOf('/'));
    return plan.apps.has(app) || installed.has(app);
  };
  // Records first (user files' records give their content types), then blobs, then apps,
  // whose records switch last, once their files are in place.
  for (const e of a.entries) {
    if (e.kind.kind !== 'table' || e.kind.table === OwnerTable.apps) continue;
    meter.startEntry(e.name);
    await writeTable(services, owner, a, e, e.kind.table, limits, meter, c, opts, e.kind.table === OwnerTable.permissions ? grantOfKnownApp : undefined);
    meter.endEntry();
  }
  for (const e of a.entries) {
    if (e.kind.kind !== 'file') continue;
    meter.startEntry(e.name);
    const { app, path } = e.kind;
    if (c.newerFiles.has(fileKey(`${app}.files`, path))) {
      // Changed here since: the bytes the newer record describes stay.
      meter.bytes(e.size);
      meter.endEntry();
      continue;
    }
    // The file's record (written above) says where its bytes go; an archive without one keeps the first layout.
    const record = await services.stores.records(owner).get(owner, `${app}.files`, path);
    const key = record ? fileBlobKey(owner, app, record) : userFileKey(owner, app, path);
    const wrote = await writeBlob(services, owner, a, e, key, await userFileType(services, owner, app, path), meter);
    if (wrote) c.blobsWritten++;
    else c.blobsUnchanged++;
    meter.endEntry();
  }
  for (const app of plan.apps.values()) await writeApp(services, owner, a, app, meter, c, opts);
  for (const e of a.entries) {
    // Entries with nothing of their own to write (the apps table is written by writeApp), counted so progress ends at 100%.
    if (e.kind.kind !== 'side' && !(e.kind.kind === 'table' && e.kind.table === OwnerTable.apps)) continue;
    meter.startEntry(e.name);
    meter.bytes(e.size);
    meter.endEntry();
  }
  // permissions.json, contacts.jsonl, messages.jsonl: validated above; grants and sharing state
  // travel in tables/ (the apps service reports permissions from the app records and manifests).
  return c;
}

/** Apps not installed whose data the archive may carry (OwnerTable.keptApps): their tables come along. */
async function archiveKeptApps(a: OpenArchive, limits: ImportLimits): Promise<string[]> {
  const e = a.entries.find((x) => x.kind.kind === 'table' && x.kind.table === OwnerTable.keptApps);
  if (!e) return [];
  const ids: string[] = [];
  const stream = await openVerified(a.zip, e, new ProgressMeter('verify', 1, e.size));
  for await (const { record } of tableRecords(stream, e, OwnerTable.keptApps, limits.maxLineBytes)) ids.push(record._id);
  return ids;
}

/**
 * The archive's apps, and the apps whose kept data it carries, pass the same name-clash
 * rule as an install (AppService assertNoNameClash): none may be another's name plus
 * one segment, among themselves or beside what the owner has here.
 */
async function checkAppNames(services: Services, owner: string, plan: Plan, kept: string[]): Promise<void> {
  const names = [...new Set([...plan.apps.keys(), ...kept.filter((app) => isValidAppName(app))])];
  for (const app of names) {
    const parent = parentAppOf(app);
    if (parent !== null && names.includes(parent)) {
      throw new FreeholdError('conflict', `The archive holds both ${parent} and ${app}, whose tables cannot be told apart here (${app} is both)`);
    }
    await services.apps.assertNoNameClash(owner, app);
  }
}

/**
 * Imports an export archive for `ownerId` (who must have an account here; the
 * archive may come from another user id or server). Everything is verified before
 * anything is written; a refused archive throws FreeholdError('invalid_package',
 * naming the entry), 'too_large', 'quota_exceeded' (import-quota.ts) or 'conflict' (an
 * app whose name clashes with one the owner has, checkAppNames), and leaves
 * the stores untouched.
 */
export async function importOwner(services: Services, ownerId: string, zipPath: string, onProgress?: ProgressCallback,
  limits: ImportLimits = DEFAULT_IMPORT_LIMITS, opts: ImportOptions = {}): Promise<ImportSummary> {
  const owner = assertUserId(ownerId);
  if (!(await services.accounts.get(owner))) throw new FreeholdError('not_found', `No user ${owner} on this server`);
  // One import per owner at a time in this process: side by side, each would install the
  // archive's apps afresh (neither sees the other's install yet) and leave one copy behind.
  return importsByOwner.run(owner, () => importLocked(services, owner, zipPath, onProgress, limits, opts));
}

const importsByOwner = new KeyedLock();

async function importLocked(services: Services, owner: string, zipPath: string, onProgress: ProgressCallback | undefined,
  limits: ImportLimits, opts: ImportOptions): Promise<ImportSummary> {
  const archive = await openArchive(zipPath, owner, limits);
  try {
    const plan = await verifyArchive(archive, limits, onProgress);
    await admitImport(services, owner, archive, plan, limits);
    await checkAppNames(services, owner, plan, await archiveKeptApps(archive, limits));
    const { newerFiles: _files, ...counters } = await writeArchive(services, owner, archive, plan, limits, opts, onProgress);
    return {
      tables: { ...archive.manifest.tables },
      files: archive.entries.filter((e) => e.kind.kind === 'file').length,
      apps: plan.apps.size,
      ...counters,
    };
  } finally {
    archive.zip.close();
  }
}
