import type { DiskThread } from './disk-thread.js';

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
  /** @param since When the previous checkpoint began (this one's work started to gather); -Infinity: none did. */
  constructor(readonly since = performance.now()) {}

  get empty(): boolean {
    return !this.log && this.files.size === 0 && this.dirs.size === 0;
  }

  /**
   * Makes everything noted durable, on the disk thread; `logFile` is the change log. A
   * file is fsynced by name: if a later unit replaced it meanwhile, the newer version is
   * the one that matters, and that unit's own entry (in the other journal file) covers
   * it until the next checkpoint.
   */
  flush(disk: DiskThread, logFile: string): Promise<void> {
    return disk.sync([...this.files], [...this.dirs], this.log ? logFile : null, SYNCFS_FROM_FILES);
  }
}
