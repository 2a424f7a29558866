import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, lstat, unlink, type FileHandle } from 'node:fs/promises';
import { createReadStream, type Dirent } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { FreeholdError } from '../../core/errors.js';
import { compareStrings } from '../../query/evaluate.js';
import type { BlobInfo, BlobRange, BlobStore } from '../types.js';
import { KeyedLock } from '../key-lock.js';
import { makeDirs } from '../make-dirs.js';
import { keySegments, TMP_PREFIX } from '../keys.js';
import { READ_WITHOUT_WAITING } from '../open-flags.js';

export { keySegments } from '../keys.js';

/**
 * Blobs as plain files on the local disk.
 *
 * Layout: `<root>/blobs/<key>` holds the bytes, readable with ordinary tools, and
 * `<root>/meta/<key>` a small JSON sidecar (sha256, size, content type). Keeping the
 * sidecars in a parallel tree means no key can collide with a sidecar name and
 * listings never see them.
 *
 * Writes stream into `.tmp-<random>` in the target directory (same filesystem, so
 * rename is atomic), hash as they go, fsync, then rename into place: readers see
 * the old blob or the new one, never a partial one. The sidecar records the inode
 * of the blob it describes; if a crash or an outside copy leaves them out of step,
 * `head` notices, recomputes the hash and repairs the sidecar.
 */

interface Meta {
  etag: string;
  size: number;
  ino: number;
  contentType?: string;
}

function isErrno(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}

export class FsBlobStore implements BlobStore {
  readonly kind = 'fs';
  private readonly blobRoot: string;
  private readonly metaRoot: string;
  /** Per-key queue so that the two renames of one put (and deletes) never interleave. */
  private readonly locks = new KeyedLock();

  constructor(root: string) {
    const abs = resolve(root);
    this.blobRoot = join(abs, 'blobs');
    this.metaRoot = join(abs, 'meta');
  }

  async init(): Promise<void> {
    makeDirs(this.blobRoot);
    makeDirs(this.metaRoot);
  }

  async close(): Promise<void> {}

  /** The temp files of writes killed before their rename (a crash, SIGKILL), in both trees. */
  async sweepLeftovers(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    const sweep = async (dir: string): Promise<void> => {
      for (const e of await readFolder(dir)) {
        const path = join(dir, e.name);
        if (e.isDirectory()) await sweep(path);
        else if (e.name.startsWith(TMP_PREFIX)) {
          const st = await stat(path).catch(() => null);
          // Young ones may belong to a write under way (this process or another).
          if (st && st.mtimeMs < cutoff && (await unlink(path).then(() => true, () => false))) removed++;
        }
      }
    };
    await sweep(this.blobRoot);
    await sweep(this.metaRoot);
    return removed;
  }

  async put(key: string, body: Readable | Buffer, options: { contentType?: string; maxBytes?: number } = {}): Promise<BlobInfo> {
    const segs = keySegments(key);
    const blobPath = this.under(this.blobRoot, segs);
    const metaPath = this.under(this.metaRoot, segs);
    const max = options.maxBytes ?? Infinity;
    const tmpBlob = join(dirname(blobPath), TMP_PREFIX + randomBytes(8).toString('hex'));
    const tmpMeta = join(dirname(metaPath), TMP_PREFIX + randomBytes(8).toString('hex'));
    try {
      await mkdir(dirname(blobPath), { recursive: true });
      await mkdir(dirname(metaPath), { recursive: true });
      const { size, etag } = await writeHashed(tmpBlob, body, max);
      const { ino } = await stat(tmpBlob);
      const meta: Meta = { etag, size, ino, ...(options.contentType ? { contentType: options.contentType } : {}) };
      await writeDurably(tmpMeta, JSON.stringify(meta));
      await this.locks.run(key, async () => {
        await rename(tmpMeta, metaPath);
        await rename(tmpBlob, blobPath);
      });
      await syncDir(dirname(blobPath));
      const st = await stat(blobPath);
      return { size, etag, modified: Math.floor(st.mtimeMs), ...(meta.contentType ? { contentType: meta.contentType } : {}) };
    } catch (e) {
      // Cleanup must not mask the real error (rm fails with ENOTDIR when the folder never existed).
      await rm(tmpBlob, { force: true }).catch(() => {});
      await rm(tmpMeta, { force: true }).catch(() => {});
      if (isErrno(e, 'EISDIR', 'ENOTDIR', 'EEXIST')) throw new FreeholdError('bad_request', `Blob key ${key} conflicts with an existing folder or file`);
      throw e;
    }
  }

  async get(key: string, range?: BlobRange): Promise<Readable | null> {
    const path = this.under(this.blobRoot, keySegments(key));
    if (range && !(Number.isInteger(range.start) && Number.isInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
      throw new FreeholdError('bad_request', 'Invalid byte range');
    }
    let fh: FileHandle;
    try {
      fh = await open(path, READ_WITHOUT_WAITING);
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null;
      throw e;
    }
    if (!(await fh.stat()).isFile()) {
      await fh.close();
      return null;
    }
    // An end past the file simply stops at EOF; the HTTP layer clamps ranges using head().
    return fh.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async head(key: string): Promise<BlobInfo | null> {
    const segs = keySegments(key);
    const blobPath = this.under(this.blobRoot, segs);
    const st = await statFile(blobPath);
    if (!st) return null;
    const metaPath = this.under(this.metaRoot, segs);
    let meta = await readMeta(metaPath);
    if (!meta || meta.ino !== st.ino || meta.size !== st.size) {
      meta = await this.repairMeta(key, blobPath, metaPath, meta);
    }
    return {
      size: st.size,
      modified: Math.floor(st.mtimeMs),
      etag: meta.etag,
      ...(meta.contentType ? { contentType: meta.contentType } : {}),
    };
  }

  async delete(key: string): Promise<boolean> {
    const segs = keySegments(key);
    return this.locks.run(key, async () => {
      const blobPath = this.under(this.blobRoot, segs);
      if (!(await statFile(blobPath))) return false;
      await unlink(blobPath);
      await rm(this.under(this.metaRoot, segs), { force: true });
      return true;
    });
  }

  /**
   * A prefix names a folder: `a/b` and `a/b/` both mean every key starting `a/b/`
   * (never `a/bc`), and '' means every key.
   */
  async deletePrefix(prefix: string): Promise<number> {
    const segs = keySegments(prefix, true);
    let n = 0;
    for await (const _ of this.list(prefix)) n++;
    for (const root of [this.blobRoot, this.metaRoot]) {
      const dir = segs.length ? this.under(root, segs) : root;
      const st = await lstat(dir).catch(() => null);
      if (!st?.isDirectory()) continue;
      if (segs.length) {
        await rm(dir, { recursive: true, force: true });
      } else {
        for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
      }
    }
    return n;
  }

  /** Every key under a folder prefix (see deletePrefix), in code-point (UTF-8 byte) order of the full key. */
  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    const segs = keySegments(prefix, true);
    const dir = segs.length ? this.under(this.blobRoot, segs) : this.blobRoot;
    yield* walk(dir, segs.length ? segs.join('/') + '/' : '');
  }

  private under(root: string, segs: string[]): string {
    const p = resolve(root, ...segs);
    if (!p.startsWith(root + sep)) throw new FreeholdError('bad_request', 'Invalid blob key: outside the store');
    return p;
  }

  private async repairMeta(key: string, blobPath: string, metaPath: string, stale: Meta | null): Promise<Meta> {
    return this.locks.run(key, async () => {
      const st = await stat(blobPath);
      const etag = await hashFile(blobPath);
      const meta: Meta = { etag, size: st.size, ino: st.ino, ...(stale?.contentType ? { contentType: stale.contentType } : {}) };
      const tmp = join(dirname(metaPath), TMP_PREFIX + randomBytes(8).toString('hex'));
      try {
        await mkdir(dirname(metaPath), { recursive: true });
        await writeDurably(tmp, JSON.stringify(meta));
        await rename(tmp, metaPath);
      } catch {
        await rm(tmp, { force: true }); // the sidecar is a cache: failing to repair it is not an error
      }
      return meta;
    });
  }


}

/** Streams `body` to a new file, hashing and counting; refuses more than `max` bytes. */
async function writeHashed(path: string, body: Readable | Buffer, max: number): Promise<{ size: number; etag: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const fh = await open(path, 'wx');
  try {
    const chunks: AsyncIterable<Buffer | string> | Buffer[] = Buffer.isBuffer(body) ? [body] : body;
    for await (const chunk of chunks) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buf.length;
      if (size > max) throw new FreeholdError('too_large', `Blob is larger than the limit of ${max} bytes`);
      hash.update(buf);
      await writeAll(fh, buf);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { size, etag: hash.digest('hex') };
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

async function writeDurably(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await writeAll(fh, Buffer.from(text));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync a directory so a rename survives power loss; not every platform allows it. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // best effort
  }
}

async function statFile(path: string) {
  try {
    const st = await stat(path);
    return st.isFile() ? st : null;
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null;
    throw e;
  }
}

async function readMeta(path: string): Promise<Meta | null> {
  try {
    const fh = await open(path, READ_WITHOUT_WAITING);
    let text: string;
    try {
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
    const m = JSON.parse(text) as Partial<Meta>;
    return typeof m.etag === 'string' && typeof m.size === 'number' && typeof m.ino === 'number' ? (m as Meta) : null;
  } catch {
    return null; // absent or unreadable: head() rebuilds it
  }
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A folder's entries; none when it is not there (or not a folder). */
async function readFolder(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return [];
    throw e;
  }
}

async function* walk(dir: string, keyPrefix: string): AsyncGenerator<{ key: string; size: number }> {
  const entries = await readFolder(dir);
  // Sorting a folder's name as "name/" makes a depth-first walk come out in full-key order.
  const items = entries
    .filter((e) => !e.name.startsWith(TMP_PREFIX) && (e.isFile() || e.isDirectory()))
    .map((e) => ({ e, sortName: e.isDirectory() ? e.name + '/' : e.name }))
    .sort((a, b) => compareStrings(a.sortName, b.sortName));
  for (const { e } of items) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      yield* walk(path, keyPrefix + e.name + '/');
    } else {
      const st = await stat(path).catch(() => null);
      if (st) yield { key: keyPrefix + e.name, size: st.size };
    }
  }
}
