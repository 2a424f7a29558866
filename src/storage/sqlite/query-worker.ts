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

export type ToQueryWorker =
  /** Runs `sql` (a SELECT of one text column) with `params`; answered by `rows` or `failed` with the same id. */
  | { type: 'query'; id: number; sql: string; params: unknown[]; recheck: Recheck | null }
  /** Closes the connection; answered by `closed`, after which the thread ends. */
  | { type: 'close' }
  /** Tests: blocks the thread until `flag`'s first element is set (a query sent meanwhile waits behind it). */
  | { type: 'hold'; flag: SharedArrayBuffer };

export type FromQueryWorker =
  /** The column's values joined as a JSON array: the stored texts, unparsed. */
  | { type: 'rows'; id: number; json: string }
  /** The query failed there; the main thread runs it itself, which reports the error as it would. */
  | { type: 'failed'; id: number }
  /** The thread has opened its connection and takes queries (sent once, first). */
  | { type: 'ready' }
  | { type: 'closed' };

/** Prepared statements kept, least recently used first out (as the main connection's cache). */
const STATEMENTS = 200;

function serve(port: MessagePort, file: string): void {
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
  port.on('message', (msg: ToQueryWorker) => {
    if (msg.type === 'hold') {
      Atomics.wait(new Int32Array(msg.flag), 0, 0);
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
    try {
      const { recheck } = msg;
      const rows = recheck
        ? read(() => (statement(recheck.sql).get(...recheck.params) ? null : (statement(msg.sql).all(...msg.params) as string[])))
        : (statement(msg.sql).all(...msg.params) as string[]);
      if (rows === null) port.postMessage({ type: 'failed', id: msg.id } satisfies FromQueryWorker);
      else port.postMessage({ type: 'rows', id: msg.id, json: `[${rows.join(',')}]` } satisfies FromQueryWorker);
    } catch {
      port.postMessage({ type: 'failed', id: msg.id } satisfies FromQueryWorker);
    }
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
if (!isMainThread && data?.role === QUERY_WORKER_ROLE && typeof data.file === 'string') serve(parentPort!, data.file);
