import { dirname, join } from 'node:path';
import { atTurnEnd } from '../../turn-end.js';
import type { DiskThread } from './disk-thread.js';
import { uniqueSuffix } from './fsutil.js';
import { TMP_PREFIX } from './paths.js';

/** A temp name beside `file` for a record file's old inode, on its way out. */
export function retiredNameFor(file: string): string {
  return join(dirname(file), `${TMP_PREFIX}old-${uniqueSuffix()}`);
}

/**
 * Removes one store's retired record files (temp names) on the disk thread (why they
 * are retired rather than freed at once: `retire` in record-store.ts): the names
 * retired in one event-loop turn go as one request, when the turn ends. A name still
 * queued at a crash is a temp file like any other, removed when its owner is next opened.
 */
export class BackgroundUnlinks {
  /** Retired in this turn, not yet handed over. */
  private batch: string[] = [];
  private handedOver = 0;
  private readonly waiters: Array<{ below: number; resolve: () => void }> = [];

  constructor(private readonly disk: DiskThread) {}

  get pending(): number {
    return this.batch.length + this.handedOver;
  }

  add(name: string): void {
    if (this.batch.length === 0) atTurnEnd(() => this.handOver());
    this.batch.push(name);
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

  private handOver(): void {
    const names = this.batch;
    this.batch = [];
    this.handedOver += names.length;
    void this.disk.unlink(names).catch(() => {
      // not removed: temp files, which the owner's next open removes
    }).finally(() => {
      this.handedOver -= names.length;
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
