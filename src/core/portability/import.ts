import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import yauzl from 'yauzl';
import { compareStrings } from '../../query/evaluate.js';
import type { BatchOp, StoredRecord } from '../../storage/types.js';
import { parseManifest, type AppManifest } from '../apps/manifest.js';
import { relPathProblem } from '../apps/paths.js';
import { contentTypeOf } from '../apps/service.js';
import { FreeholdError } from '../errors.js';
import { lookupType } from '../mime.js';
import { fileBlobKey, normaliseUserFilePath, userFileKey } from '../files/paths.js';
import { newRecordId } from '../ids.js';
import { assertRecordId, assertUserId, isReservedAppName, isValidAppName, parseAppTable } from '../names.js';
import type { Services } from '../services.js';
import { OwnerTable } from '../system-tables.js';
import { Entry, FORMAT, FORMAT_VERSION, tableEntry } from './export.js';
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
 * Import merges: what the owner has that the archive lacks is left alone.
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
  blobsWritten: number;
  blobsUnchanged: number;
}

/** Records per atomic batch when writing; also capped in bytes so a batch of big records stays small. */
const BATCH_RECORDS = 500;
const BATCH_BYTES = 8 * 1024 * 1024;
const MAX_APP_MANIFEST_BYTES = 256 * 1024;
const MAX_APP_RECORDS_BYTES = 64 * 1024 * 1024;
const MAX_SIDE_FILE_BYTES = 64 * 1024 * 1024;
/** The fs BlobStore's key limit; a longer key would fail in the middle of the write pass. */
const MAX_KEY_LENGTH = 1024;

// ---------- errors ----------

/** A refused archive: the message names the entry, `details` repeats it for programs. */
function invalid(entry: string | null, problem: string): FreeholdError {
  const where = entry === null ? '' : `${JSON.stringify(entry.slice(0, 200))}: `;
  return new FreeholdError('invalid_package', `The archive is invalid: ${where}${problem}`, { entry, problem });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------- manifest schema ----------

const Digest = Type.Object({
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  size: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

const ManifestSchema = Type.Object({
  format: Type.Literal(FORMAT),
  format_version: Type.Literal(FORMAT_VERSION),
  exported_at: Type.Number(),
  server_version: Type.String({ maxLength: 100 }),
  owner: Type.String({ maxLength: 100 }),
  tables: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
  entries: Type.Record(Type.String(), Digest),
});
type Manifest = Static<typeof ManifestSchema>;

function checkManifest(json: unknown): Manifest {
  const m = json as { format?: unknown; format_version?: unknown } | null;
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw invalid(Entry.manifest, 'must be a JSON object');
  if (m.format !== FORMAT) throw invalid(Entry.manifest, `format is ${JSON.stringify(m.format)}, not "${FORMAT}": this is not a freehold export`);
  if (m.format_version !== FORMAT_VERSION) {
    throw invalid(Entry.manifest, `format_version ${JSON.stringify(m.format_version)} is not supported (this server reads version ${FORMAT_VERSION})`);
  }
  if (!Value.Check(ManifestSchema, json)) {
    const first = Value.Errors(ManifestSchema, json).First();
    throw invalid(Entry.manifest, first ? `${first.path || '/'}: ${first.message}` : 'does not match the manifest schema');
  }
  return json;
}

// ---------- names ----------

const TABLE_CHARS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const INTERNAL_TABLE = /^system\.[a-z0-9][a-z0-9_-]{0,63}$/;
/** Collections that apps may not create but the server keeps per app (`<app>.files`, …). */
const SERVER_COLLECTIONS = new Set(['files', 'jobs', 'field_permissions', 'accessible_objects']);

/**
 * Tables an owner can have: app tables (CEPS.md §2), the server's per-app tables
 * (`<app>.files`), the CEPS system tables (`dev.ceps.*`) and the owner's internal
 * `system.*` tables (OwnerTable; future ones included, so that an archive from a
 * newer server still imports).
 */
export function tableNameProblem(table: string): string | null {
  if (!TABLE_CHARS.test(table) || table.includes('..') || table.endsWith('.')) return 'not a valid table name';
  if (table.startsWith('system')) return INTERNAL_TABLE.test(table) ? null : 'not a valid internal table name';
  const dot = table.lastIndexOf('.');
  if (dot > 0 && SERVER_COLLECTIONS.has(table.slice(dot + 1)) && isValidAppName(table.slice(0, dot))) return null;
  try {
    parseAppTable(table);
    return null;
  } catch (err) {
    return messageOf(err);
  }
}

function recordIdProblem(table: string, id: string): string | null {
  if (table === OwnerTable.apps) return isValidAppName(id) ? null : 'is not a valid app name';
  if (table.endsWith('.files')) {
    // A file record's id is the file's path inside the app's file space.
    try {
      return normaliseUserFilePath(id) === id ? null : 'is not a canonical file path';
    } catch {
      return 'is not a valid file path';
    }
  }
  try {
    assertRecordId(id);
    return null;
  } catch {
    return 'is not a valid record id';
  }
}

type Kind =
  | { kind: 'table'; table: string }
  | { kind: 'file'; app: string; path: string }
  | { kind: 'app'; app: string; path: string }
  | { kind: 'side'; name: string };

const SIDE_ENTRIES: readonly string[] = [Entry.permissions, Entry.contacts, Entry.messages];

/** What an entry is, or a FreeholdError saying why it cannot be in an archive. */
function classify(name: string, owner: string): Kind {
  if (SIDE_ENTRIES.includes(name)) return { kind: 'side', name };
  if (name.startsWith(Entry.tablesDir) && name.endsWith(Entry.tableSuffix)) {
    const table = name.slice(Entry.tablesDir.length, -Entry.tableSuffix.length);
    const problem = tableNameProblem(table);
    if (problem) throw invalid(name, `bad table name ${JSON.stringify(table)}: ${problem}`);
    return { kind: 'table', table };
  }
  for (const [dir, kind] of [[Entry.filesDir, 'file'], [Entry.appsDir, 'app']] as const) {
    if (!name.startsWith(dir)) continue;
    const rest = name.slice(dir.length);
    const slash = rest.indexOf('/');
    const app = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? '' : rest.slice(slash + 1);
    if (!isValidAppName(app)) throw invalid(name, `${JSON.stringify(app)} is not a valid app name`);
    if (path === '') throw invalid(name, 'no file path after the app name');
    if (kind === 'file') {
      let canonical: string | null = null;
      try {
        canonical = normaliseUserFilePath(path);
      } catch {
        // reported below
      }
      if (canonical !== path) throw invalid(name, 'not a valid file path');
    } else {
      if (isReservedAppName(app)) throw invalid(name, `app name ${app} is reserved for the server`);
      const problem = relPathProblem(path);
      if (problem) throw invalid(name, problem);
    }
    const key = `${owner}/${kind === 'file' ? 'files' : 'apps'}/${app}/${kind === 'app' ? 'x'.repeat(24) + '/' : ''}${path}`;
    if (key.length > MAX_KEY_LENGTH) throw invalid(name, 'path too long to store');
    return { kind, app, path };
  }
  throw invalid(name, 'not an entry of the export format (expected tables/, files/, apps/ or a known file)');
}

// ---------- zip structure ----------

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

interface ArchiveEntry {
  name: string;
  entry: yauzl.Entry;
  size: number;
  kind: Kind;
  digest: { sha256: string; size: number };
}

interface OpenArchive {
  zip: yauzl.ZipFile;
  manifest: Manifest;
  /** Every data entry, in zip order, each listed in the manifest. */
  entries: ArchiveEntry[];
  totalBytes: number;
}

async function readSmall(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string, max: number): Promise<Buffer> {
  if (entry.uncompressedSize > max) throw invalid(name, `larger than ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of await zip.openReadStreamPromise(entry) as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw invalid(name, `larger than ${max} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof FreeholdError) throw err;
    throw invalid(name, `cannot be read: ${messageOf(err)}`);
  }
  return Buffer.concat(chunks);
}

/**
 * Opens the zip and checks everything the central directory and the manifest can
 * tell without reading data: names, kinds, listing, sizes, limits.
 */
async function openArchive(zipPath: string, owner: string, limits: ImportLimits): Promise<OpenArchive> {
  const st = await stat(zipPath).catch(() => null);
  if (!st?.isFile()) throw new FreeholdError('bad_request', 'The archive file does not exist');
  if (st.size > limits.maxArchiveBytes) throw new FreeholdError('too_large', `The archive is larger than ${limits.maxArchiveBytes} bytes`);
  let zip: yauzl.ZipFile;
  try {
    // decodeStrings off: yauzl would stop at the first bad name with a generic error; we name it ourselves.
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (err) {
    throw invalid(null, `not a readable zip file (truncated or damaged?): ${messageOf(err)}`);
  }
  try {
    if (zip.entryCount > limits.maxEntries) throw invalid(null, `${zip.entryCount} entries; at most ${limits.maxEntries} are allowed`);
    const listed: Array<{ name: string; entry: yauzl.Entry }> = [];
    const seen = new Set<string>();
    let manifestEntry: yauzl.Entry | null = null;
    try {
      for await (const entry of zip.eachEntry()) {
        const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
        const isDir = name.endsWith('/');
        const problem = relPathProblem(isDir ? name.slice(0, -1) : name);
        if (problem) throw invalid(name, problem);
        const type = ((entry.externalFileAttributes >>> 16) & 0xffff) & S_IFMT;
        if (isDir || type === S_IFDIR) {
          // Folders carry no data; zip tools add them when an unpacked export is zipped again.
          if (entry.uncompressedSize !== 0) throw invalid(name, 'a folder entry with data');
          continue;
        }
        if (type !== 0 && type !== S_IFREG) throw invalid(name, 'not a regular file (symbolic links and devices are refused)');
        if (entry.isEncrypted()) throw invalid(name, 'encrypted entries are not supported');
        if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
          throw invalid(name, `unsupported compression method ${entry.compressionMethod}`);
        }
        if (seen.has(name)) throw invalid(name, 'appears more than once');
        seen.add(name);
        if (name === Entry.manifest) manifestEntry = entry;
        else listed.push({ name, entry });
      }
    } catch (err) {
      if (err instanceof FreeholdError) throw err;
      throw invalid(null, `the zip's directory is damaged: ${messageOf(err)}`);
    }
    if (!manifestEntry) throw invalid(Entry.manifest, 'missing: every export has a manifest.json');
    let json: unknown;
    try {
      json = JSON.parse((await readSmall(zip, manifestEntry, Entry.manifest, limits.maxManifestBytes)).toString('utf8'));
    } catch (err) {
      if (err instanceof FreeholdError) throw err;
      throw invalid(Entry.manifest, `not valid JSON: ${messageOf(err)}`);
    }
    const manifest = checkManifest(json);

    const entries: ArchiveEntry[] = [];
    const tablesSeen = new Set<string>();
    let totalBytes = 0;
    for (const { name, entry } of listed) {
      const digest = Object.hasOwn(manifest.entries, name) ? manifest.entries[name]! : null;
      if (!digest) throw invalid(name, 'not listed in manifest.json (unlisted entries are refused)');
      if (entry.uncompressedSize !== digest.size) {
        throw invalid(name, `the zip says ${entry.uncompressedSize} bytes, manifest.json says ${digest.size}`);
      }
      const kind = classify(name, owner);
      if (kind.kind === 'table') {
        if (!Object.hasOwn(manifest.tables, kind.table)) throw invalid(name, 'its table is missing from manifest.json "tables"');
        tablesSeen.add(kind.table);
      }
      totalBytes += digest.size;
      entries.push({ name, entry, size: digest.size, kind, digest });
    }
    if (totalBytes > limits.maxTotalBytes) {
      throw new FreeholdError('too_large', `The archive holds ${totalBytes} bytes uncompressed; at most ${limits.maxTotalBytes} are allowed`);
    }
    for (const name of Object.keys(manifest.entries)) {
      if (name === Entry.manifest || !seen.has(name)) throw invalid(name, 'listed in manifest.json but missing from the zip (truncated?)');
    }
    for (const table of Object.keys(manifest.tables)) {
      if (!tablesSeen.has(table)) throw invalid(tableEntry(table), 'listed in manifest.json "tables" but missing from the zip');
    }
    for (const side of SIDE_ENTRIES) {
      if (!seen.has(side)) throw invalid(side, 'missing: every export has it (possibly empty)');
    }
    return { zip, manifest, entries, totalBytes };
  } catch (err) {
    zip.close();
    throw err;
  }
}

// ---------- streaming checks ----------

/**
 * Passes an entry's bytes through, checking as they flow that there are exactly as
 * many as declared and that their sha256 is the declared one; errors (before the
 * end of the stream, so a BlobStore put never commits) when not.
 */
function verified(e: ArchiveEntry, meter: ProgressMeter): Transform {
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      size += chunk.length;
      if (size > e.size) return cb(invalid(e.name, `holds more than the ${e.size} bytes listed in manifest.json`));
      hash.update(chunk);
      meter.bytes(chunk.length);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (size !== e.size) return cb(invalid(e.name, `holds ${size} bytes, manifest.json says ${e.size} (truncated?)`));
      const sha = hash.digest('hex');
      if (sha !== e.digest.sha256) return cb(invalid(e.name, 'its sha256 does not match manifest.json (the entry was altered or damaged)'));
      cb();
    },
  });
}

async function openVerified(zip: yauzl.ZipFile, e: ArchiveEntry, meter: ProgressMeter): Promise<Readable> {
  let src: Readable;
  try {
    src = await zip.openReadStreamPromise(e.entry);
  } catch (err) {
    throw invalid(e.name, `cannot be read: ${messageOf(err)}`);
  }
  const check = verified(e, meter);
  // Inflate errors, short data, bad sizes: all reported as a problem of this entry.
  src.on('error', (err) => check.destroy(err instanceof FreeholdError ? err : invalid(e.name, `cannot be read: ${messageOf(err)}`)));
  check.on('close', () => src.destroy());
  return src.pipe(check);
}

/** Lines of a stream (without their newline), each at most `max` bytes; a last line without newline counts. */
async function* lines(stream: AsyncIterable<Buffer>, max: number, entry: string): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let partLength = 0;
  let lineNo = 0;
  const tooLong = () => invalid(entry, `line ${lineNo + 1} is longer than ${max} bytes`);
  for await (const chunk of stream) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) {
        if (start < chunk.length) {
          parts.push(chunk.subarray(start));
          partLength += chunk.length - start;
          if (partLength > max) throw tooLong();
        }
        break;
      }
      const piece = chunk.subarray(start, nl);
      if (partLength + piece.length > max) throw tooLong();
      const line = parts.length > 0 ? Buffer.concat([...parts, piece]) : piece;
      parts = [];
      partLength = 0;
      lineNo++;
      yield line;
      start = nl + 1;
    }
  }
  if (partLength > 0) yield Buffer.concat(parts);
}

/** One JSONL line as a JSON object, or an error naming the entry and line. */
function parseObjectLine(line: Buffer, entry: string, lineNo: number): Record<string, unknown> {
  if (line.length === 0) throw invalid(entry, `line ${lineNo} is empty`);
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch (err) {
    throw invalid(entry, `line ${lineNo} is not valid JSON: ${messageOf(err)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(entry, `line ${lineNo} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Checks one record line of a table entry; `previous` is the previous line's _id (ids must increase). */
function parseRecordLine(line: Buffer, e: ArchiveEntry, table: string, lineNo: number, previous: string | null): StoredRecord {
  const r = parseObjectLine(line, e.name, lineNo);
  const id = r._id;
  if (typeof id !== 'string' || id.length === 0) throw invalid(e.name, `line ${lineNo} has no _id`);
  const problem = recordIdProblem(table, id);
  if (problem) throw invalid(e.name, `line ${lineNo}: _id ${JSON.stringify(id.slice(0, 100))} ${problem}`);
  for (const field of ['_date_created', '_date_modified'] as const) {
    if (typeof r[field] !== 'number' || !Number.isFinite(r[field])) throw invalid(e.name, `line ${lineNo}: ${field} must be a number`);
  }
  // Sorted, strictly increasing ids make duplicates impossible without remembering every id.
  if (previous !== null && compareStrings(previous, id) >= 0) {
    throw invalid(e.name, `line ${lineNo}: _id ${JSON.stringify(id.slice(0, 100))} is not after the previous line's (tables are sorted by _id, without duplicates)`);
  }
  return r as StoredRecord;
}

// ---------- pass 1: verify ----------

interface AppPlan {
  app: string;
  /** The app's record from the archive's system.apps table. */
  record: StoredRecord | null;
  manifest: AppManifest | null;
  rawManifest: Record<string, unknown> | null;
  texts: { manifestJson?: string; appConfigJson?: string };
  files: ArchiveEntry[];
  totalBytes: number;
}

interface Plan {
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

async function verifyArchive(a: OpenArchive, limits: ImportLimits, onProgress?: ProgressCallback): Promise<Plan> {
  const meter = new ProgressMeter('verify', a.entries.length, a.totalBytes, onProgress);
  const apps = new Map<string, AppPlan>();
  let appRecordBytes = 0;
  for (const e of a.entries) {
    meter.startEntry(e.name);
    const stream = await openVerified(a.zip, e, meter);
    const k = e.kind;
    if (k.kind === 'table') {
      let n = 0;
      let previous: string | null = null;
      for await (const line of lines(stream, limits.maxLineBytes, e.name)) {
        const record = parseRecordLine(line, e, k.table, ++n, previous);
        previous = record._id;
        if (k.table === OwnerTable.apps) {
          // Few and small (one per app): kept to rewrite them once the app files are stored.
          appRecordBytes += line.length;
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

// ---------- pass 2: write ----------

interface Counters {
  recordsWritten: number;
  recordsUnchanged: number;
  blobsWritten: number;
  blobsUnchanged: number;
}

/** Puts the records of one batch that differ from what is stored, atomically. */
async function writeBatch(services: Services, owner: string, table: string, batch: StoredRecord[], c: Counters): Promise<void> {
  if (batch.length === 0) return;
  const store = services.stores.records(owner);
  const existing = await store.query(owner, table, { op: 'in', path: ['_id'], values: batch.map((r) => r._id) },
    { sort: [], skip: 0, limit: batch.length });
  const byId = new Map(existing.map((r) => [r._id, r]));
  const ops: BatchOp[] = [];
  for (const record of batch) {
    if (isDeepStrictEqual(byId.get(record._id), record)) c.recordsUnchanged++;
    else ops.push({ kind: 'put', table, record });
  }
  if (ops.length > 0) await store.batch(owner, ops);
  c.recordsWritten += ops.length;
}

async function writeTable(services: Services, owner: string, a: OpenArchive, e: ArchiveEntry, table: string, limits: ImportLimits,
  meter: ProgressMeter, c: Counters): Promise<void> {
  let batch: StoredRecord[] = [];
  let batchBytes = 0;
  let n = 0;
  let previous: string | null = null;
  for await (const line of lines(await openVerified(a.zip, e, meter), limits.maxLineBytes, e.name)) {
    const record = parseRecordLine(line, e, table, ++n, previous);
    previous = record._id;
    batch.push(record);
    batchBytes += line.length;
    if (batch.length >= BATCH_RECORDS || batchBytes >= BATCH_BYTES) {
      await writeBatch(services, owner, table, batch, c);
      batch = [];
      batchBytes = 0;
    }
  }
  await writeBatch(services, owner, table, batch, c);
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
  const type = record?.content_type;
  return typeof type === 'string' && type.length > 0 && type.length < 200 ? type : (lookupType(path) || 'application/octet-stream');
}

/** Whether the app's live install already holds exactly these files (same paths, sizes and hashes). */
async function sameInstall(services: Services, owner: string, plan: AppPlan, installId: string): Promise<boolean> {
  const blobs = services.stores.blobs(owner);
  const prefix = `${owner}/apps/${plan.app}/${installId}/`;
  const wanted = new Map(plan.files.map((f) => [(f.kind as { path: string }).path, f]));
  let count = 0;
  for await (const { key } of blobs.list(prefix)) {
    const f = wanted.get(key.slice(prefix.length));
    if (!f) return false;
    const info = await blobs.head(key);
    if (!info || info.size !== f.size || info.etag !== f.digest.sha256) return false;
    count++;
  }
  return count === wanted.size;
}

/**
 * Stores an app's files under a fresh installId, then switches its system.apps
 * record to it (as AppService.install does: visitors see the old version or the new
 * one, never a mix), then removes the old files. An app whose live install already
 * has the same files keeps it, so a repeated import changes nothing.
 */
async function writeApp(services: Services, owner: string, a: OpenArchive, plan: AppPlan, meter: ProgressMeter, c: Counters): Promise<void> {
  const records = services.stores.records(owner);
  const blobs = services.stores.blobs(owner);
  const manifest = plan.manifest!;
  const previous = await records.get(owner, OwnerTable.apps, plan.app);
  const previousInstall = typeof previous?.install_id === 'string' ? previous.install_id : null;
  let installId: string;
  if (previousInstall && await sameInstall(services, owner, plan, previousInstall)) {
    installId = previousInstall;
    for (const f of plan.files) {
      meter.startEntry(f.name);
      meter.bytes(f.size);
      meter.endEntry();
    }
    c.blobsUnchanged += plan.files.length;
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
    c.blobsWritten += plan.files.length;
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
  onProgress?: ProgressCallback): Promise<Counters> {
  const meter = new ProgressMeter('write', a.entries.length, a.totalBytes, onProgress);
  const c: Counters = { recordsWritten: 0, recordsUnchanged: 0, blobsWritten: 0, blobsUnchanged: 0 };
  // Records first (user files' records give their content types), then blobs, then apps,
  // whose records switch last, once their files are in place.
  for (const e of a.entries) {
    if (e.kind.kind !== 'table' || e.kind.table === OwnerTable.apps) continue;
    meter.startEntry(e.name);
    await writeTable(services, owner, a, e, e.kind.table, limits, meter, c);
    meter.endEntry();
  }
  for (const e of a.entries) {
    if (e.kind.kind !== 'file') continue;
    meter.startEntry(e.name);
    const { app, path } = e.kind;
    // The file's record (written above) says where its bytes go; an archive without one keeps the first layout.
    const record = await services.stores.records(owner).get(owner, `${app}.files`, path);
    const key = record ? fileBlobKey(owner, app, record) : userFileKey(owner, app, path);
    const wrote = await writeBlob(services, owner, a, e, key, await userFileType(services, owner, app, path), meter);
    if (wrote) c.blobsWritten++;
    else c.blobsUnchanged++;
    meter.endEntry();
  }
  for (const app of plan.apps.values()) await writeApp(services, owner, a, app, meter, c);
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

/**
 * Imports an export archive for `ownerId` (who must have an account here; the
 * archive may come from another user id or server). Everything is verified before
 * anything is written; a refused archive throws FreeholdError('invalid_package',
 * naming the entry) or 'too_large', and leaves the stores untouched.
 */
export async function importOwner(services: Services, ownerId: string, zipPath: string, onProgress?: ProgressCallback,
  limits: ImportLimits = DEFAULT_IMPORT_LIMITS): Promise<ImportSummary> {
  const owner = assertUserId(ownerId);
  if (!(await services.accounts.get(owner))) throw new FreeholdError('not_found', `No user ${owner} on this server`);
  const archive = await openArchive(zipPath, owner, limits);
  try {
    const plan = await verifyArchive(archive, limits, onProgress);
    const counters = await writeArchive(services, owner, archive, plan, limits, onProgress);
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
