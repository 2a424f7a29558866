import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/**
 * Change notification for table directories (Linux inotify through `fs.watch`), so
 * that a query need not stat every file to notice hand edits.
 *
 * What makes this exact rather than "eventually": libuv gives every `fs.watch` of a
 * process ONE inotify instance, and an inotify instance queues the events of all its
 * watches in the order they happened (an event is queued inside the system call that
 * causes it, before that call returns). So a query that touches a sentinel file in a
 * watched directory of its own and waits for that event has, by then, been handed
 * every event for changes that completed before the touch: a change finished before
 * the query started has been marked dirty before the query reads the cache. That
 * wait is the `Barrier`; concurrent queries share one touch.
 *
 * What inotify does not report, and the fallbacks:
 *   - a queue overflow: libuv drops IN_Q_OVERFLOW silently. The kernel drops events
 *     only once max_queued_events are waiting, and libuv reads the whole queue in one
 *     go, so when one burst delivers at least half that many events, an overflow is
 *     assumed and every watched table is fully re-checked (`onOverflow`).
 *   - writes through another hard link, or through mmap: the cache re-stats files
 *     with more than one link on every query; mmap writes are not supported.
 *   - the directory itself deleted or moved: the event names the directory (libuv
 *     reports the watched path's base name), which the cache treats as "rewatch and
 *     rescan"; the cache also compares the directory's inode on every query.
 *   - a watcher error, a failure to set one up (e.g. the watch limit), a barrier
 *     that does not come back in time, or a platform other than Linux: the table is
 *     checked by the stat sweep, as without watching.
 */

/** How long a barrier may take before the query falls back to the stat sweep. */
const BARRIER_TIMEOUT_MS = 2000;

function maxQueuedEvents(): number {
  try {
    const n = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : 16384;
  } catch {
    return 16384;
  }
}

export const WATCH_SUPPORTED = process.platform === 'linux';

/**
 * How many times a burst of events made a Watcher assume the inotify queue overflowed.
 * libuv gives the whole process one inotify queue, so an overflow may have dropped
 * the events of any watch in it (system-stamp.ts reads this too).
 */
let assumedOverflows = 0;
export function overflowsAssumed(): number {
  return assumedOverflows;
}

export interface DirWatch {
  /** Record file names changed since last taken; `all` means anything may have changed. */
  readonly dirty: Set<string>;
  all: boolean;
  /** The watcher failed or was closed: nothing it did not report can be trusted. */
  dead: boolean;
  close(): void;
}

type Waiter = (ok: boolean) => void;

/**
 * Sentinel folders live in the system temp dir: each goes with its watcher, or with
 * the process if its store was never closed (one exit listener for all of them).
 * A process that is killed runs no exit listener, so folder names carry the pid,
 * and before its first folder a process removes those of processes that no longer
 * run (once: the sweep reads the whole temp dir, and each watched table makes a
 * folder). A process in another pid namespace sharing this temp dir would lose its
 * folder; its watcher then fails over to the stat sweep, which is slower but exact.
 */
const sentinelDirs = new Set<string>();
const SENTINEL_PREFIX = 'freehold-barrier-';

let orphansSwept = false;

function makeSentinelDir(): string {
  if (!orphansSwept) {
    orphansSwept = true;
    removeOrphanedSentinelDirs();
  }
  const dir = mkdtempSync(join(tmpdir(), `${SENTINEL_PREFIX}${process.pid}-`));
  sentinelDirs.add(dir);
  if (sentinelDirs.size === 1) process.once('exit', removeAllSentinelDirs);
  return dir;
}

function removeOrphanedSentinelDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return; // housekeeping only: the new folder's own creation reports a real problem
  }
  for (const name of names) {
    if (!name.startsWith(SENTINEL_PREFIX)) continue;
    const pid = /^(\d+)-/.exec(name.slice(SENTINEL_PREFIX.length))?.[1];
    if (pid === undefined || Number(pid) === process.pid || processRuns(Number(pid))) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // another user's folder: not ours to remove
    }
  }
}

/** Signal 0 probes without signalling; EPERM means it runs under another user. */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeSentinelDir(dir: string): void {
  sentinelDirs.delete(dir);
  if (sentinelDirs.size === 0) process.off('exit', removeAllSentinelDirs);
  rmSync(dir, { recursive: true, force: true });
}

function removeAllSentinelDirs(): void {
  for (const dir of [...sentinelDirs]) removeSentinelDir(dir);
}

/**
 * Owns the watchers of one store: per-directory watches, the barrier, and the
 * overflow guess shared by them (they share one inotify queue).
 */
export class Watcher {
  private readonly watches = new Set<DirWatchImpl>();
  private readonly overflowAt = Math.max(1, Math.floor(maxQueuedEvents() / 2));
  private burst = 0;
  private burstReset: NodeJS.Immediate | null = null;
  private sentinelDir: string | null = null;
  private sentinelWatch: FSWatcher | null = null;
  private inFlight: Waiter[] | null = null;
  private next: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private broken = false;

  /** Starts watching `dir`; null if that is not possible (the caller falls back to stat sweeps). */
  watch(dir: string): DirWatch | null {
    if (!WATCH_SUPPORTED || !this.ensureBarrier()) return null;
    const w = new DirWatchImpl(basename(dir), () => this.watches.delete(w), () => this.noteEvent());
    try {
      w.start(dir);
    } catch {
      return null; // ENOSPC (watch limit), EACCES, …: stat sweeps for this table
    }
    this.watches.add(w);
    return w;
  }

  /**
   * Resolves true once every change that completed before the call has been
   * reported to the watches; false if that could not be established (sweep).
   */
  barrier(): Promise<boolean> {
    if (this.broken || !this.sentinelWatch) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      if (this.inFlight) {
        // That touch happened before this call: only the next one covers it.
        this.next.push(resolve);
      } else {
        this.touch([resolve]);
      }
    });
  }

  close(): void {
    for (const w of [...this.watches]) w.close();
    this.sentinelWatch?.close();
    this.sentinelWatch = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.settle(false);
    for (const r of this.next.splice(0)) r(false);
    this.removeSentinelDir();
  }

  private removeSentinelDir(): void {
    if (this.sentinelDir) removeSentinelDir(this.sentinelDir);
    this.sentinelDir = null;
  }

  private ensureBarrier(): boolean {
    if (this.sentinelWatch) return true;
    if (this.broken) return false;
    try {
      // Outside the data root: owners should not find our files among theirs.
      this.sentinelDir = makeSentinelDir();
      writeFileSync(join(this.sentinelDir, 'sentinel'), '');
      const w = watch(this.sentinelDir, { persistent: false }, (_type, name) => {
        this.noteEvent();
        if (name === 'sentinel') this.settle(true);
      });
      w.on('error', () => this.fail());
      this.sentinelWatch = w;
      return true;
    } catch {
      this.fail();
      return false;
    }
  }

  private touch(waiters: Waiter[]): void {
    this.inFlight = waiters;
    try {
      const now = new Date();
      utimesSync(join(this.sentinelDir!, 'sentinel'), now, now);
    } catch {
      this.fail();
      return;
    }
    this.timer = setTimeout(() => {
      // Too slow (a long-blocked loop) or lost: this round sweeps; later ones try again.
      this.timer = null;
      this.settle(false);
    }, BARRIER_TIMEOUT_MS); // not unref'd: the watches are not persistent, so this keeps a waiting query alive

  }

  private settle(ok: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const done = this.inFlight;
    this.inFlight = null;
    if (done) for (const r of done) r(ok);
    if (this.next.length > 0 && this.sentinelWatch && !this.broken) this.touch(this.next.splice(0));
  }

  private fail(): void {
    this.broken = true;
    this.sentinelWatch?.close();
    this.sentinelWatch = null;
    this.settle(false);
    for (const r of this.next.splice(0)) r(false);
    for (const w of this.watches) w.all = true;
  }

  /** Counts events per burst (libuv delivers a whole read of the queue without yielding). */
  private noteEvent(): void {
    this.burst++;
    if (this.burst === this.overflowAt) {
      for (const w of this.watches) w.all = true;
      assumedOverflows++;
    }
    if (!this.burstReset) {
      this.burstReset = setImmediate(() => {
        this.burst = 0;
        this.burstReset = null;
      });
    }
  }

  /** For tests: behave as if the inotify queue had overflowed. */
  simulateOverflow(): void {
    for (const w of this.watches) w.all = true;
  }
}

class DirWatchImpl implements DirWatch {
  readonly dirty = new Set<string>();
  all = false;
  dead = false;
  private fsw: FSWatcher | null = null;

  constructor(
    private readonly selfName: string,
    private readonly onClose: () => void,
    private readonly onEvent: () => void,
  ) {}

  start(dir: string): void {
    const fsw = watch(dir, { persistent: false, encoding: 'utf8' }, (_type, name) => {
      this.onEvent();
      // No name, or the directory's own name (an event on the directory itself:
      // deleted, moved, its attributes): anything may have changed.
      if (name === null || name === this.selfName) this.all = true;
      else this.dirty.add(name);
    });
    fsw.on('error', () => this.close());
    this.fsw = fsw;
  }

  close(): void {
    if (this.dead) return;
    this.dead = true;
    this.all = true;
    this.fsw?.close();
    this.fsw = null;
    this.onClose();
  }
}
