import { stat } from 'node:fs/promises';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import yauzl from 'yauzl';
import { relPathProblem } from '../apps/paths.js';
import { zipEntryName } from '../apps/zip-entry-name.js';
import { FreeholdError } from '../errors.js';
import { formatBytes } from '../sizes.js';
import { classify, invalid, messageOf, SIDE_ENTRIES, type Kind } from './archive-names.js';
import { Entry, FORMAT, FORMAT_VERSION, tableEntry } from './export.js';
import type { ImportLimits } from './limits.js';

/**
 * Opening an export archive for import: the zip's structure and its manifest.json,
 * checked from the central directory and the manifest alone, before any entry's data
 * is read (that is archive-streams.ts).
 */

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
export type Manifest = Static<typeof ManifestSchema>;

const APP_PACKAGE = 'this is an app package, not a freehold export: install it as an app (the home page\'s "Install an app", or freehold app install)';

function checkManifest(json: unknown): Manifest {
  const m = json as { format?: unknown; format_version?: unknown } | null;
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw invalid(Entry.manifest, 'must be a JSON object');
  if (m.format === undefined && ('identifier' in m || 'pages' in m || 'app_tables' in m)) throw invalid(Entry.manifest, APP_PACKAGE);
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

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

export interface ArchiveEntry {
  name: string;
  entry: yauzl.Entry;
  size: number;
  kind: Kind;
  digest: { sha256: string; size: number };
}

export interface OpenArchive {
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
export async function openArchive(zipPath: string, owner: string, limits: ImportLimits): Promise<OpenArchive> {
  const st = await stat(zipPath).catch(() => null);
  if (!st?.isFile()) throw new FreeholdError('bad_request', 'The archive file does not exist');
  if (st.size > limits.maxArchiveBytes) throw new FreeholdError('too_large', `The archive is larger than ${formatBytes(limits.maxArchiveBytes)}`);
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
        const name = zipEntryName(yauzl, entry);
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
    if (!manifestEntry) {
      // An app package (app_config.json, or a manifest inside the package's folder) sent to the wrong form.
      if ([...seen].some((n) => /(^|\/)(app_config|manifest)\.json$/.test(n))) throw invalid(Entry.manifest, APP_PACKAGE);
      throw invalid(Entry.manifest, 'missing: every export has a manifest.json');
    }
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
