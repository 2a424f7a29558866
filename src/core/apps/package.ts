import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { ZipFile } from 'yauzl';
import { FreeholdError } from '../errors.js';
import { parseManifest, type AppManifest } from './manifest.js';
import { relPathProblem } from './paths.js';
import { zipEntryName } from './zip-entry-name.js';
import { formatBytes } from '../sizes.js';

/**
 * Reads an app package (a zip file or a folder) into a checked listing whose file
 * contents are opened lazily, one stream at a time, so nothing is ever held whole
 * in memory. Everything hostile is refused before a byte is stored: paths that
 * escape (`../`, absolute, drive letters, backslashes), symlinks, too many entries,
 * too many bytes, duplicate paths, bad names and a missing or invalid manifest.
 * Sizes are checked twice: the sizes a zip declares, and the bytes actually
 * inflated while streaming (a zip bomb lies about the first).
 */

export type PackageSource = { zipPath: string } | { folder: string };

export interface PackageFile {
  /** Path inside the app, `/`-separated, already checked by relPathProblem. */
  path: string;
  /** Declared size: from the zip's central directory, or the file's size on disk. */
  size: number;
  /** A fresh stream of the file's bytes; it errors if more bytes come than allowed. */
  open(): Promise<Readable>;
}

export interface AppPackage {
  manifest: AppManifest;
  /** The manifest JSON as written, comments removed. */
  rawManifest: Record<string, unknown>;
  files: PackageFile[];
  /** Sum of declared sizes. */
  totalBytes: number;
  /** What the manifest carries that freezr tolerates and this server leaves out (manifest.ts). */
  warnings: string[];
  /** Releases the zip file handle. Safe to call more than once. */
  close(): Promise<void>;
}

export interface ReadPackageOptions {
  maxBytes: number;
  maxEntries?: number;
  /** The app name the package must declare, when the caller knows it. */
  expectedName?: string;
}

export const MAX_PACKAGE_ENTRIES = 5000;
const MAX_MANIFEST_BYTES = 256 * 1024;
const MANIFEST_FILES = ['manifest.json', 'app_config.json'] as const;

/** A file as found in the source, before junk is dropped and a wrapping folder removed. */
interface RawFile {
  path: string;
  size: number;
  open(): Promise<Readable>;
}

interface Listing {
  files: RawFile[];
  problems: string[];
  close(): Promise<void>;
}

const invalid = (message: string, problems: string[]) => new FreeholdError('invalid_package', message, problems);

/** Metadata that zip tools add and that is never part of an app. */
function isJunk(p: string): boolean {
  const segments = p.split('/');
  return segments[0] === '__MACOSX' || segments.includes('.git') || segments[segments.length - 1] === '.DS_Store';
}

// ---------- zip ----------

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

async function listZip(zipPath: string, maxEntries: number): Promise<Listing> {
  // Loaded with the first zip install, not with the server: most installs are rare events.
  const { default: yauzl } = await import('yauzl');
  let zip: ZipFile;
  try {
    // decodeStrings: false so that yauzl does not stop at the first bad name; we
    // decode and judge every name ourselves and report them all.
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (err) {
    throw invalid('The package is not a readable zip file', [`it is not a zip archive, or it is damaged or cut short (the zip reader says: ${(err as Error).message})`]);
  }
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      zip.close();
    }
  };
  if (zip.entryCount > maxEntries) {
    await close();
    throw invalid('The package has too many files', [`the zip holds ${zip.entryCount} entries; at most ${maxEntries} are allowed`]);
  }
  const problems: string[] = [];
  const files: RawFile[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const name = zipEntryName(yauzl, entry);
      const shown = JSON.stringify(name.slice(0, 120));
      const isDir = name.endsWith('/');
      const pathProblem = relPathProblem(isDir ? name.slice(0, -1) : name);
      if (pathProblem) {
        problems.push(`${shown}: ${pathProblem}`);
        continue;
      }
      const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
      const kind = mode & S_IFMT;
      if (kind === S_IFLNK) {
        problems.push(`${shown}: symbolic links are not allowed`);
        continue;
      }
      if (kind !== 0 && kind !== S_IFREG && kind !== S_IFDIR) {
        problems.push(`${shown}: not a regular file`);
        continue;
      }
      if (isDir || kind === S_IFDIR) continue;
      if (entry.isEncrypted()) {
        problems.push(`${shown}: encrypted entries are not supported`);
        continue;
      }
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        problems.push(`${shown}: unsupported compression method ${entry.compressionMethod}`);
        continue;
      }
      files.push({ path: name, size: entry.uncompressedSize, open: async () => crcChecked(await zip.openReadStreamPromise(entry), entry.crc32) });
    }
  } catch (err) {
    await close();
    throw invalid('The package is not a readable zip file', [...problems, `zip: ${(err as Error).message}`]);
  }
  return { files, problems, close };
}

/**
 * yauzl checks sizes but not CRC-32s, so a corrupt entry would install as is: the
 * bytes pass through a running CRC, and a mismatch errors the stream before its end
 * (so no store commits them).
 */
function crcChecked(src: Readable, expected: number): Readable {
  let crc = 0;
  const check = new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      crc = crc32(chunk, crc);
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      done(crc === expected >>> 0 ? null : new Error('CRC-32 mismatch: the entry is corrupt'));
    },
  });
  // Errors of the source reach `check`, which is the stream the reader holds.
  pipeline(src, check, () => {});
  return check;
}

// ---------- folder ----------

async function listFolder(root: string, maxEntries: number): Promise<Listing> {
  const problems: string[] = [];
  const files: RawFile[] = [];
  let entries = 0;
  const rootStat = await lstat(root).catch(() => null);
  if (!rootStat || !rootStat.isDirectory()) throw invalid('The package folder does not exist', [`${root}: not a folder`]);

  async function walk(rel: string): Promise<void> {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const name of names) {
      if (++entries > maxEntries) return;
      const relPath = rel ? `${rel}/${name}` : name;
      const shown = JSON.stringify(relPath.slice(0, 120));
      const problem = relPathProblem(relPath);
      if (problem) {
        problems.push(`${shown}: ${problem}`);
        continue;
      }
      const full = path.join(root, ...relPath.split('/'));
      // lstat, never stat: a symlink could point anywhere on this machine.
      const st = await lstat(full);
      if (st.isSymbolicLink()) problems.push(`${shown}: symbolic links are not allowed`);
      else if (st.isDirectory()) {
        if (!isJunk(relPath)) await walk(relPath);
      } else if (st.isFile()) files.push({ path: relPath, size: st.size, open: async () => createReadStream(full) });
      else problems.push(`${shown}: not a regular file`);
    }
  }
  await walk('');
  if (entries > maxEntries) problems.push(`the folder holds more than ${maxEntries} entries`);
  return { files, problems, close: async () => {} };
}

// ---------- shared checks ----------

/** `app/index.html`, `app/x.js` → `index.html`, `x.js`: zipping a folder wraps everything in it. */
function unwrapSingleFolder(files: RawFile[]): RawFile[] {
  if (files.length === 0) return files;
  const first = files[0]!.path.split('/')[0]!;
  const wrapped = files.every((f) => f.path.startsWith(first + '/'));
  return wrapped ? files.map((f) => ({ ...f, path: f.path.slice(first.length + 1) })) : files;
}

function duplicateProblems(files: RawFile[]): string[] {
  const problems: string[] = [];
  const exact = new Set<string>();
  // Case-insensitive file systems (macOS, Windows, some S3 gateways) would merge these.
  const folded = new Map<string, string>();
  for (const f of files) {
    const shown = JSON.stringify(f.path.slice(0, 120));
    if (exact.has(f.path)) problems.push(`${shown}: appears more than once`);
    else if (folded.has(f.path.toLowerCase())) problems.push(`${shown}: differs only by case from ${JSON.stringify(folded.get(f.path.toLowerCase()))}`);
    exact.add(f.path);
    folded.set(f.path.toLowerCase(), f.path);
  }
  // `a` and `a/b` cannot both exist where keys are stored as files and folders.
  for (const f of files) {
    const segments = f.path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/');
      if (exact.has(folder)) problems.push(`${JSON.stringify(folder)}: is both a file and a folder`);
    }
  }
  return [...new Set(problems)];
}

/**
 * Counts real bytes as they stream: one entry may not exceed its declared size and
 * the whole package may not exceed the limit, whatever the headers claimed.
 */
class ByteBudget {
  private used = 0;
  constructor(private readonly max: number) {}

  guard(file: RawFile): Transform {
    let seen = 0;
    const budget = this;
    return new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
        seen += chunk.length;
        budget.used += chunk.length;
        if (seen > file.size) return done(invalid('The package is invalid', [`${file.path}: holds more bytes than it declares`]));
        if (budget.used > budget.max) return done(invalid('The package is too large', [`its files hold more than ${formatBytes(budget.max)} once unpacked`]));
        done(null, chunk);
      },
    });
  }
}

async function readCapped(stream: Readable, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      stream.destroy();
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readManifestFiles(files: Map<string, RawFile>): Promise<{ texts: { manifestJson?: string; appConfigJson?: string }; problems: string[] }> {
  const texts: { manifestJson?: string; appConfigJson?: string } = {};
  const problems: string[] = [];
  for (const name of MANIFEST_FILES) {
    const f = files.get(name);
    if (!f) continue;
    let bytes: Buffer | null;
    try {
      bytes = await readCapped(await f.open(), MAX_MANIFEST_BYTES);
    } catch (err) {
      problems.push(`${name}: cannot be read (${(err as Error).message})`);
      continue;
    }
    if (!bytes) problems.push(`${name}: larger than ${MAX_MANIFEST_BYTES / 1024} KB`);
    else if (name === 'manifest.json') texts.manifestJson = bytes.toString('utf8');
    else texts.appConfigJson = bytes.toString('utf8');
  }
  if (!files.has('manifest.json') && !files.has('app_config.json')) {
    problems.push('the package has no manifest.json (or app_config.json) at its top level');
  }
  return { texts, problems };
}

/**
 * Opens and checks a package. On success the caller owns the result and must call
 * `close()`; on failure everything is already released and the error lists every
 * problem found (FreeholdError 'invalid_package', or 'invalid_manifest').
 */
export async function readAppPackage(source: PackageSource, opts: ReadPackageOptions): Promise<AppPackage> {
  const maxEntries = opts.maxEntries ?? MAX_PACKAGE_ENTRIES;
  const listing = 'zipPath' in source ? await listZip(source.zipPath, maxEntries) : await listFolder(source.folder, maxEntries);
  try {
    const problems = [...listing.problems];
    const raw = unwrapSingleFolder(listing.files.filter((f) => !isJunk(f.path)));
    problems.push(...duplicateProblems(raw));
    const totalBytes = raw.reduce((n, f) => n + f.size, 0);
    if (totalBytes > opts.maxBytes) problems.push(`its files add up to ${formatBytes(totalBytes)} unpacked; at most ${formatBytes(opts.maxBytes)} are allowed`);
    if (raw.length > maxEntries) problems.push(`the package holds ${raw.length} files; at most ${maxEntries} are allowed`);

    const budget = new ByteBudget(opts.maxBytes);
    const files: PackageFile[] = raw.map((f) => ({
      path: f.path,
      size: f.size,
      open: async () => {
        const src = await f.open();
        const guard = budget.guard(f);
        // A failing source (bad CRC, size mismatch, truncated zip) fails the guarded
        // stream too, as a package problem rather than an internal error.
        src.on('error', (err) => guard.destroy(err instanceof FreeholdError ? err
          : invalid('The app package is invalid', [`${f.path}: ${err.message}`])));
        guard.on('close', () => src.destroy());
        // The reader may attach only later (a store opens its file first): without a
        // listener an early error would crash the process. Readers still see it,
        // since a stream destroyed with an error stays `errored`.
        guard.on('error', () => {});
        return src.pipe(guard);
      },
    }));
    const byPath = new Map(raw.map((f) => [f.path, f]));
    if (problems.length === 0) {
      const m = await readManifestFiles(byPath);
      problems.push(...m.problems);
      if (problems.length === 0) {
        const { manifest, raw: rawManifest, warnings } = parseManifest(m.texts, { expectedName: opts.expectedName, files: new Set(byPath.keys()) });
        return { manifest, rawManifest, files, totalBytes, warnings, close: listing.close };
      }
    }
    throw invalid('The app package is invalid', problems);
  } catch (err) {
    await listing.close();
    throw err;
  }
}
