import { unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { uniqueSuffix } from './fsutil.js';
import { TMP_PREFIX } from './paths.js';

/** Unlinks in flight at once: the thread pool also serves the journal's fdatasync, which acknowledgements wait for. */
const MAX_IN_FLIGHT = 3;

/** A temp name beside `file` for a record file's old inode, on its way out. */
export function retiredNameFor(file: string): string {
  return join(dirname(file), `${TMP_PREFIX}old-${uniqueSuffix()}`);
}

/**
 * Removes retired record files (temp names) in the thread pool, in the order given
 * (why they are retired rather than freed at once: `retire` in record-store.ts). A
 * name still queued at a crash is a temp file like any other, removed when its owner
 * is next opened.
 */
export class BackgroundUnlinks {
  /** Names not yet started; `head` is the next one (no shift(): the queue can grow long under load). */
  private queue: string[] = [];
  private head = 0;
  private inFlight = 0;
  private readonly waiters: Array<{ below: number; resolve: () => void }> = [];

  get pending(): number {
    return this.queue.length - this.head + this.inFlight;
  }

  add(name: string): void {
    this.queue.push(name);
    this.pump();
  }

  /** Resolves once fewer than `below` names are pending. */
  whenBelow(below: number): Promise<void> {
    if (this.pending < below) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ below, resolve }));
  }

  /** Resolves once everything queued so far is removed (or has failed to be). */
  drained(): Promise<void> {
    return this.whenBelow(1);
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.head < this.queue.length) {
      const name = this.queue[this.head++]!;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (this.head >= 4096 && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.inFlight++;
      unlink(name)
        .catch(() => {
          // already gone, or left for the next open to remove with the other temp files
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
          for (let i = this.waiters.length - 1; i >= 0; i--) {
            const w = this.waiters[i]!;
            if (this.pending < w.below) {
              this.waiters.splice(i, 1);
              w.resolve();
            }
          }
        });
    }
  }
}
