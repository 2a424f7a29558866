import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, fstatSync, openSync, statfsSync, statSync, unlinkSync } from 'node:fs';
import { release } from 'node:os';
import { dirname } from 'node:path';
import { READ_WITHOUT_WAITING } from '../open-flags.js';
import { isErrno } from './fsutil.js';

/**
 * The flat-file store's slow disk work, as plain synchronous calls: the disk thread
 * (disk-worker.ts) runs them, or the main thread when no thread could be started
 * (disk-thread.ts). Synchronous because they run on a thread of their own: each call
 * costs its system call and nothing more, where the thread pool charged the event
 * loop a submission and a completion for every file.
 */

/** What a checkpoint makes durable (checkpoint.ts): record files, their folders, the change log. */
export interface SyncJob {
  files: string[];
  dirs: string[];
  /** The change log, fsynced if it exists; null: it did not grow. */
  log: string | null;
  /** From this many files on, one `sync -f` per file system instead of an fsync per file. */
  syncfsFrom: number;
  /** Whether `sync -f` may be tried (SyncfsState). */
  syncfs: boolean;
}

/** How `sync -f` went in one job, for the process-wide SyncfsState. */
export type SyncfsOutcome = 'not-tried' | 'worked' | 'failed' | 'missing';

export interface SyncResult {
  syncfs: SyncfsOutcome;
}

/**
 * Makes everything in `job` durable, or throws the first error that says it could not
 * be (an errno error, as fs calls throw). Names that are gone need nothing: a later unit
 * replaced or deleted them, and its own journal entry covers that.
 */
export function syncAll(job: SyncJob): SyncResult {
  if (job.syncfs && job.files.length >= job.syncfsFrom) {
    const outcome = syncFileSystems(job);
    if (outcome === 'worked') return { syncfs: outcome };
    fsyncEach(job);
    return { syncfs: outcome };
  }
  fsyncEach(job);
  return { syncfs: 'not-tried' };
}

function fsyncEach(job: SyncJob): void {
  for (const file of job.files) fsyncFile(file);
  for (const dir of job.dirs) fsyncDir(dir);
  if (job.log !== null) fsyncFile(job.log);
}

/** Removes retired record files; one already gone, or that cannot go, is a temp file the next open removes. */
export function unlinkAll(names: string[]): void {
  for (const name of names) {
    try {
      unlinkSync(name);
    } catch {
      // left for the owner's next open, with the other temp files
    }
  }
}

/**
 * fsyncs a file by name; a name that holds no file any more (a pipe put there by hand:
 * opened without blocking, and it cannot be synced) needs nothing either.
 */
function fsyncFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, READ_WITHOUT_WAITING);
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    // A file system that cannot sync files says EINVAL too: only a non-file is let be.
    if (!isErrno(e, 'EINVAL') || fstatSync(fd).isFile()) throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes a directory's entries durable. Platforms that cannot open a directory for fsync
 * (Windows) get the renames alone, the best there is; a folder dropped since needs nothing.
 */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (e) {
    if (isErrno(e, 'EISDIR', 'EPERM', 'EACCES', 'ENOENT', 'ENOTDIR')) return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    if (!isErrno(e, 'EINVAL', 'EPERM', 'EBADF', 'EISDIR')) throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * One syncfs(2) of each file system holding what is pending: every record file lives in
 * one of `dirs` (its table's folder, followed if it is a symlink to another file
 * system), the change log in the owner's folder. syncfs writes back every dirty page and
 * inode of the file system, directories included, then flushes the disk's cache: what
 * the fsyncs would have done, at once. Node has no binding for it; coreutils' `sync -f`
 * is one call, run in its own process. Anything but 'worked' has made nothing durable
 * that anyone relies on: the caller then fsyncs file by file, which reports a real disk
 * error itself.
 */
function syncFileSystems(job: SyncJob): SyncfsOutcome {
  const byDevice = new Map<number, string>();
  const logDir = job.log !== null ? [dirname(job.log)] : [];
  for (const dir of [...logDir, ...job.dirs]) {
    const st = statSync(dir, { throwIfNoEntry: false });
    // A table folder dropped since: nothing of it is left to sync.
    if (!st || byDevice.has(st.dev)) continue;
    // A file system not known to make syncfs as durable as fsync: file by file, without counting it against sync -f.
    if (!SYNCFS_FILE_SYSTEMS.has(statfsSync(dir).type)) return 'not-tried';
    byDevice.set(st.dev, dir);
  }
  for (const dir of byDevice.values()) {
    try {
      execFileSync('sync', ['-f', dir], { stdio: 'ignore' });
    } catch (e) {
      return isErrno(e, 'ENOENT') ? 'missing' : 'failed';
    }
  }
  return 'worked';
}

/**
 * Local file systems whose syncfs writes back every dirty inode and flushes the disk's
 * cache, as fsync does per file (statfs f_type): ext4 (also ext2/3), XFS, Btrfs; and
 * tmpfs, where both do nothing. On any other (network, FUSE, overlay), a checkpoint
 * fsyncs file by file.
 */
const SYNCFS_FILE_SYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994]);

/** Linux reports writeback errors from syncfs(2) only since 5.8; before, a failed write-back would pass unseen. */
function kernelReportsSyncfsErrors(): boolean {
  const [major = 0, minor = 0] = release().split('.').map((n) => parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 8);
}

/**
 * Whether `sync -f` is used, learnt once per process (the main thread keeps it; each job
 * says whether to try): the first failure on a machine where it never worked turns it off
 * for good (missing, or an older or other `sync` that does not know -f). Once it has
 * worked, a failure is the disk's, and the fsyncs that follow say so.
 */
export class SyncfsState {
  unavailable = process.platform !== 'linux' || !kernelReportsSyncfsErrors();
  private worked = false;

  note(outcome: SyncfsOutcome): void {
    if (outcome === 'worked') this.worked = true;
    else if (outcome === 'missing' || (outcome === 'failed' && !this.worked)) this.unavailable = true;
  }
}
