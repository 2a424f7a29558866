import type { Worker } from 'node:worker_threads';
import { DISK_WORKER_ROLE, DISK_WORKER_URL } from './disk-protocol.js';
import { syncAll, SyncfsState, unlinkAll, type SyncJob, type SyncfsOutcome } from './disk-work.js';
import type { FromDiskWorker, ToDiskWorker } from './disk-worker.js';
import { startModuleWorker, terminateHeld } from '../worker-start.js';
import { IdleTimer } from '../idle-timer.js';

/**
 * A thread for the flat-file store's disk work that nobody waits on in a request: the
 * checkpoint's syncs (checkpoint.ts) and the removal of retired record files
 * (background-unlink.ts). One per process, shared by every store in it.
 *
 * Why a thread: through the thread pool every file cost the event loop a submission and
 * a completion (an fsync by name is open, fsync, close: three), ~20–60 µs each on this
 * project's test machine, and `sync -f` was a process spawned from the main thread
 * (~3 ms of it each). In the CEPS write row at 32 connections that was ~9% of the main
 * thread. Here the main thread posts one message per checkpoint, and one per event-loop
 * turn for the files it retired in that turn.
 *
 * Requests run one at a time, in the order posted. The work is idempotent (fsyncing or
 * unlinking twice does no harm), so if the thread dies, what it held is posted again to
 * the next one; a request that was already in hand when one thread died runs on the main
 * thread rather than risk killing another. If threads cannot be started (twice in a
 * row), everything runs on the main thread, as plain synchronous calls. The thread ends
 * after `idleMs` without a request: an idle server keeps none.
 */
export interface DiskThreadOptions {
  idleMs: number;
  /** The worker's module (tests start a broken one). */
  moduleUrl: string;
}

const DEFAULTS: DiskThreadOptions = { idleMs: 30_000, moduleUrl: DISK_WORKER_URL };

/** Threads that exit before serving, in a row, after which the work stays on the main thread. */
const MAX_FAILED_STARTS = 2;

type Request = { type: 'sync'; job: SyncJob } | { type: 'unlink'; names: string[] };

interface Waiting {
  request: Request;
  /** Posted to a thread that then died: next time it runs on the main thread. */
  retried: boolean;
  resolve: (outcome: SyncfsOutcome) => void;
  reject: (error: unknown) => void;
}

export class DiskThread {
  private readonly opts: DiskThreadOptions;
  private worker: Worker | null = null;
  private serving = false;
  private failedStarts = 0;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  /** Ends the thread after `idleMs` without a request. */
  private readonly idle: IdleTimer;
  /** Whether `sync -f` is used: learnt once per process, whichever thread runs it. */
  private readonly syncfs = new SyncfsState();
  /** Requests a thread answered (tests: the work left the main thread). */
  answered = 0;

  constructor(options: Partial<DiskThreadOptions> = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.idle = new IdleTimer(this.opts.idleMs, () => this.waiting.size > 0, () => {
      const worker = this.worker;
      this.worker = null;
      void worker?.terminate();
    });
  }

  /** Whether a thread is running (tests; an idle process must show false). */
  get running(): boolean {
    return this.worker !== null;
  }

  /** The work stays on the main thread for good: threads could not be started. */
  get inline(): boolean {
    return this.failedStarts >= MAX_FAILED_STARTS;
  }

  /** Makes `files`, `dirs` and `log` durable (disk-work.ts says how); rejects with the error that says why not. */
  async sync(files: string[], dirs: string[], log: string | null, syncfsFrom: number): Promise<void> {
    const job: SyncJob = { files, dirs, log, syncfsFrom, syncfs: !this.syncfs.unavailable };
    this.syncfs.note(await this.run({ type: 'sync', job }));
  }

  /** Removes retired files; resolves once they are gone (or left for the next open: disk-work.ts). */
  async unlink(names: string[]): Promise<void> {
    if (names.length > 0) await this.run({ type: 'unlink', names });
  }

  /** Ends the thread as if it had crashed (tests). */
  async killWorker(): Promise<void> {
    await terminateHeld(this.worker ?? undefined);
  }

  private run(request: Request, retried = false): Promise<SyncfsOutcome> {
    const worker = this.ensureWorker();
    if (!worker) return runHere(request);
    return new Promise<SyncfsOutcome>((resolve, reject) => {
      const id = this.nextId++;
      if (this.waiting.size === 0) worker.ref(); // held while it owes answers: close() awaits them
      this.waiting.set(id, { request, retried, resolve, reject });
      worker.postMessage({ ...request, id } satisfies ToDiskWorker);
      this.idle.touch();
    });
  }

  private ensureWorker(): Worker | null {
    if (this.worker || this.inline) return this.worker;
    let worker: Worker;
    try {
      worker = startModuleWorker(this.opts.moduleUrl, { role: DISK_WORKER_ROLE }, { shareEnv: true });
    } catch {
      this.failedStarts = MAX_FAILED_STARTS;
      return null;
    }
    this.serving = false;
    worker.on('message', (m: FromDiskWorker) => {
      if (worker === this.worker) this.onMessage(worker, m);
    });
    // An error in the thread ends it: 'exit' follows, and deals with what it held.
    worker.on('error', () => undefined);
    worker.on('exit', () => {
      if (worker === this.worker) this.onExit();
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private onMessage(worker: Worker, m: FromDiskWorker): void {
    if (m.type === 'ready') {
      this.serving = true;
      this.failedStarts = 0;
      return;
    }
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    if (this.waiting.size === 0) worker.unref();
    this.answered++;
    if (m.type === 'failed') w.reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
    else w.resolve(m.type === 'synced' ? m.syncfs : 'not-tried');
  }

  /** The thread died: what it held goes to the next one, or runs here (see the class comment). */
  private onExit(): void {
    if (!this.serving) this.failedStarts++;
    this.worker = null;
    this.idle.cancel();
    const held = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of held) {
      const again = w.retried || this.inline ? runHere(w.request) : this.run(w.request, true);
      again.then(w.resolve, w.reject);
    }
  }
}

/** The work on the calling thread, when no thread will do it. */
function runHere(request: Request): Promise<SyncfsOutcome> {
  try {
    if (request.type === 'unlink') {
      unlinkAll(request.names);
      return Promise.resolve('not-tried');
    }
    return Promise.resolve(syncAll(request.job).syncfs);
  } catch (error) {
    return Promise.reject(error);
  }
}

let shared: DiskThread | null = null;

/** The process's disk thread, made at first use. */
export function sharedDiskThread(): DiskThread {
  shared ??= new DiskThread();
  return shared;
}
