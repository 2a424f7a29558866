import { existsSync, lstatSync, readdirSync, watch, type FSWatcher } from 'node:fs';
import { basename, join } from 'node:path';
import { isErrno } from './fsutil.js';
import { overflowsAssumed, WATCH_SUPPORTED } from './watch.js';

/** While the system owner's folder cannot be watched (the watch limit, say), how often to try again. */
const RETRY_MS = 1000;

/**
 * The flat-file store's change stamp (RecordStore.changeStamp): a counter moved by
 * any change under the system owner's folder, seen through inotify. Only one process
 * serves a flat-file root, so the changes it must catch are the ones made beside it,
 * such as a token file deleted by hand. Such a change's event arrives a moment after
 * it, as PostgreSQL's notification does.
 *
 * Watched: the owner folder itself (its journal and change log, and table folders
 * coming and going) and each table folder in it, since inotify does not recurse. An
 * event naming a table folder in the owner folder (created, removed, renamed) watches
 * that name afresh, so a folder removed and made again is not left unwatched; every
 * event moves the stamp, so nothing read before it is trusted after it. The store's
 * own writes move the stamp too (their files change like any other's), which the
 * contract allows. An inotify queue overflow assumed by the table cache's watcher (one
 * queue per process) moves it as well. Where watching is not possible (not Linux, the
 * watch limit, an error), the stamp is undefined and callers cache nothing.
 */
export class SystemChangeStamp {
  private stamp = 0;
  private readonly watchers = new Map<string, FSWatcher>();
  private started = false;
  private nextTry = 0;
  private overflows = overflowsAssumed();
  private closed = false;

  constructor(private readonly ownerDir: string) {}

  current(): number | undefined {
    if (!WATCH_SUPPORTED || this.closed) return undefined;
    if (!this.started) {
      const now = Date.now();
      // Until the system owner's first write there is nothing to watch (and nothing to cache).
      if (now < this.nextTry || !existsSync(this.ownerDir)) return undefined;
      if (!this.start()) {
        this.nextTry = now + RETRY_MS;
        return undefined;
      }
    }
    if (overflowsAssumed() !== this.overflows) {
      this.overflows = overflowsAssumed();
      this.stamp++;
    }
    return this.stamp;
  }

  close(): void {
    this.closed = true;
    this.stop();
  }

  private start(): boolean {
    try {
      this.add(this.ownerDir, (name) => this.onOwnerEvent(name));
      for (const e of readdirSync(this.ownerDir, { withFileTypes: true })) {
        if (e.isDirectory()) this.add(join(this.ownerDir, e.name), () => this.stamp++);
      }
    } catch {
      this.stop();
      return false;
    }
    this.started = true;
    // Nothing read before the watches were in place is to be trusted after.
    this.stamp++;
    return true;
  }

  private onOwnerEvent(name: string | null): void {
    this.stamp++;
    // No name, or the owner folder's own (removed, moved): watch everything afresh at the next read.
    if (name === null || name === basename(this.ownerDir)) {
      this.stop();
      return;
    }
    const dir = join(this.ownerDir, name);
    this.watchers.get(dir)?.close();
    this.watchers.delete(dir);
    try {
      if (lstatSync(dir).isDirectory()) this.add(dir, () => this.stamp++);
    } catch (e) {
      if (!isErrno(e, 'ENOENT', 'ENOTDIR')) this.stop();
    }
  }

  private add(dir: string, onEvent: (name: string | null) => void): void {
    const w = watch(dir, { persistent: false, encoding: 'utf8' }, (_type, name) => onEvent(name));
    w.on('error', () => {
      // Its folder went away or the watch broke: watch everything afresh at the next read.
      this.stamp++;
      this.stop();
    });
    this.watchers.set(dir, w);
  }

  private stop(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.started = false;
  }
}
