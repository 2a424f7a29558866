import { fsyncDir, fsyncFile, isErrno } from './fsutil.js';

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
   * fsyncs everything noted. A file is fsynced by name: if a later unit replaced it
   * meanwhile, the newer version is the one that matters, and that unit's own entry
   * (in the other journal file) covers it until the next checkpoint.
   */
  async flush(syncLog: () => Promise<void>): Promise<void> {
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
}
