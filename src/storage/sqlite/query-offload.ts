import type { Worker } from 'node:worker_threads';
import { atTurnEnd } from '../../turn-end.js';
import { QUERY_WORKER_ROLE, QUERY_WORKER_URL } from './query-protocol.js';
import type { FromQueryWorker, QueryJob, QueryWorkerData, Recheck, ToQueryWorker } from './query-worker.js';
import { startModuleWorker, terminateHeld } from '../worker-start.js';
import { IdleTimer } from '../idle-timer.js';

export type { Recheck };

/**
 * Hands record queries to a second thread when the main one has other work, so that a
 * busy server answers queries on two cores instead of one.
 *
 * better-sqlite3 runs a query on the calling thread; a page of 50 records costs ~45 µs
 * of SQLite in-process, ~65 µs on a loaded server, about a third of a CEPS query
 * request's main-thread time, while a second core sits partly idle. Handing a query to
 * the worker (query-worker.ts, its own connection to the file) costs the main thread a
 * few µs when the worker is awake, and 20–50 µs on this project's test machine when the
 * message must wake it (run() says how wake-ups are kept to about two per event-loop turn).
 *
 * When: the first query of an event-loop turn runs here, as before, and so does every
 * query while the worker is idle and nothing else came in the turn; one request at a time
 * never pays for a thread. Later queries of a busy turn go to the worker, and so does
 * every query while the worker has some in hand, up to `maxQueued`; a query outstanding
 * longer than `stallMs` (a scan of a big table) makes the main thread answer its own
 * until that one is back. The worker starts at the first busy turn and takes queries
 * once it has opened its connection (~60 ms on an idle machine, several times that on a
 * loaded one; meanwhile the main thread answers them all, so no request waits for a
 * thread to start); it ends after `idleMs` without a query, so an idle server keeps no
 * thread.
 *
 * What a query sees: its own statement, so the latest committed data, never older than
 * what any request answered before it wrote (the main thread commits before answering,
 * and hands the query over after). A query the worker fails on is run here instead, so
 * its error is the one the main thread would have thrown; if the worker dies, every
 * query it held is run here, and later ones stay here.
 */
export interface QueryOffloadOptions {
  maxQueued: number;
  stallMs: number;
  idleMs: number;
  /** Longest close() waits for the worker to close its connection before ending it. */
  closeWaitMs: number;
}

const DEFAULTS: QueryOffloadOptions = { maxQueued: 32, stallMs: 2, idleMs: 30_000, closeWaitMs: 5_000 };

interface Pending {
  sentAt: number;
  inline: () => string;
  resolve: (json: string) => void;
  reject: (error: unknown) => void;
}

/** One worker and the queries sent to it and not yet answered, in the order sent (it answers in that order). */
interface Thread {
  worker: Worker;
  waiting: Map<number, Pending>;
  /** Its connection is open: it takes queries. */
  ready: boolean;
  /** Queries handed over but not yet posted (see run()); posted at the latest when the turn ends. */
  outbox: QueryJob[];
  /** A message went to the thread in this turn. */
  postedThisTurn: boolean;
  /** Its first element is 1 while the thread is handling a message (it sets it), so is awake. */
  awake: Int32Array;
}

export class QueryOffload {
  private readonly opts: QueryOffloadOptions;
  /** The thread queries go to; one being stopped (idle, restart, close) is no longer it. */
  private current: Thread | null = null;
  /** Could not start, or died: queries stay on the main thread from now on. */
  private broken = false;
  private closed = false;
  private nextId = 1;
  private queriesThisTurn = 0;
  private readonly endTurn = (): void => { this.queriesThisTurn = 0; };
  /** Ends the thread after `idleMs` without a query handed to it. */
  private readonly idle: IdleTimer;
  /** Threads being stopped, until they have ended. */
  private readonly stopping = new Set<Promise<void>>();
  /** Queries the worker answered (tests). */
  answered = 0;
  /** Messages of queries posted to a worker (tests). */
  posts = 0;

  constructor(private readonly file: string, options: Partial<QueryOffloadOptions> = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.idle = new IdleTimer(this.opts.idleMs, () => (this.current?.waiting.size ?? 0) > 0, () => {
      if (this.current) void this.stop(this.current);
    });
  }

  /** Whether the worker thread is running (tests; an idle store must show false). */
  get running(): boolean {
    return this.current !== null;
  }

  /** Whether the worker thread takes queries (tests). */
  get ready(): boolean {
    return this.current?.ready === true;
  }

  /**
   * Tests: keeps the worker from answering (queries handed over meanwhile wait) until the
   * returned function is called; `awake`: it shows itself awake meanwhile (as if busy).
   * Resolves once the worker is in the hold: it takes the message only when it next
   * runs, which on a loaded machine can be after the caller's next queries.
   */
  async holdWorker(awake = false): Promise<() => void> {
    const thread = this.current;
    if (!thread?.ready) throw new Error('No query thread is ready to hold');
    const cells = new Int32Array(new SharedArrayBuffer(8));
    thread.worker.postMessage({ type: 'hold', flag: cells.buffer as SharedArrayBuffer, awake } satisfies ToQueryWorker);
    while (Atomics.load(cells, 1) === 0) await new Promise((r) => setTimeout(r, 1));
    return () => {
      Atomics.store(cells, 0, 1);
      Atomics.notify(cells, 0);
    };
  }

  /** Ends the worker as if it had crashed (tests). */
  async killWorker(): Promise<void> {
    await terminateHeld(this.current?.worker);
  }

  /** Whether to hand the query about to run over to the worker (call once per query). */
  wants(): boolean {
    if (this.broken || this.closed) return false;
    if (this.queriesThisTurn++ === 0) atTurnEnd(this.endTurn);
    const thread = this.current;
    if (thread && !thread.ready) return false;
    const waiting = thread?.waiting;
    if (waiting && waiting.size >= this.opts.maxQueued) return false;
    const oldest = waiting?.values().next().value;
    if (oldest) return performance.now() - oldest.sentAt < this.opts.stallMs;
    if (this.queriesThisTurn === 1) return false;
    // Busy: a thread that is up takes it; otherwise one starts, and this query stays here.
    return this.ensureThread()?.ready === true;
  }

  /**
   * Runs the query in the worker (after wants() said so); `inline` runs the same query
   * here, should the worker fail on it or find `recheck` true (in the same read
   * transaction as the query).
   */
  run(sql: string, params: unknown[], recheck: Recheck | null, inline: () => string): Promise<string> {
    const thread = this.current;
    if (!thread?.ready) return runInline(inline);
    return new Promise<string>((resolve, reject) => {
      const id = this.nextId++;
      this.idle.touch();
      // Held while it answers: a script awaiting only this query must not exit meanwhile.
      if (thread.waiting.size === 0) thread.worker.ref();
      thread.waiting.set(id, { sentAt: performance.now(), inline, resolve, reject });
      thread.outbox.push({ id, sql, params, recheck });
      // Posting wakes a sleeping thread, which costs this one far more than the message
      // (measured here: 21–49 µs, against ~4 µs to a thread that is awake). So: at once
      // while the thread is awake (it then never waits for work), and for the turn's
      // first query (it starts while this thread goes on); queries that find it asleep
      // after that wait for the turn's end, and go together.
      if (!thread.postedThisTurn) {
        thread.postedThisTurn = true;
        atTurnEnd(() => {
          thread.postedThisTurn = false;
          this.post(thread);
        });
        this.post(thread);
      } else if (Atomics.load(thread.awake, 0) === 1) {
        this.post(thread);
      }
    });
  }

  /** Waits for the queries handed over, then closes the worker's connection and ends it. */
  async close(): Promise<void> {
    this.closed = true;
    this.idle.cancel();
    if (this.current) void this.stop(this.current);
    await Promise.all(this.stopping);
  }

  /**
   * Ends the worker after what it holds; the next query handed over starts a new one.
   * After an index is made: a connection reads the planner's statistics when it loads
   * the schema, and the store pins the new index's only after making it.
   */
  restart(): void {
    if (this.current) void this.stop(this.current);
  }

  private ensureThread(): Thread | null {
    if (this.current || this.broken) return this.current;
    const awake = new SharedArrayBuffer(4);
    let worker: Worker;
    try {
      worker = startModuleWorker(QUERY_WORKER_URL, { role: QUERY_WORKER_ROLE, file: this.file, awake } satisfies QueryWorkerData);
    } catch {
      this.broken = true;
      return null;
    }
    const thread: Thread = { worker, waiting: new Map(), ready: false, outbox: [], postedThisTurn: false, awake: new Int32Array(awake) };
    // Never what keeps a process alive while it holds no query: close() and idling end it.
    worker.unref();
    worker.on('message', (m: FromQueryWorker) => {
      if (m.type === 'closed') return;
      if (m.type === 'ready') {
        thread.ready = true;
        return;
      }
      for (const { id, json } of m.answers) {
        const p = thread.waiting.get(id);
        if (!p) continue;
        thread.waiting.delete(id);
        if (json !== null) {
          this.answered++;
          p.resolve(json);
        } else {
          runInline(p.inline).then(p.resolve, p.reject);
        }
      }
      if (thread.waiting.size === 0 && this.current === thread) worker.unref(); // (one being stopped stays held)
    });
    worker.on('error', () => {
      // 'exit' follows and hands the queries back.
    });
    worker.on('exit', () => {
      if (this.current === thread) {
        // Not stopped by us: it died. Stay on the main thread from now on.
        this.current = null;
        if (!this.closed) this.broken = true;
      }
      takeBack(thread);
    });
    this.current = thread;
    // Idle from its start: one that is never handed a query ends after idleMs too.
    this.idle.touch();
    return thread;
  }

  /** Posts the queries handed over since the last post, if any. */
  private post(thread: Thread): void {
    if (thread.outbox.length === 0) return;
    const queries = thread.outbox;
    thread.outbox = [];
    this.posts++;
    thread.worker.postMessage({ type: 'queries', queries } satisfies ToQueryWorker);
  }

  /** Asks the worker to close its connection (after what it holds), then waits for it to end. */
  private stop(thread: Thread): Promise<void> {
    if (this.current === thread) this.current = null;
    const { worker } = thread;
    // Held until it has ended: close() is awaited, and an unref'd thread would let the loop finish first.
    worker.ref();
    const ended = new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      const timer = setTimeout(() => void worker.terminate(), this.opts.closeWaitMs);
      timer.unref();
      worker.on('message', (m: FromQueryWorker) => {
        if (m.type !== 'closed') return;
        clearTimeout(timer);
        void worker.terminate();
      });
    });
    this.stopping.add(ended);
    void ended.then(() => this.stopping.delete(ended));
    this.post(thread); // what this turn handed over goes first
    worker.postMessage({ type: 'close' } satisfies ToQueryWorker);
    return ended;
  }
}

/** Runs here whatever a thread still held when it ended (nothing, unless it ended before answering all). */
function takeBack(thread: Thread): void {
  for (const [id, p] of thread.waiting) {
    thread.waiting.delete(id);
    runInline(p.inline).then(p.resolve, p.reject);
  }
}

function runInline(inline: () => string): Promise<string> {
  try {
    return Promise.resolve(inline());
  } catch (error) {
    return Promise.reject(error);
  }
}
