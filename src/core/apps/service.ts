import type { Readable } from 'node:stream';
import type { Config } from '../../config.js';
import type { StoreRegistry } from '../../storage/registry.js';
import type { BlobInfo, BlobRange, StoredRecord } from '../../storage/types.js';
import type { TokenService } from '../auth/tokens.js';
import { conflict, FreeholdError, notFound } from '../errors.js';
import { newRecordId } from '../ids.js';
import { assertAppName, isAppOwnTable, parentAppOf } from '../names.js';
import { OwnerTable } from '../system-tables.js';
import type { AppManifest, Permission } from './manifest.js';
import { readAppPackage, type AppPackage, type PackageSource } from './package.js';
import { relPathProblem } from './paths.js';
import { appFileBlobPrefixes } from '../files/paths.js';
import { contentTypeFor, lookupType } from '../mime.js';

/**
 * Installed apps, per owner. An app's files live in the owner's BlobStore under
 * `<owner>/apps/<app>/<installId>/`, and one record in the owner's `system.apps`
 * table says which installId is live. Installing (or updating) writes every file
 * under a fresh installId first and only then switches the record, so visitors see
 * the old version or the new one, never a mix; the old files are deleted after.
 */

export interface InstalledApp {
  appName: string;
  displayName: string;
  version: string;
  installId: string;
  /** First installation, epoch ms. */
  installedAt: number;
  /** Latest install or update, epoch ms. */
  updatedAt: number;
  fileCount: number;
  totalBytes: number;
  manifest: AppManifest;
}

/** Data an app that is not installed left here (AppService.keptData). */
export interface KeptData {
  appName: string;
  tables: number;
  /** Records in those tables, file records included. */
  records: number;
  /** Of them, the records of its stored files (`<app>.files`). */
  files: number;
}

interface TableOwners {
  installed: Set<string>;
  kept: string[];
  tables: Array<{ table: string; count: number }>;
}

/**
 * An app's own tables, with their record counts: `<app>` and `<app>.<collection>`.
 * Deeper names are other apps' (com.a.b.c.d belongs to com.a.b.c or below), and
 * `<app>.<x>` is app <app>.<x>'s own table when that app is installed or kept its data.
 */
function ownTablesOf(app: string, { installed, kept, tables }: TableOwners): Array<{ table: string; count: number }> {
  const other = (table: string) => table !== app && (installed.has(table) || kept.includes(table));
  return tables.filter((x) => isAppOwnTable(x.table, app) && !other(x.table));
}

function keptDataOf(appName: string, own: Array<{ table: string; count: number }>): KeptData {
  return {
    appName, tables: own.length, records: own.reduce((n, t) => n + t.count, 0),
    files: own.filter((t) => t.table === `${appName}.files`).reduce((n, t) => n + t.count, 0),
  };
}

export interface InstallResult extends InstalledApp {
  /** True when this replaced an installed version. */
  updated: boolean;
  /** What the manifest asked for that was left out (an unknown permission type, a missing stylesheet, …). */
  warnings: string[];
}

/** A declared permission with its grant state (granting arrives with the permissions work). */
export interface AppPermission extends Permission {
  granted: boolean;
  grantees: string[];
}

interface AppRecord extends StoredRecord {
  install_id: string;
  version: string;
  display_name: string;
  installed_at: number;
  file_count: number;
  total_bytes: number;
  manifest: AppManifest;
  /** The manifest as the app wrote it, for freezr clients that read their own manifest. */
  raw_manifest: unknown;
}

export interface AppFile {
  info: BlobInfo;
  /** The install the bytes came from, part of a good ETag when a backend has no hash. */
  installId: string;
  contentType: string;
  stream: Readable;
}

const MAX_TEXT_BYTES = 5 * 1024 * 1024;

function toInstalled(r: AppRecord): InstalledApp {
  return {
    appName: r._id, displayName: r.display_name, version: r.version, installId: r.install_id,
    installedAt: r.installed_at, updatedAt: r._date_modified, fileCount: r.file_count, totalBytes: r.total_bytes,
    manifest: r.manifest,
  };
}

export function contentTypeOf(relPath: string): string {
  const type = lookupType(relPath) || 'application/octet-stream';
  return contentTypeFor(type) || type;
}

function assertRelPath(relPath: string): string {
  if (relPathProblem(relPath) !== null) throw notFound('No such file');
  return relPath;
}

export class AppService {
  /** Installs of one (owner, app) in this process run one at a time. */
  private readonly installing = new Map<string, Promise<unknown>>();

  constructor(private readonly stores: StoreRegistry, private readonly tokens: TokenService, private readonly config: Config) {}

  private appsPrefix(ownerId: string, app: string): string {
    return `${ownerId}/apps/${app}/`;
  }

  private installPrefix(ownerId: string, app: string, installId: string): string {
    return `${this.appsPrefix(ownerId, app)}${installId}/`;
  }

  private async record(ownerId: string, app: string): Promise<AppRecord | null> {
    return (await this.stores.records(ownerId).get(ownerId, OwnerTable.apps, app)) as AppRecord | null;
  }

  private async requireRecord(ownerId: string, app: string): Promise<AppRecord> {
    const r = await this.record(ownerId, assertAppName(app));
    if (!r) throw notFound(`App ${app} is not installed`);
    return r;
  }

  /**
   * Installs or updates an app from a zip or a folder. On any failure the new files
   * are deleted and the previous version (if any) keeps serving.
   */
  async install(ownerId: string, source: PackageSource, onProgress?: (done: number, total: number) => void,
    opts: { expectedName?: string } = {}): Promise<InstallResult> {
    const pkg = await readAppPackage(source, { maxBytes: this.config.maxAppBytes, expectedName: opts.expectedName });
    try {
      // One install at a time per owner: the name-clash check (assertNoNameClash) then
      // sees every other install of this owner finished, so com.a.b and com.a.b.c cannot
      // both pass it at the same moment.
      return await this.serialised(ownerId, () => this.installPackage(ownerId, pkg, onProgress));
    } finally {
      await pkg.close();
    }
  }

  private async serialised<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.installing.get(key) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(work);
    this.installing.set(key, run);
    try {
      return await run;
    } finally {
      if (this.installing.get(key) === run) this.installing.delete(key);
    }
  }

  private async installPackage(ownerId: string, pkg: AppPackage,
    onProgress?: (done: number, total: number) => void): Promise<InstallResult> {
    const { manifest } = pkg;
    const app = manifest.identifier;
    await this.assertNoNameClash(ownerId, app);
    const blobs = this.stores.blobs(ownerId);
    const records = this.stores.records(ownerId);
    const installId = newRecordId();
    const prefix = this.installPrefix(ownerId, app, installId);
    const total = pkg.files.length;
    onProgress?.(0, total);
    try {
      let done = 0;
      for (const file of pkg.files) {
        const body = await file.open();
        await blobs.put(prefix + file.path, body, { contentType: contentTypeOf(file.path), maxBytes: file.size });
        onProgress?.(++done, total);
      }
      // Indexes before the switch: if one fails, the old version is still the live one.
      for (const [table, spec] of Object.entries(manifest.appTables)) {
        for (const index of spec.indexes) {
          await records.ensureIndex(ownerId, table, index.map((field) => field.split('.')));
        }
      }
    } catch (err) {
      await blobs.deletePrefix(prefix).catch(() => undefined);
      throw err;
    }

    const previous = await this.record(ownerId, app);
    const now = Date.now();
    const record: AppRecord = {
      _id: app,
      _date_created: previous?._date_created ?? now,
      _date_modified: now,
      install_id: installId,
      version: manifest.version,
      display_name: manifest.displayName,
      installed_at: previous?.installed_at ?? now,
      file_count: total,
      total_bytes: pkg.totalBytes,
      manifest,
      raw_manifest: pkg.rawManifest,
    };
    try {
      await records.put(ownerId, OwnerTable.apps, record);
    } catch (err) {
      await blobs.deletePrefix(prefix).catch(() => undefined);
      throw err;
    }
    // Installed again: its kept data is its own once more.
    await records.delete(ownerId, OwnerTable.keptApps, app);
    if (previous && previous.install_id !== installId) {
      // Best effort: a leftover old prefix wastes space but never serves.
      await blobs.deletePrefix(this.installPrefix(ownerId, app, previous.install_id)).catch(() => undefined);
    }
    return { ...toInstalled(record), updated: previous !== null, warnings: pkg.warnings };
  }

  async list(ownerId: string): Promise<InstalledApp[]> {
    const rows = (await this.stores.records(ownerId).query(ownerId, OwnerTable.apps, { op: 'true' },
      { sort: [], skip: 0, limit: 5000 })) as AppRecord[];
    return rows.map(toInstalled).sort((a, b) => (a.appName < b.appName ? -1 : a.appName > b.appName ? 1 : 0));
  }

  async get(ownerId: string, app: string): Promise<InstalledApp | null> {
    const r = await this.record(ownerId, assertAppName(app));
    return r ? toInstalled(r) : null;
  }

  async manifest(ownerId: string, app: string): Promise<AppManifest> {
    return (await this.requireRecord(ownerId, app)).manifest;
  }

  /** The manifest as the app wrote it (manifest.json or app_config.json), for freezr's getManifest. */
  async rawManifest(ownerId: string, app: string): Promise<unknown> {
    return (await this.requireRecord(ownerId, app)).raw_manifest;
  }

  /** The app's own tables that hold records of this owner, by name (freezr's getManifest lists them beside the manifest). */
  async usedTables(ownerId: string, app: string): Promise<string[]> {
    return (await this.ownTables(ownerId, app)).filter((t) => t.count > 0).map((t) => t.table).sort();
  }

  /**
   * An app table name cannot tell app `com.a.b`'s collection `c` from app `com.a.b.c`'s
   * own default table: both are `com.a.b.c`. So one owner never has both apps: an app
   * whose name is another's plus one segment is refused (install, app passwords,
   * OAuth) while that other app is installed, holds a token, app password or code, was
   * removed with its data kept or was given access from elsewhere (OwnerTable.keptApps)
   * and has a table left, or has data in its default table
   * or files, and the other way round.
   */
  async assertNoNameClash(ownerId: string, app: string): Promise<void> {
    assertAppName(app);
    const clash = (other: string) => new FreeholdError('conflict',
      `App ${app} cannot be used beside ${other}: the table name ${app.length > other.length ? app : other} would belong to both. ` +
      `Remove ${other} (its data, app passwords and tokens too) first, or use another app name`);
    const parent = parentAppOf(app);
    const related = (other: string) => other !== app && (other === parent || parentAppOf(other) === app);
    const installed = (await this.list(ownerId)).map((a) => a.appName);
    const other = installed.find(related);
    if (other !== undefined) throw clash(other);
    const tables = (await this.stores.records(ownerId).listTables(ownerId)).map((x) => x.table);
    // A kept app counts while some table of its own is left (its data deleted since, it is gone).
    const kept = (await this.keptApps(ownerId)).find((r) => related(r) && tables.some((t) => isAppOwnTable(t, r)));
    if (kept !== undefined) {
      throw new FreeholdError('conflict', `App ${app} cannot be used beside the data app ${kept} keeps here (it is not installed): ` +
        `the table name ${app.length > kept.length ? app : kept} would belong to both. Delete that data first ` +
        `(the home page's "Data kept from removed apps"), or use another app name`);
    }
    // An app served elsewhere holds a token, app password or authorization code without
    // being installed; one issued before this call would otherwise reach the table too.
    for (const holder of await this.tokens.appsWithAccess(ownerId)) if (related(holder)) throw clash(holder);
    for (const table of tables) {
      // The parent's default table or its files: the parent has data. (Its other
      // collections look just like sibling apps' default tables, so they say nothing.)
      if (parent !== null && (table === parent || table === `${parent}.files`)) throw clash(parent);
      // `<app>.<x>.<y>`: collection y of a child app x (or a grandchild's own table: rare).
      if (table.startsWith(app + '.')) {
        const below = table.slice(app.length + 1).split('.');
        if (below.length === 2) throw clash(`${app}.${below[0]}`);
      }
    }
  }

  /**
   * Checks the clash rule for an app about to be given access from elsewhere (an app
   * password, an OAuth code) and, when it is not installed, remembers it among the
   * owner's kept apps: once its tokens are gone, the data it wrote is still its own.
   */
  async admitAccess(ownerId: string, app: string): Promise<void> {
    await this.assertNoNameClash(ownerId, app);
    if (await this.record(ownerId, app)) return;
    await this.keep(ownerId, app);
  }

  private async keptApps(ownerId: string): Promise<string[]> {
    return (await this.stores.records(ownerId).query(ownerId, OwnerTable.keptApps, { op: 'true' }, { sort: [], skip: 0, limit: 5000 })).map((r) => r._id);
  }

  /** Records `app` among the owner's kept apps (OwnerTable.keptApps). */
  private async keep(ownerId: string, app: string): Promise<void> {
    const records = this.stores.records(ownerId);
    const now = Date.now();
    const old = await records.get(ownerId, OwnerTable.keptApps, app);
    await records.put(ownerId, OwnerTable.keptApps, { _id: app, _date_created: old?._date_created ?? now, _date_modified: Math.max(now, (old?._date_modified ?? 0) + 1) });
  }

  /** The app's declared permissions; none for an app that is not installed (e.g. one served elsewhere). */
  async permissions(ownerId: string, app: string): Promise<AppPermission[]> {
    const r = await this.record(ownerId, assertAppName(app));
    if (!r) return [];
    return r.manifest.permissions.map((p) => ({ ...p, table_id: [...p.table_id], granted: false, grantees: [] }));
  }

  /**
   * Removes an app: its record first (so it stops serving at once), then its files
   * and tokens. Its data stays unless `deleteData`, and the app is remembered as its
   * owner (OwnerTable.keptApps); with `deleteData` the app's own table and its
   * `<app>.*` tables are dropped, but never a table of another installed app whose
   * name happens to extend this one (`com.a.b` must not take `com.a.b.c`'s data).
   */
  private readonly removeListeners: Array<(ownerId: string, app: string) => Promise<void>> = [];

  /** Lets other services forget what they keep about an app when it is removed (e.g. the owner's grants). */
  onRemove(listener: (ownerId: string, app: string) => Promise<void>): void {
    this.removeListeners.push(listener);
  }

  async remove(ownerId: string, app: string, opts: { deleteData?: boolean } = {}): Promise<void> {
    const r = await this.requireRecord(ownerId, app);
    const records = this.stores.records(ownerId);
    await records.delete(ownerId, OwnerTable.apps, r._id);
    await this.stores.blobs(ownerId).deletePrefix(this.appsPrefix(ownerId, app));
    await this.tokens.revokeFor(ownerId, app);
    for (const listener of this.removeListeners) await listener(ownerId, app);
    const own = await this.ownTables(ownerId, app);
    if (!opts.deleteData) {
      // Remembered while its data is there, for the name-clash rule.
      if (own.length > 0) await this.keep(ownerId, app);
      return;
    }
    await records.delete(ownerId, OwnerTable.keptApps, app);
    await this.dropData(ownerId, app, own);
  }

  /**
   * Removes the package files of installs that never became, or are no longer, the app's
   * live one: an install or import killed while it wrote them, an update whose old
   * version's deletion failed. Only old ones: an install younger than `olderThanMs` may
   * still be under way in some process. Counted against the quota until then.
   */
  async sweepOrphanedInstalls(ownerId: string, olderThanMs = 3600_000): Promise<number> {
    const blobs = this.stores.blobs(ownerId);
    const root = `${ownerId}/apps/`;
    // One key per install (app, install id) is enough to judge its age.
    const installs = new Map<string, string>();
    for await (const { key } of blobs.list(`${ownerId}/apps`)) {
      const [app, installId] = key.slice(root.length).split('/');
      if (app && installId && !installs.has(`${app}/${installId}`)) installs.set(`${app}/${installId}`, key);
    }
    const cutoff = Date.now() - olderThanMs;
    const live = new Map<string, string | null>();
    let removed = 0;
    for (const [install, key] of installs) {
      const [app, installId] = install.split('/') as [string, string];
      // A failed read fails the sweep (it is retried within the hour): taken for "not installed", it would delete a live app.
      if (!live.has(app)) live.set(app, (await this.record(ownerId, app))?.install_id ?? null);
      if (live.get(app) === installId) continue;
      const info = await blobs.head(key);
      if (!info || info.modified >= cutoff) continue;
      // Asked again just before: an install that became live meanwhile is kept.
      if ((await this.record(ownerId, app))?.install_id === installId) continue;
      removed += await blobs.deletePrefix(`${root}${install}/`);
    }
    return removed;
  }

  /** Drops an app's own tables and, with its files table, the bytes of its files (else swept only hours later). */
  private async dropData(ownerId: string, app: string, own: Array<{ table: string }>): Promise<void> {
    const records = this.stores.records(ownerId);
    for (const { table } of own) await records.dropTable(ownerId, table);
    if (!own.some(({ table }) => table === `${app}.files`)) return;
    for (const prefix of appFileBlobPrefixes(ownerId, app)) await this.stores.blobs(ownerId).deletePrefix(prefix);
  }

  /** An app's own tables now (ownTablesOf). */
  private async ownTables(ownerId: string, app: string): Promise<Array<{ table: string; count: number }>> {
    return ownTablesOf(app, await this.tableOwners(ownerId));
  }

  /** What ownTablesOf needs, read once for any number of apps: the installed and kept apps, and the tables. */
  private async tableOwners(ownerId: string): Promise<TableOwners> {
    const [installed, kept, tables] = await Promise.all([
      this.list(ownerId), this.keptApps(ownerId), this.stores.records(ownerId).listTables(ownerId),
    ]);
    return { installed: new Set(installed.map((a) => a.appName)), kept, tables };
  }

  /**
   * Apps that are not installed but left data here (removed with their data kept, or used
   * from elsewhere through app passwords or OAuth), with how much: what the owner can
   * delete without installing the app again (deleteKeptData).
   */
  async keptData(ownerId: string): Promise<KeptData[]> {
    const owners = await this.tableOwners(ownerId);
    const out: KeptData[] = [];
    for (const app of owners.kept) {
      if (owners.installed.has(app)) continue;
      const own = ownTablesOf(app, owners);
      if (own.length > 0) out.push(keptDataOf(app, own));
    }
    return out.sort((a, b) => (a.appName < b.appName ? -1 : a.appName > b.appName ? 1 : 0));
  }

  /**
   * Deletes the data an app that is not installed left here (its own tables, as removal
   * with its data does). An installed app is refused (remove it with its data instead).
   * The app stays among the kept apps only while it still holds an app password, token
   * or code: what it writes from now on is still its own for the name-clash rule.
   */
  async deleteKeptData(ownerId: string, app: string): Promise<KeptData> {
    assertAppName(app);
    return this.serialised(ownerId, async () => {
      if (await this.record(ownerId, app)) throw conflict(`${app} is installed: remove it with its data instead`);
      const owners = await this.tableOwners(ownerId);
      const own = owners.kept.includes(app) ? ownTablesOf(app, owners) : [];
      if (own.length === 0) throw notFound(`No data kept for ${app}`);
      await this.dropData(ownerId, app, own);
      if (!(await this.tokens.appsWithAccess(ownerId)).has(app)) await this.stores.records(ownerId).delete(ownerId, OwnerTable.keptApps, app);
      return keptDataOf(app, own);
    });
  }

  /** Opens one of an installed app's files. Throws not_found for anything outside the app. */
  async openFile(ownerId: string, app: string, relPath: string, range?: BlobRange): Promise<AppFile> {
    const file = await this.statFile(ownerId, app, relPath);
    const stream = await this.stores.blobs(ownerId).get(file.key, range);
    if (!stream) throw notFound('No such file');
    return { info: file.info, installId: file.installId, contentType: file.contentType, stream };
  }

  /** A file's metadata without opening it (HEAD, conditional requests, range checks). */
  async statFile(ownerId: string, app: string, relPath: string): Promise<{ key: string; info: BlobInfo; installId: string; contentType: string }> {
    assertRelPath(relPath);
    const r = await this.requireRecord(ownerId, app);
    const key = this.installPrefix(ownerId, r._id, r.install_id) + relPath;
    const info = await this.stores.blobs(ownerId).head(key);
    if (!info) throw notFound('No such file');
    return { key, info, installId: r.install_id, contentType: contentTypeOf(relPath) };
  }

  /** A text file of the app (a page's html), decoded as UTF-8. */
  async readText(ownerId: string, app: string, relPath: string): Promise<string> {
    const { stream, info } = await this.openFile(ownerId, app, relPath);
    if (info.size > MAX_TEXT_BYTES) {
      stream.destroy();
      throw new FreeholdError('too_large', `${relPath} is too large to serve as a page`);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks).toString('utf8').replace(/^\uFEFF/, '');
  }
}
