import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readdirSync, renameSync, unlinkSync, writeSync, type Dirent } from 'node:fs';
import { open, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TMP_PREFIX, TRASH_PREFIX } from './paths.js';
import { READ_WITHOUT_WAITING } from '../open-flags.js';

/** Small durable-file helpers: everything the flat-file store writes goes through these. */

export function isErrno(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}

/**
 * Makes a directory's entries (created, renamed, removed files) durable. Some
 * platforms (Windows) cannot open a directory for fsync; there the rename itself
 * is the best we get, so those errors are ignored.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch (e) {
    if (isErrno(e, 'EISDIR', 'EPERM', 'EACCES')) return;
    throw e;
  }
  try {
    await fh.sync();
  } catch (e) {
    if (!isErrno(e, 'EINVAL', 'EPERM', 'EBADF', 'EISDIR')) throw e;
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `file` with `data` atomically: a temp file in the same directory (same
 * filesystem, so rename is atomic), written and fsynced, then renamed over the
 * target. Readers see the old content or the new, never a mix. The caller fsyncs
 * the directory (once per directory per unit of work, not once per file).
 */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  replaceWithTempSync(await writeTemp(file, data), file);
}

/**
 * Puts a temp file written by writeTempSync in place under `file`, but never over an
 * existing file: the temp is hard-linked to the target name, which fails with EEXIST
 * if anything holds that name, so of two creators of one name exactly one wins (even
 * across processes). Returns false if the name was taken; the temp is removed either
 * way. Filesystems without hard links fall back to an exclusive create (`wx`), still
 * exclusive, though a crash could then leave a partial file.
 */
export function linkTempSync(tmp: string, file: string, data: string): boolean {
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if (isErrno(e, 'EEXIST')) return false;
    if (!isErrno(e, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV')) throw e;
  } finally {
    unlinkIfExistsSync(tmp);
  }
  let fd: number;
  try {
    fd = openSync(file, 'wx', FILE_MODE);
  } catch (e) {
    if (isErrno(e, 'EEXIST')) return false;
    throw e;
  }
  try {
    writeAllSync(fd, data);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Puts a temp file in place under `file`, replacing what is there (atomically, by rename). */
export function replaceWithTempSync(tmp: string, file: string): void {
  try {
    renameSync(tmp, file);
  } catch (e) {
    unlinkIfExistsSync(tmp);
    throw e;
  }
}

/** Owner data is private by default: files 0600, directories 0700 (before umask). */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/**
 * Writes `data` to a new temp file beside `file`, fsynced, and returns its name. Temp
 * names are never records, and leftovers are removed when the owner is opened.
 */
async function writeTemp(file: string, data: string): Promise<string> {
  const tmp = tempNameFor(file);
  const fh = await open(tmp, 'wx', FILE_MODE);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  return tmp;
}

/**
 * A temp file for a record text that a journal entry will hold (no fsync: a checkpoint
 * does it later), in three system calls on the calling thread. A unit stages all its
 * records at once, and for small files on a local disk the round trips through the
 * thread pool cost far more than the calls themselves (journal.ts).
 */
export function writeTempSync(file: string, data: string): string {
  const tmp = tempNameFor(file);
  const fd = openSync(tmp, 'wx', FILE_MODE);
  try {
    writeAllSync(fd, data);
  } catch (e) {
    closeSync(fd);
    unlinkIfExistsSync(tmp);
    throw e;
  }
  closeSync(fd);
  return tmp;
}

/**
 * Writes all of `data` (at `position`, or at the file offset); write(2) may take less
 * than it is given, as a full disk can before it reports ENOSPC.
 */
export function writeAllSync(fd: number, data: Buffer | string, position: number | null = null): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let written = 0;
  while (written < bytes.length) {
    const n = writeSync(fd, bytes, written, bytes.length - written, position === null ? null : position + written);
    if (n === 0) throw Object.assign(new Error('write(2) wrote nothing'), { code: 'EIO' });
    written += n;
  }
}

function tempNameFor(file: string): string {
  return join(dirname(file), `${TMP_PREFIX}${basename(file).slice(0, 32)}-${uniqueSuffix()}`);
}

/** Random per process, so that no two processes' temp names meet. */
const PROCESS_TAG = randomBytes(6).toString('hex');
let tempCount = 0;

/**
 * A suffix no other temp name of this process has had, nor (but for a 48-bit
 * coincidence) any other process's. A counter rather than random bytes per name:
 * random bytes were 1.5–4% of the event loop's time in the flat-file write rows.
 */
export function uniqueSuffix(): string {
  return `${PROCESS_TAG}${(tempCount++).toString(36)}`;
}

export function unlinkIfExistsSync(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return false;
    throw e;
  }
}

/**
 * fsyncs a file by name; a file that is gone (replaced or deleted since) needs nothing,
 * nor does a name that holds no file any more (a pipe put there by hand: opened without
 * blocking, and it cannot be synced).
 */
export async function fsyncFile(file: string): Promise<void> {
  let fh;
  try {
    fh = await open(file, READ_WITHOUT_WAITING);
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return;
    throw e;
  }
  try {
    await fh.sync();
  } catch (e) {
    // A file system that cannot sync files says EINVAL too: only a non-file is let be.
    if (!isErrno(e, 'EINVAL') || (await fh.stat()).isFile()) throw e;
  } finally {
    await fh.close();
  }
}

export async function unlinkIfExists(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return false;
    throw e;
  }
}

/** Cuts `file` back to `size` bytes if it is longer, durably. A missing file is fine. */
export async function truncateDurably(file: string, size: number): Promise<void> {
  let fh;
  try {
    fh = await open(file, 'r+');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return;
    throw e;
  }
  try {
    if ((await fh.stat()).size > size) {
      await fh.truncate(size);
      await fh.sync();
    }
  } finally {
    await fh.close();
  }
}

export function listDir(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return [];
    throw e;
  }
}

/**
 * Temp files from interrupted writes, and trash from dropped tables whose removal was cut
 * short. The store's temp names are only ever files, so a folder named like one is the
 * owner's own and stays, with what is in it.
 */
export async function removeLeftovers(ownerDir: string): Promise<void> {
  for (const e of listDir(ownerDir)) {
    const path = join(ownerDir, e.name);
    if (e.name.startsWith(TRASH_PREFIX)) {
      await rm(path, { recursive: true, force: true });
    } else if (e.name.startsWith(TMP_PREFIX)) {
      if (!e.isDirectory()) await unlinkIfExists(path);
    } else if (e.isDirectory()) {
      for (const f of listDir(path)) if (f.name.startsWith(TMP_PREFIX) && !f.isDirectory()) await unlinkIfExists(join(path, f.name));
    }
  }
}
