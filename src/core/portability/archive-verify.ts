import type { StoredRecord } from '../../storage/types.js';
import { parseManifest, type AppManifest } from '../apps/manifest.js';
import { FreeholdError } from '../errors.js';
import { OwnerTable } from '../system-tables.js';
import { invalid, messageOf } from './archive-names.js';
import type { ArchiveEntry, OpenArchive } from './archive-reader.js';
import { lines, openVerified, parseObjectLine, tableRecords } from './archive-streams.js';
import { Entry, tableEntry } from './export.js';
import type { ImportLimits } from './limits.js';
import { ProgressMeter, type ProgressCallback } from './progress.js';

/**
 * Import's first pass (import.ts): reads every entry of an opened archive, checking
 * every byte and every record, and writes nothing. What it learns of the apps is the
 * plan the second pass writes them by.
 */

const MAX_APP_MANIFEST_BYTES = 256 * 1024;
const MAX_APP_RECORDS_BYTES = 64 * 1024 * 1024;
const MAX_SIDE_FILE_BYTES = 64 * 1024 * 1024;

export interface AppPlan {
  app: string;
  /** The app's record from the archive's system.apps table. */
  record: StoredRecord | null;
  manifest: AppManifest | null;
  rawManifest: Record<string, unknown> | null;
  texts: { manifestJson?: string; appConfigJson?: string };
  files: ArchiveEntry[];
  totalBytes: number;
}

export interface Plan {
  apps: Map<string, AppPlan>;
}

function appPlan(apps: Map<string, AppPlan>, app: string): AppPlan {
  let p = apps.get(app);
  if (!p) {
    p = { app, record: null, manifest: null, rawManifest: null, texts: {}, files: [], totalBytes: 0 };
    apps.set(app, p);
  }
  return p;
}

export async function verifyArchive(a: OpenArchive, limits: ImportLimits, onProgress?: ProgressCallback): Promise<Plan> {
  const meter = new ProgressMeter('verify', a.entries.length, a.totalBytes, onProgress);
  const apps = new Map<string, AppPlan>();
  let appRecordBytes = 0;
  for (const e of a.entries) {
    meter.startEntry(e.name);
    const stream = await openVerified(a.zip, e, meter);
    const k = e.kind;
    if (k.kind === 'table') {
      let n = 0;
      for await (const { record, bytes } of tableRecords(stream, e, k.table, limits.maxLineBytes)) {
        n++;
        if (k.table === OwnerTable.apps) {
          // Few and small (one per app): kept to rewrite them once the app files are stored.
          appRecordBytes += bytes;
          if (appRecordBytes > MAX_APP_RECORDS_BYTES) throw invalid(e.name, 'too large');
          appPlan(apps, record._id).record = record;
        }
      }
      if (n !== a.manifest.tables[k.table]) throw invalid(e.name, `holds ${n} records, manifest.json says ${a.manifest.tables[k.table]}`);
    } else if (k.kind === 'side') {
      const max = MAX_SIDE_FILE_BYTES;
      if (e.size > max) throw invalid(e.name, `larger than ${max} bytes`);
      if (k.name === Entry.permissions) {
        const chunks: Buffer[] = [];
        for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (err) {
          throw invalid(e.name, `not valid JSON: ${messageOf(err)}`);
        }
        if (!Array.isArray(json)) throw invalid(e.name, 'must be a JSON array');
      } else {
        let n = 0;
        for await (const line of lines(stream, limits.maxLineBytes, e.name)) parseObjectLine(line, e.name, ++n);
      }
    } else if (k.kind === 'app') {
      const plan = appPlan(apps, k.app);
      plan.files.push(e);
      plan.totalBytes += e.size;
      if (k.path === 'manifest.json' || k.path === 'app_config.json') {
        if (e.size > MAX_APP_MANIFEST_BYTES) throw invalid(e.name, `an app manifest larger than ${MAX_APP_MANIFEST_BYTES} bytes`);
        const chunks: Buffer[] = [];
        for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
        const text = Buffer.concat(chunks).toString('utf8');
        if (k.path === 'manifest.json') plan.texts.manifestJson = text;
        else plan.texts.appConfigJson = text;
      } else {
        for await (const _ of stream) { /* hashed and counted by openVerified */ }
      }
    } else {
      for await (const _ of stream) { /* hashed and counted by openVerified */ }
    }
    meter.endEntry();
  }

  for (const plan of apps.values()) {
    const where = `${Entry.appsDir}${plan.app}/`;
    if (!plan.record) throw invalid(where, `app files without a record in ${tableEntry(OwnerTable.apps)}`);
    if (plan.files.length === 0) throw invalid(tableEntry(OwnerTable.apps), `app ${plan.app} has no files under ${where}`);
    try {
      const files = new Set(plan.files.map((f) => (f.kind as { path: string }).path));
      const parsed = parseManifest(plan.texts, { expectedName: plan.app, files });
      plan.manifest = parsed.manifest;
      plan.rawManifest = parsed.raw;
    } catch (err) {
      const details = err instanceof FreeholdError && Array.isArray(err.details) ? `: ${(err.details as string[]).slice(0, 3).join('; ')}` : '';
      throw invalid(where, `the app's manifest is invalid${details || `: ${messageOf(err)}`}`);
    }
  }
  return { apps };
}
