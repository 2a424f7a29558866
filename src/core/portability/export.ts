import { createHash } from 'node:crypto';
import { fileBlobKey } from '../files/paths.js';
import { recordsOf as recordPages } from '../migration/copy.js';
import { SERVER_VERSION } from '../../version.js';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { Condition } from '../../query/types.js';
import type { AppPermission } from '../apps/service.js';
import type { RecordStore, StoredRecord } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { lookupType } from '../mime.js';
import { assertUserId, filesTableApp } from '../names.js';
import type { Services } from '../services.js';
import { ProgressMeter, type ProgressCallback } from './progress.js';

/**
 * Export of one owner's everything as one zip that any unzip tool opens
 * (docs/export-format.md). Entries are written in a fixed order — tables, user
 * files, app files, permissions, contacts, messages — and `manifest.json` last:
 * its per-entry sha256 and sizes are computed while the bytes stream past, so
 * nothing is read twice and nothing is held whole in memory. Importers read the
 * manifest first anyway, through the zip's central directory.
 */

export const FORMAT = 'freehold-export';
export const FORMAT_VERSION = 1;

export const Entry = {
  manifest: 'manifest.json',
  permissions: 'permissions.json',
  contacts: 'contacts.jsonl',
  messages: 'messages.jsonl',
  tablesDir: 'tables/',
  filesDir: 'files/',
  appsDir: 'apps/',
  tableSuffix: '.jsonl',
} as const;

export const tableEntry = (table: string): string => `${Entry.tablesDir}${table}${Entry.tableSuffix}`;

export interface EntryDigest {
  sha256: string;
  size: number;
}

export interface ExportManifest {
  format: typeof FORMAT;
  format_version: typeof FORMAT_VERSION;
  /** Epoch ms. */
  exported_at: number;
  server_version: string;
  owner: string;
  /** Records per table, as written. */
  tables: Record<string, number>;
  /** Every entry of the archive except manifest.json itself. */
  entries: Record<string, EntryDigest>;
}

export interface ExportSummary {
  tables: Record<string, number>;
  files: number;
  apps: number;
  entries: number;
  bytes: number;
}

export interface ExportOptions {
  /** Written into the manifest; core code does not know the HTTP layer's version constant. */
  serverVersion?: string;
}

/** Records per store query; shrunk for tables of big records so one page stays a few MB. */
const PAGE_RECORDS = 1000;
const PAGE_TARGET_BYTES = 8 * 1024 * 1024;
const CHUNK_CHARS = 64 * 1024;
const FILE_MODE = 0o100644;

/** Types worth deflating; everything else (images, video, archives) is stored as is, which is much faster. */
const COMPRESSIBLE = /^(text\/|application\/(json|x-ndjson|javascript|xml|wasm|x-yaml|yaml)|image\/svg\+xml)/;

function compressible(name: string): boolean {
  if (name.endsWith('.jsonl') || name.endsWith('.json')) return true;
  const type = lookupType(name);
  return type !== false && COMPRESSIBLE.test(type);
}

/**
 * A table's records in `_id` order, one JSON per line, paged by `_id > last` (never
 * by skip, which gets slower with every page and skips or repeats records when the
 * table changes underneath).
 */
function tableLines(store: RecordStore, owner: string, table: string, counted: (n: number) => void): Readable {
  async function* lines(): AsyncGenerator<Buffer> {
    let last: string | null = null;
    let limit = PAGE_RECORDS;
    for (;;) {
      const where: Condition = last === null ? { op: 'true' } : { op: 'gt', path: ['_id'], value: last };
      const page: StoredRecord[] = await store.query(owner, table, where, { sort: [{ path: ['_id'], direction: 1 }], skip: 0, limit });
      if (page.length === 0) return;
      let pageBytes = 0;
      // Lines are grouped into chunks of about CHUNK_CHARS: a stream chunk per record
      // costs more than serialising the record.
      let chunk = '';
      for (const record of page) {
        chunk += JSON.stringify(record) + '\n';
        if (chunk.length >= CHUNK_CHARS) {
          const buf = Buffer.from(chunk);
          pageBytes += buf.length;
          chunk = '';
          yield buf;
        }
      }
      if (chunk.length > 0) {
        const buf = Buffer.from(chunk);
        pageBytes += buf.length;
        yield buf;
      }
      counted(page.length);
      last = page[page.length - 1]!._id;
      if (page.length < limit) return;
      limit = Math.max(1, Math.min(PAGE_RECORDS, Math.floor((limit * PAGE_TARGET_BYTES) / Math.max(pageBytes, 1))));
    }
  }
  return Readable.from(lines(), { objectMode: false });
}

/** Passes bytes through unchanged, hashing and counting them; hands the digest over at the end. */
function digesting(meter: ProgressMeter, sizeKnown: boolean, done: (d: EntryDigest) => void): Transform {
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      hash.update(chunk);
      size += chunk.length;
      if (!sizeKnown) meter.addToTotal(chunk.length);
      meter.bytes(chunk.length);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      done({ sha256: hash.digest('hex'), size });
      cb();
    },
  });
}

/**
 * yazl with one entry in flight at a time: each entry's source is opened only when
 * yazl is ready for it (addReadStreamLazy), so a million blobs never mean a million
 * open streams, and a failure of the output (a client hanging up) stops the export.
 */
class ArchiveWriter {
  private readonly zip = new yazl.ZipFile();
  readonly entries: Record<string, EntryDigest> = {};
  private readonly failed: Promise<never>;
  private readonly piped: Promise<void>;
  private failure: unknown = null;

  constructor(out: Writable, private readonly meter: ProgressMeter, private readonly mtime: Date) {
    let fail!: (err: unknown) => void;
    this.failed = new Promise<never>((_, reject) => (fail = reject));
    // Observed through Promise.race in add(); this keeps an early failure from being "unhandled".
    this.failed.catch(() => undefined);
    const onError = (err: unknown) => {
      this.failure ??= err;
      fail(err);
    };
    this.zip.on('error', onError);
    this.piped = pipeline(this.zip.outputStream as Readable, out);
    this.piped.catch(onError);
  }

  /** `sizeKnown`: the entry's bytes were counted in the progress total up front (blobs, not tables). */
  async add(name: string, open: () => Promise<Readable>, sizeKnown = false): Promise<EntryDigest> {
    if (this.failure) throw this.failure;
    this.meter.startEntry(name);
    let source: Readable | null = null;
    const digest = new Promise<EntryDigest>((resolve, reject) => {
      this.zip.addReadStreamLazy(name, { compress: compressible(name), mtime: this.mtime, mode: FILE_MODE }, (cb) => {
        open().then((src) => {
          source = src;
          const hasher = digesting(this.meter, sizeKnown, resolve);
          src.on('error', (err) => hasher.destroy(err));
          hasher.on('error', reject);
          cb(null, src.pipe(hasher));
        }, reject);
      });
    });
    try {
      const d = await Promise.race([digest, this.failed]);
      this.entries[name] = d;
      this.meter.endEntry();
      return d;
    } catch (err) {
      (source as Readable | null)?.destroy();
      throw err;
    }
  }

  /** Adds the manifest (the only entry not hashed into the manifest) and finishes the zip. */
  async finish(manifest: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.meter.startEntry(Entry.manifest);
    this.zip.addBuffer(manifest, Entry.manifest, { compress: true, mtime: this.mtime, mode: FILE_MODE });
    this.zip.end();
    await Promise.race([this.piped, this.failed]);
    this.meter.addToTotal(manifest.length);
    this.meter.bytes(manifest.length);
    this.meter.endEntry();
  }

  /** Stops writing: the output is destroyed, so a reader sees a truncated (invalid) zip, never a plausible one. */
  abort(err: unknown): void {
    (this.zip.outputStream as Readable).destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

async function sumBlobs(services: Services, prefixes: string[], owner: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for (const prefix of prefixes) {
    for await (const b of services.stores.blobs(owner).list(prefix)) {
      count++;
      bytes += b.size;
    }
  }
  return { count, bytes };
}

const blobOpener = (services: Services, owner: string, key: string) => async (): Promise<Readable> => {
  const stream = await services.stores.blobs(owner).get(key);
  if (!stream) throw new FreeholdError('internal', `Blob ${key} vanished during the export`);
  return stream;
};

/**
 * Writes the archive of one owner into `out` (a file, an HTTP response). Resolves
 * once the last byte is handed to `out`. On failure `out` is destroyed with the
 * error, so the partial bytes are never a valid zip.
 * The export is not a snapshot: writes made while it runs may or may not be in it.
 */
export async function exportOwner(services: Services, ownerId: string, out: Writable, onProgress?: ProgressCallback,
  opts: ExportOptions = {}): Promise<ExportSummary> {
  const owner = assertUserId(ownerId);
  const records = services.stores.records(owner);
  const exportedAt = new Date();

  const tables = await records.listTables(owner);
  const apps = await services.apps.list(owner);
  const filesPrefixes = [`${owner}/files/`, `${owner}/filedata/`];
  const appPrefixes = apps.map((a) => ({ app: a.appName, prefix: `${owner}/apps/${a.appName}/${a.installId}/` }));
  const blobTotals = await sumBlobs(services, [...filesPrefixes, ...appPrefixes.map((a) => a.prefix)], owner);
  const fixedEntries = 4; // permissions, contacts, messages, manifest
  const meter = new ProgressMeter('export', tables.length + blobTotals.count + fixedEntries, blobTotals.bytes, onProgress);
  const writer = new ArchiveWriter(out, meter, exportedAt);

  try {
    const counts: Record<string, number> = {};
    for (const { table } of tables) {
      let n = 0;
      await writer.add(tableEntry(table), async () => tableLines(records, owner, table, (k) => (n += k)));
      counts[table] = n;
    }
    // A user file is its record in `<app>.files` plus the bytes it points at (fileBlobKey);
    // bytes no record points at are not files and stay behind.
    let files = 0;
    for (const { table } of tables) {
      const app = filesTableApp(table);
      if (app === null) continue;
      for await (const page of recordPages(records, owner, table)) {
        for (const r of page) {
          await writer.add(`${Entry.filesDir}${app}/${r._id}`, blobOpener(services, owner, fileBlobKey(owner, app, r)), true);
          files++;
        }
      }
    }
    for (const { app, prefix } of appPrefixes) {
      for await (const { key } of services.stores.blobs(owner).list(prefix)) {
        await writer.add(`${Entry.appsDir}${app}/${key.slice(prefix.length)}`, blobOpener(services, owner, key), true);
      }
    }
    // With their grant state as the owner set it (the declarations alone say granted: false).
    const permissions: AppPermission[] = [];
    for (const a of apps) permissions.push(...(await services.permissions.list(owner, a.appName)));
    const permissionsJson = Buffer.from(JSON.stringify(permissions, null, 2) + '\n');
    await writer.add(Entry.permissions, async () => Readable.from([permissionsJson]));
    // Filled by the sharing work; present (empty) now so that the format does not change then.
    await writer.add(Entry.contacts, async () => Readable.from([]));
    await writer.add(Entry.messages, async () => Readable.from([]));

    const manifest: ExportManifest = {
      format: FORMAT, format_version: FORMAT_VERSION, exported_at: exportedAt.getTime(),
      server_version: opts.serverVersion ?? SERVER_VERSION, owner, tables: counts, entries: writer.entries,
    };
    await writer.finish(Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
    const bytes = Object.values(writer.entries).reduce((s, e) => s + e.size, 0);
    return { tables: counts, files, apps: apps.length, entries: Object.keys(writer.entries).length + 1, bytes };
  } catch (err) {
    writer.abort(err);
    throw err;
  }
}
