/**
 * A query thread for one SQLite file: its own connection (query_only), answering the
 * store's record queries (SELECTs of the stored JSON texts) that the main thread hands
 * over when it is busy (query-offload.ts says when). Each query is one statement, so
 * each reads the latest committed data and holds no snapshot between queries: the
 * checkpointer's WAL restarts are never held up by this connection for longer than
 * one query.
 *
 * Like checkpoint-worker.ts, this file is both a module and the worker's entry; it only
 * serves inside a worker started with its role in `workerData`.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { QUERY_WORKER_ROLE } from './query-protocol.js';

export interface QueryWorkerData {
  role: typeof QUERY_WORKER_ROLE;
  /** The database file; the worker opens its own connection to it. */
  file: string;
  /** Its first (Int32) element is set to 1 while the worker handles a message, so the main thread can tell it is awake. */
  awake: SharedArrayBuffer;
}

/**
 * A one-value SELECT that must come out falsy for the query to be answered here: the
 * array probes the main thread planned the query by (record-store.ts arrayPlan). It
 * runs in the same read transaction as the query; truthy means the data changed since
 * in a way that needs another plan, and the answer is `failed`.
 */
export interface Recheck {
  sql: string;
  params: unknown[];
}

/** A query to run: `sql` (a SELECT of one text column) with `params`. */
export interface QueryJob {
  id: number;
  sql: string;
  params: unknown[];
  recheck: Recheck | null;
}

export type ToQueryWorker =
  /** Runs each in turn; answered by one `answers`, in the same order. */
  | { type: 'queries'; queries: QueryJob[] }
  /** Closes the connection; answered by `closed`, after which the thread ends. */
  | { type: 'close' }
  /**
   * Tests: blocks the thread until `flag`'s first element is set (a query sent meanwhile
   * waits behind it), showing it awake meanwhile if `awake`; it sets the second element
   * as it begins to wait.
   */
  | { type: 'hold'; flag: SharedArrayBuffer; awake: boolean };

export type FromQueryWorker =
  /**
   * Per query: the column's values joined as a JSON array (the stored texts, unparsed), or
   * null where it failed here; the main thread then runs it itself, which reports the error
   * as it would.
   */
  | { type: 'answers'; answers: Array<{ id: number; json: string | null }> }
  /** The thread has opened its connection and takes queries (sent once, first). */
  | { type: 'ready' }
  | { type: 'closed' };

/** Prepared statements kept, least recently used first out (as the main connection's cache). */
const STATEMENTS = 200;

function serve(port: MessagePort, file: string, awake: Int32Array): void {
  let db: Database.Database | null = null;
  const cache = new Map<string, Database.Statement>();
  const statement = (sql: string): Database.Statement => {
    let stmt = cache.get(sql);
    if (stmt) cache.delete(sql);
    else {
      db ??= open(file);
      stmt = db.prepare(sql).pluck();
      if (cache.size >= STATEMENTS) cache.delete(cache.keys().next().value!);
    }
    cache.set(sql, stmt);
    return stmt;
  };
  /** Runs `body` in one read transaction, so its statements see one snapshot. */
  const read = <T>(body: () => T): T => {
    db ??= open(file);
    db.exec('BEGIN');
    try {
      return body();
    } finally {
      db.exec('COMMIT');
    }
  };
  /** The page as a JSON array, or null: failed, or the recheck found the plan outdated. */
  const answer = ({ sql, params, recheck }: QueryJob): string | null => {
    try {
      const rows = recheck
        ? read(() => (statement(recheck.sql).get(...recheck.params) ? null : (statement(sql).all(...params) as string[])))
        : (statement(sql).all(...params) as string[]);
      return rows === null ? null : `[${rows.join(',')}]`;
    } catch {
      return null;
    }
  };
  port.on('message', (msg: ToQueryWorker) => {
    if (msg.type === 'hold') {
      if (msg.awake) Atomics.store(awake, 0, 1);
      const cells = new Int32Array(msg.flag);
      Atomics.store(cells, 1, 1);
      Atomics.wait(cells, 0, 0);
      Atomics.store(awake, 0, 0);
      return;
    }
    if (msg.type === 'close') {
      try {
        db?.close();
      } catch {
        // The main thread only needs this connection gone.
      }
      db = null;
      port.postMessage({ type: 'closed' } satisfies FromQueryWorker);
      port.close();
      return;
    }
    Atomics.store(awake, 0, 1);
    const answers = msg.queries.map((q) => ({ id: q.id, json: answer(q) }));
    port.postMessage({ type: 'answers', answers } satisfies FromQueryWorker);
    Atomics.store(awake, 0, 0);
  });
  // Opened before the thread takes queries, so the first ones it is handed do not wait for it.
  try {
    db = open(file);
  } catch {
    // Opened again at its first query, which fails here and so runs on the main thread.
  }
  port.postMessage({ type: 'ready' } satisfies FromQueryWorker);
}

function open(file: string): Database.Database {
  // fileMustExist: a store closed and deleted meanwhile must not be recreated empty.
  const db = new Database(file, { fileMustExist: true });
  // Reads from the mapped file as the main connection does, with a smaller page cache of its
  // own; query_only refuses any write that could slip in.
  db.pragma('mmap_size = 268435456');
  db.pragma('cache_size = -8000');
  db.pragma('busy_timeout = 5000');
  db.pragma('query_only = ON');
  return db;
}

const data = workerData as Partial<QueryWorkerData> | null;
if (!isMainThread && data?.role === QUERY_WORKER_ROLE && typeof data.file === 'string' && data.awake instanceof SharedArrayBuffer) {
  serve(parentPort!, data.file, new Int32Array(data.awake));
}
