import { execFile } from 'node:child_process';
import { stat, statfs } from 'node:fs/promises';
import { release } from 'node:os';
import { dirname } from 'node:path';
import { fsyncDir, fsyncFile, isErrno } from './fsutil.js';

/**
 * From this many files on, a checkpoint makes them durable with one syncfs(2) per file
 * system rather than an fsync per file. Measured on this project's machine (ext4, 20,000
 * small dirty files): 174 ms against 3.9 s two at a time. Each fsync also flushes the
 * disk's cache, and under sustained writes those flushes queued ahead of the journal's
 * fdatasync, which every acknowledgement waits for; checkpoints of thousands of files
 * took seconds, and units waiting for one (MAX_PENDING_FILES) stalled every writer.
 * Below it, the per-file fsyncs are cheaper than starting a process.
 */
export const SYNCFS_FROM_FILES = 128;

/**
 * What the units since the last checkpoint changed without fsync (journal.ts, step 4):
 * record files, directories, and whether the change log grew. A checkpoint makes all
 * of it durable before the journal file holding those units is emptied.
 */
export class PendingSync {
  readonly files = new Set<string>();
  readonly dirs = new Set<string>();
  log = false;

  get empty(): boolean {
    return !this.log && this.files.size === 0 && this.dirs.size === 0;
  }

  /**
   * fsyncs everything noted; `logFile` is the change log `syncLog` syncs. A file is
   * fsynced by name: if a later unit replaced it meanwhile, the newer version is the one
   * that matters, and that unit's own entry (in the other journal file) covers it until
   * the next checkpoint.
   */
  async flush(syncLog: () => Promise<void>, logFile: string): Promise<void> {
    if (this.files.size >= SYNCFS_FROM_FILES && (await this.syncFileSystems(logFile))) return;
    const files = [...this.files];
    let next = 0;
    // Two at a time: leave the thread pool free for the journal's fdatasync, which acknowledgements wait for.
    const worker = async () => {
      while (next < files.length) await fsyncFile(files[next++]!);
    };
    await Promise.all([
      worker(),
      worker(),
      ...[...this.dirs].map((d) => fsyncDir(d).catch((e: unknown) => (isErrno(e, 'ENOENT', 'ENOTDIR') ? undefined : Promise.reject(e)))),
      this.log ? syncLog() : undefined,
    ]);
  }

  /**
   * One syncfs(2) of each file system holding what is pending: every record file lives in
   * one of `dirs` (its table's folder, followed if it is a symlink to another file
   * system), the change log in the owner's folder. syncfs writes back every dirty page and
   * inode of the file system, directories included, then flushes the disk's cache: what
   * the fsyncs would have done, at once. Node has no binding for it; coreutils' `sync -f`
   * is one call, run in its own process. False, having made nothing durable that anyone
   * relies on, if it cannot be used (see `syncfs`, or a file system not known to make
   * syncfs as durable as fsync, or `sync -f` failed): the caller then fsyncs file by
   * file, which reports a real disk error itself.
   */
  private async syncFileSystems(logFile: string): Promise<boolean> {
    if (syncfs.unavailable) return false;
    const byDevice = new Map<number, string>();
    for (const dir of [dirname(logFile), ...this.dirs]) {
      try {
        const st = await stat(dir);
        if (byDevice.has(st.dev)) continue;
        if (!SYNCFS_FILE_SYSTEMS.has((await statfs(dir)).type)) return false;
        byDevice.set(st.dev, dir);
      } catch (e) {
        // A table folder dropped since: nothing of it is left to sync.
        if (!isErrno(e, 'ENOENT', 'ENOTDIR')) throw e;
      }
    }
    for (const dir of byDevice.values()) {
      if (!(await syncfs.run(dir))) return false;
    }
    return true;
  }
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

/** `sync -f`, while it works: the first failure on a machine where it never worked turns it off. */
const syncfs = {
  unavailable: process.platform !== 'linux' || !kernelReportsSyncfsErrors(),
  worked: false,
  run(dir: string): Promise<boolean> {
    return new Promise((resolve) => {
      execFile('sync', ['-f', dir], (error) => {
        if (!error) {
          this.worked = true;
          resolve(true);
          return;
        }
        // Missing, or an older or other `sync` that does not know -f: never again. Once it
        // has worked, a failure is the disk's, and the fsyncs that follow will say so.
        if (!this.worked || (error as NodeJS.ErrnoException).code === 'ENOENT') this.unavailable = true;
        resolve(false);
      });
    });
  },
};
