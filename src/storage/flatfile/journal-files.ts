import { closeSync, fdatasync, fstatSync, ftruncateSync, mkdirSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import { DIR_MODE, FILE_MODE, fsyncDir, isErrno, truncateDurably, writeAllSync } from './fsutil.js';
import type { FlatFilePaths } from './paths.js';

const datasync = promisify(fdatasync);

/**
 * One owner's two journal files (protocol in journal.ts): entries are appended to
 * the active one; a checkpoint switches appends to the other, then empties the one
 * it switched away from. The files stay open while the store runs, so a commit costs
 * one write and one fdatasync.
 */
export class JournalFiles {
  private readonly fds: [number, number];
  private active: 0 | 1 = 0;
  /** Bytes in the active file: where the next entry starts. */
  size = 0;

  /** Opens (creating) both files; recovery has emptied them. New files' directory entries are made durable first. */
  static async open(paths: FlatFilePaths, owner: string): Promise<JournalFiles> {
    const ownerDir = paths.owner(owner);
    let created = false;
    try {
      mkdirSync(ownerDir, { mode: DIR_MODE });
      await fsyncDir(paths.root);
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
    }
    const fds = paths.journals(owner).map((file) => {
      try {
        return openSync(file, 'r+');
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
        created = true;
        return openSync(file, 'w+', FILE_MODE);
      }
    }) as [number, number];
    if (created) await fsyncDir(ownerDir);
    return new JournalFiles(paths, owner, fds);
  }

  private constructor(private readonly paths: FlatFilePaths, private readonly owner: string, fds: [number, number]) {
    this.fds = fds;
    this.size = fstatSync(fds[0]).size;
  }

  /**
   * Appends one framed entry and makes it durable: the unit's commit point. Returns
   * where it starts, for `revoke`. If this throws, whether the entry is durable is
   * unknown: the caller must find out by recovering.
   */
  async append(entry: Buffer): Promise<number> {
    const start = this.size;
    const fd = this.fds[this.active];
    this.size = start + entry.length;
    // The write goes to the page cache (on the calling thread, like the unit's other small writes); only the sync waits on the disk.
    writeAllSync(fd, entry, start);
    await datasync(fd);
    return start;
  }

  /** Takes the last entry back (it starts at `start`), durably. */
  async revoke(start: number): Promise<void> {
    const fd = this.fds[this.active];
    ftruncateSync(fd, start);
    this.size = start;
    await datasync(fd);
  }

  /** Sends later appends to the other file (empty: emptied by the previous checkpoint or by recovery). Returns the old one's name. */
  switch(): string {
    const old = this.paths.journals(this.owner)[this.active];
    this.active = this.active === 0 ? 1 : 0;
    this.size = fstatSync(this.fds[this.active]).size;
    if (this.size !== 0) throw new Error(`Journal ${this.paths.journals(this.owner)[this.active]} was not emptied`);
    return old;
  }

  /** After recovery emptied both files. */
  reset(): void {
    this.size = 0;
  }

  /** Empties a journal file once everything its entries did is durable. */
  async empty(file: string): Promise<void> {
    await truncateDurably(file, 0);
  }

  close(): void {
    for (const fd of this.fds) closeSync(fd);
  }
}
