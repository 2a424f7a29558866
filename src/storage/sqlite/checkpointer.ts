/**
 * Keeps WAL checkpoints off the event loop.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses its threshold, on
 * the connection that committed: for us the main thread, which then copies tens of MB
 * of WAL into the database file and fsyncs it while every in-flight request waits
 * (CEPS update p99 ~60 ms at 32 connections). Instead, one worker thread per process
 * (checkpoint-worker.ts) runs passive checkpoints, which block neither writers nor
 * readers, whenever a file has committed enough since its last one.
 *
 * What stays on the main thread:
 * - Restarting the WAL. A writer rewinds the WAL to its start only if, when its
 *   transaction begins, every frame has been copied. Under a steady stream of commits
 *   the worker is always one checkpoint behind, so when the WAL has grown past
 *   `resetFrames` the store holds its next group commit (reads go on) until one more,
 *   short, catch-up checkpoint has run.
 * - The safety net. While the worker is healthy the main connection's
 *   `wal_autocheckpoint` is `safetyFrames`, far above what the worker lets the WAL
 *   reach, so it only fires if the worker cannot keep up; if the worker dies or fails on
 *   a file, that file goes back to `fallbackFrames`, the old behaviour.
 *
 * A store closes its own connection first, so the worker's is the last one and the
 * final checkpoint SQLite runs on closing (which also removes the WAL) happens there.
 *
 * Trimming the WAL file is the worker's too, and waits for a quiet spell. After a burst
 * the checkpoints could not keep up with, the WAL file stays as large as it grew (it is
 * reused from its start). SQLite would cut it back to `journal_size_limit` in the first
 * commit after the restart, on the event loop: 30–48 ms with every request waiting, for
 * a 190 MB file on this project's benchmark machine. So while the worker serves a file,
 * its main connection's limit is off (-1); once no checkpoint was needed for `idleMs`,
 * a file past `walLimitBytes` gets one TRUNCATE checkpoint in the worker, with commits
 * held (~90 ms for that file: freeing its blocks is the cost) and reads going on, before
 * the worker exits. Under steady writes the file keeps its size, and its space is reused.
 *
 * The worker starts at the first checkpoint any file needs (an idle server never pays
 * for it), is unref'd (it never keeps the process alive), and exits when the last
 * registered file closes or when no checkpoint was needed for `idleMs` (~10 MB back).
 */
import { closeSync, openSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { CHECKPOINT_WORKER_ROLE, CHECKPOINT_WORKER_URL } from './checkpoint-protocol.js';
import { startModuleWorker, terminateHeld } from '../worker-start.js';
import { IdleTimer } from '../idle-timer.js';
import type { FromWorker, ToWorker } from './checkpoint-worker.js';

export interface CheckpointerOptions {
  /** Rows changed (SQLite total_changes) since the last request before the worker is asked again (~2.5 WAL frames a row). */
  changesPerCheckpoint: number;
  /** WAL size in frames past which a commit waits for a catch-up checkpoint so that the WAL restarts. */
  resetFrames: number;
  /** wal_autocheckpoint of the main connection while the worker serves its file. */
  safetyFrames: number;
  /** wal_autocheckpoint of the main connection without the worker (the pre-worker setting). */
  fallbackFrames: number;
  /**
   * A commit waits for the catch-up only once the worker's last checkpoint found at most
   * this many new frames, so the catch-up (which copies what came since) is short.
   */
  catchUpFrames: number;
  /** Back-to-back checkpoints tried to get there before holding commits anyway. */
  catchUpRounds: number;
  /** Longest a commit waits for a catch-up checkpoint. */
  holdMs: number;
  /** Past this size a quiet file's WAL is cut back to nothing by the worker (and the fallback's `journal_size_limit`). */
  walLimitBytes: number;
  /** Longest a commit waits for a trim (a TRUNCATE checkpoint frees the whole file's blocks). */
  trimHoldMs: number;
  /** Longest close() waits for the worker to close its connection. */
  closeWaitMs: number;
  /** The worker exits after this long without a checkpoint to run. */
  idleMs: number;
  /** false: every file checkpoints on its main connection, as before the worker. */
  worker: boolean;
}

/** pino's `warn` fits. */
export interface CheckpointLog {
  warn(details: Record<string, unknown>, message: string): void;
}

/** What a store holds for its file. */
export interface CheckpointRegistration {
  /** After each commit: how many rows it changed. */
  committed(changes: number): void;
  /** A promise the next commit must wait for, or null to commit now. */
  writeHold(): Promise<void> | null;
  /**
   * After the store has closed its own connection: the worker closes its one, which is
   * then the last, so SQLite checkpoints the rest of the WAL and removes it there.
   */
  close(): Promise<void>;
}

const DEFAULTS: CheckpointerOptions = {
  changesPerCheckpoint: 4000, // ~10,000 frames, like the old wal_autocheckpoint
  resetFrames: 16384, // 64 MB of 4 KB pages
  safetyFrames: 65536,
  fallbackFrames: 10000,
  catchUpFrames: 256,
  catchUpRounds: 6,
  holdMs: 20,
  walLimitBytes: 128 * 1024 * 1024,
  trimHoldMs: 250,
  closeWaitMs: 5000,
  idleMs: 30_000,
  worker: true,
};

interface FileState {
  readonly key: number;
  readonly file: string;
  /** The main connections to this file (one per store), whose autocheckpoint we set. */
  readonly dbs: Set<Database.Database>;
  /** Rows changed since the last request. */
  changes: number;
  inFlight: boolean;
  /** A commit happened while the request was in flight, so that checkpoint cannot have caught up. */
  committedInFlight: boolean;
  /** The request in flight is a catch-up one. */
  catchUp: boolean;
  /** WAL file size at the last answer. */
  walBytes: number;
  /** A trim was asked for since the last commit (once per quiet spell: a reader pinning the WAL can make it fail). */
  trimmedQuiet: boolean;
  /** Back-to-back checkpoints run since the WAL became due to restart. */
  rounds: number;
  hold: { promise: Promise<void>; release: () => void; timer: NodeJS.Timeout } | null;
  /** The worker has a connection to this file (was asked about it since it started). */
  known: boolean;
  /**
   * A descriptor of the database file for the worker to fsync (checkpoint-worker.ts). It
   * is ours, not the worker's, because closing any descriptor of a file drops every POSIX
   * lock the process holds on it, SQLite's included: it is closed only once no connection
   * to the file is left in the process, and a worker can be ended at any time.
   */
  fd: number | null;
  /** WAL size at the last answer, to notice a restart. */
  lastLog: number;
  /** After a catch-up could not finish: do not hold commits again below this WAL size. */
  holdFloor: number;
  /** Checkpoints run on the main connection. */
  fallback: boolean;
}

export class Checkpointer {
  private readonly opts: CheckpointerOptions;
  private worker: Worker | null = null;
  /** The worker died or could not start: from now on every file checkpoints on its main connection. */
  private broken = false;
  private readonly files = new Map<string, FileState>();
  private readonly byKey = new Map<number, FileState>();
  /** Answers awaited to `close` requests: true once the worker's connection is closed. */
  private readonly closing = new Map<number, (acknowledged: boolean) => void>();
  /** Files whose worker connection is closing, by path. */
  private readonly closingFiles = new Map<string, Promise<boolean>>();
  private nextKey = 1;
  /** Ends the worker after `idleMs` without a request (trimming oversized WAL files first). */
  private readonly idle: IdleTimer;
  /** The last worker ended on purpose, until it has. */
  private stopping: Promise<void> = Promise.resolve();

  constructor(options: Partial<CheckpointerOptions> = {}, private log: CheckpointLog = warningLog) {
    this.opts = { ...DEFAULTS, ...options };
    const busy = () => this.closing.size > 0 || [...this.files.values()].some((st) => st.inFlight);
    this.idle = new IdleTimer(this.opts.idleMs, busy, () => this.onIdle());
  }

  setLog(log: CheckpointLog): void {
    this.log = log;
  }

  /** Whether the worker thread is running (tests; an idle process must show false). */
  get running(): boolean {
    return this.worker !== null;
  }

  /** Ends the worker as if it had crashed (tests): every file falls back to main-connection checkpoints. */
  async killWorker(): Promise<void> {
    await terminateHeld(this.worker ?? undefined);
  }

  /** Resolves once no worker connection to `file` is closing; a store awaits it before opening the file. */
  async closed(file: string): Promise<void> {
    await this.closingFiles.get(file);
  }

  register(file: string, db: Database.Database): CheckpointRegistration {
    let st = this.files.get(file);
    if (!st) {
      st = {
        key: this.nextKey++, file, dbs: new Set(), changes: 0, inFlight: false, committedInFlight: false, catchUp: false, rounds: 0,
        walBytes: 0, trimmedQuiet: false, hold: null, known: false, fd: null, lastLog: 0, holdFloor: 0, fallback: this.broken || !this.opts.worker,
      };
      this.files.set(file, st);
      this.byKey.set(st.key, st);
    }
    st.dbs.add(db);
    this.configure(db, st.fallback);
    const state = st;
    let open = true;
    return {
      committed: (changes) => {
        if (open) this.committed(state, changes);
      },
      writeHold: () => state.hold?.promise ?? null,
      close: async () => {
        if (!open) return;
        open = false;
        await this.unregister(state, db);
      },
    };
  }

  private committed(st: FileState, changes: number): void {
    if (st.fallback || changes <= 0) return;
    st.changes += changes;
    st.trimmedQuiet = false;
    if (st.inFlight) st.committedInFlight = true;
    else if (st.changes >= this.opts.changesPerCheckpoint) this.request(st);
  }

  private request(st: FileState, trim = false): void {
    const worker = this.ensureWorker();
    if (!worker) return; // could not start: ensureWorker moved every file to the fallback
    st.inFlight = true;
    st.known = true;
    st.changes = 0;
    st.committedInFlight = false;
    st.fd ??= openQuietly(st.file);
    worker.postMessage({ type: 'checkpoint', file: st.file, key: st.key, fd: st.fd, trim } satisfies ToWorker);
    this.idle.touch();
  }

  /** Quiet now: gives back what a burst left in an oversized WAL file, then (at the next idle check) ends the worker. */
  private onIdle(): void {
    const worker = this.worker;
    if (!worker) return;
    const oversized = [...this.files.values()].filter((st) => !st.fallback && !st.trimmedQuiet && st.walBytes > this.opts.walLimitBytes);
    if (oversized.length > 0) {
      for (const st of oversized) {
        st.trimmedQuiet = true;
        this.hold(st, true);
        this.request(st, true); // touches the idle timer again
      }
      return;
    }
    // The next request starts a new worker, which opens its connections again.
    for (const st of this.files.values()) st.known = false;
    void this.stop(worker);
  }

  private onDone(st: FileState, r: { busy: number; log: number; checkpointed: number; walBytes: number }): void {
    st.inFlight = false;
    st.walBytes = r.walBytes;
    if (r.log < 0) {
      // It could not run (SQLite reports -1: another connection was checkpointing): nothing changed.
      if (st.catchUp) {
        st.catchUp = false;
        this.release(st);
      }
      if (st.changes >= this.opts.changesPerCheckpoint) this.request(st);
      return;
    }
    // Frames committed between the previous checkpoint and this one: about what the next one
    // will find, when they run back to back.
    const grown = r.log >= st.lastLog ? r.log - st.lastLog : r.log;
    if (r.log < st.lastLog) st.holdFloor = 0; // the WAL restarted
    st.lastLog = r.log;
    const caughtUp = r.busy === 0 && r.checkpointed === r.log && !st.committedInFlight;
    if (st.catchUp) {
      st.catchUp = false;
      // Caught up: the next commit restarts the WAL. If not, either a reader still uses old
      // frames, and holding commits again will not help until the WAL has grown a good deal,
      // or the hold ran out (a slow fsync) and commits came in: try again a little later.
      if (!caughtUp) st.holdFloor = r.log + (r.checkpointed < r.log ? this.opts.resetFrames : this.opts.resetFrames / 4);
      this.release(st);
    } else if (!caughtUp && r.log >= Math.max(this.opts.resetFrames, st.holdFloor)) {
      // The WAL is due to restart. Each checkpoint's cost is mostly the fsyncs of what came
      // since the previous one, so running them back to back shrinks it (the worker copies
      // faster than one thread commits); hold commits only for a short last one.
      if (grown <= this.opts.catchUpFrames || st.rounds >= this.opts.catchUpRounds) {
        st.rounds = 0;
        this.hold(st);
      } else {
        st.rounds++;
      }
      this.request(st);
      return;
    }
    st.rounds = 0;
    if (st.changes >= this.opts.changesPerCheckpoint) this.request(st);
  }

  private hold(st: FileState, trim = false): void {
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    // A ref'd timer: a script whose only pending work is a held write stays alive until it commits.
    const timer = setTimeout(() => this.release(st), trim ? this.opts.trimHoldMs : this.opts.holdMs);
    st.hold = { promise, release, timer };
    st.catchUp = true;
  }

  private release(st: FileState): void {
    const hold = st.hold;
    if (!hold) return;
    st.hold = null;
    clearTimeout(hold.timer);
    hold.release();
  }

  private async unregister(st: FileState, db: Database.Database): Promise<void> {
    st.dbs.delete(db);
    if (st.dbs.size > 0) return;
    this.release(st);
    st.fallback = true; // no more requests for it
    this.files.delete(st.file);
    this.byKey.delete(st.key);
    const worker = this.worker;
    if (worker && st.known) {
      const closed = this.closeInWorker(worker, st.file);
      this.closingFiles.set(st.file, closed);
      const acknowledged = await closed;
      if (this.closingFiles.get(st.file) === closed) this.closingFiles.delete(st.file);
      // Without the answer the worker's connection may still be open: leave the descriptor be.
      if (acknowledged) closeQuietly(st.fd);
    } else {
      await this.stopping; // a worker being ended may still have its connection open
      closeQuietly(st.fd); // no connection to the file is left in this process
    }
    if (worker && this.worker === worker && this.files.size === 0 && this.closing.size === 0) await this.stop(worker);
  }

  /** Asks the worker to close its connection to `file`: true once it has, false if it did not answer in time. */
  private closeInWorker(worker: Worker, file: string): Promise<boolean> {
    const id = this.nextKey++;
    return new Promise<boolean>((resolve) => {
      // Ref'd, like the hold timer: a shutdown awaiting close() must not end early, nor hang.
      const timer = setTimeout(() => done(false), this.opts.closeWaitMs);
      const closing = this.closing;
      function done(acknowledged: boolean): void {
        clearTimeout(timer);
        closing.delete(id);
        resolve(acknowledged);
      }
      closing.set(id, done);
      worker.postMessage({ type: 'close', file, id } satisfies ToWorker);
    });
  }

  /** Ends the worker on purpose; its connections close with it (better-sqlite3 closes them with the thread). */
  private stop(worker: Worker): Promise<void> {
    this.worker = null;
    this.idle.cancel();
    this.stopping = worker.terminate().then(() => undefined);
    return this.stopping;
  }

  private ensureWorker(): Worker | null {
    if (this.worker || this.broken) return this.worker;
    let worker: Worker;
    try {
      worker = startWorker();
    } catch (error) {
      this.breakDown({ err: error instanceof Error ? error.message : String(error) }, 'SQLite checkpoint worker could not start');
      return null;
    }
    worker.on('message', (m: FromWorker) => {
      if (worker === this.worker) this.onMessage(m);
    });
    worker.on('error', (error) => {
      if (worker === this.worker) this.log.warn({ err: error.message }, 'SQLite checkpoint worker failed');
    });
    worker.on('exit', (code) => {
      if (worker === this.worker) this.breakDown({ code }, 'SQLite checkpoint worker exited');
    });
    // Never keeps the process alive (an interrupted checkpoint is safe). After the listeners:
    // adding a 'message' listener refs the worker again.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'closed') {
      this.closing.get(m.id)?.(true);
      return;
    }
    const st = this.byKey.get(m.key);
    if (!st) return; // closed meanwhile
    if (m.type === 'done') {
      this.onDone(st, m);
    } else {
      st.inFlight = false;
      this.log.warn({ file: st.file, err: m.message }, 'SQLite checkpoint worker failed on a file; it checkpoints on its own connection now');
      this.fallBack(st);
    }
  }

  /** The worker is gone: every file checkpoints on its main connection from now on. */
  private breakDown(details: Record<string, unknown>, message: string): void {
    this.worker = null;
    this.broken = true;
    this.log.warn(details, `${message}; SQLite files checkpoint on their own connections now`);
    for (const st of this.files.values()) this.fallBack(st);
    // A dead thread's connections are closed (better-sqlite3 closes them with it).
    for (const done of [...this.closing.values()]) done(true);
  }

  private fallBack(st: FileState): void {
    st.fallback = true;
    st.inFlight = false;
    st.catchUp = false;
    this.release(st);
    for (const db of st.dbs) this.configure(db, true);
  }

  /**
   * The main connection's own checkpointing: with the worker, an autocheckpoint far above
   * what the worker lets the WAL reach and no trimming in commits (the worker trims); without
   * it, SQLite's own behaviour at our thresholds.
   */
  private configure(db: Database.Database, fallback: boolean): void {
    if (!db.open) return;
    db.pragma(`wal_autocheckpoint = ${fallback ? this.opts.fallbackFrames : this.opts.safetyFrames}`);
    db.pragma(`journal_size_limit = ${fallback ? this.opts.walLimitBytes : -1}`);
  }
}

function openQuietly(file: string): number | null {
  try {
    return openSync(file, 'r');
  } catch {
    return null; // the worker then only checkpoints, and SQLite syncs when it reaches the end of the WAL
  }
}

function closeQuietly(fd: number | null): void {
  try {
    if (fd !== null) closeSync(fd);
  } catch {
    // Already gone: nothing to release.
  }
}

function startWorker(): Worker {
  return startModuleWorker(CHECKPOINT_WORKER_URL, { role: CHECKPOINT_WORKER_ROLE });
}

/** Until the server hands over its logger (setLog): a process warning, so a fallback is never silent. */
const warningLog: CheckpointLog = {
  warn: (details, message) => process.emitWarning(`${message} ${JSON.stringify(details)}`),
};

/**
 * The process-wide checkpointer every SqliteRecordStore uses unless given another.
 * FREEHOLD_SQLITE_CHECKPOINT=main keeps checkpoints on the main connections (no worker).
 */
export const defaultCheckpointer = new Checkpointer({ worker: process.env.FREEHOLD_SQLITE_CHECKPOINT !== 'main' });
