/**
 * The checkpoint thread: one per process, holding its own connection to every SQLite
 * file the main thread asks about, and running `PRAGMA wal_checkpoint(PASSIVE)` on
 * request. A passive checkpoint takes no lock that writers or readers wait on, so the
 * main thread keeps committing while this thread copies the WAL into the database
 * file and fsyncs it. Asked to trim, it runs a TRUNCATE checkpoint instead, which
 * also cuts the WAL file to nothing; that one waits for writers and readers, so the
 * main thread holds its commits meanwhile. See checkpointer.ts for the main-thread side.
 *
 * This file is both a module (the main thread imports its URL and message types, so
 * every build that includes the store also compiles this file) and the worker's entry;
 * it only starts serving inside a worker started with its role in `workerData`.
 */
import { fsyncSync, statSync } from 'node:fs';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { CHECKPOINT_WORKER_ROLE } from './checkpoint-protocol.js';

export type ToWorker =
  /**
   * `key` names the main thread's registration of `file`, echoed in the answer. `fd` is a
   * descriptor of the database file, opened and closed by the main thread, to fsync it
   * (see syncAfter); null if it could not be opened. `trim`: a TRUNCATE checkpoint (see
   * trim), run while the main thread holds its commits.
   */
  | { type: 'checkpoint'; file: string; key: number; fd: number | null; trim: boolean }
  /** Closes this thread's connection to `file`; answered by `closed` with the same id. */
  | { type: 'close'; file: string; id: number };

export type FromWorker =
  /**
   * `log`: frames in the WAL; `checkpointed`: frames now in the database file; both -1 if
   * it could not run. `walBytes`: the WAL file's size afterwards (it is reused from its
   * start after each restart, so this is the furthest it reached since it was last cut).
   */
  | { type: 'done'; key: number; busy: number; log: number; checkpointed: number; walBytes: number }
  /** Opening or checkpointing `file` failed; the main thread stops asking about it. */
  | { type: 'failed'; key: number; message: string }
  | { type: 'closed'; id: number };

/** A passive checkpoint waits on nobody's lock but another checkpointer's. */
const BUSY_MS = 1000;

interface Connection {
  db: Database.Database;
  /** `checkpointed` of the last answer: a sync is due only if it moved. */
  checkpointed: number;
}

function serve(port: MessagePort): void {
  const connections = new Map<string, Connection>();

  const open = (file: string): Connection => {
    let c = connections.get(file);
    if (!c) {
      // fileMustExist: a store closed and deleted meanwhile must not be recreated empty.
      const db = new Database(file, { fileMustExist: true });
      // Only ever checkpoints: a tiny page cache, and waiting on a lock here blocks nobody else.
      db.pragma('cache_size = -256');
      db.pragma(`busy_timeout = ${BUSY_MS}`);
      c = { db, checkpointed: 0 };
      connections.set(file, c);
    }
    return c;
  };

  const close = (file: string): void => {
    const c = connections.get(file);
    connections.delete(file);
    try {
      c?.db.close();
    } catch {
      // The main thread only needs this connection gone; an error closing it changes nothing there.
    }
  };

  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'close') {
      // With the main thread's connections closed first, this is the last one: SQLite
      // checkpoints the rest of the WAL and removes it here rather than on the event loop.
      close(msg.file);
      port.postMessage({ type: 'closed', id: msg.id } satisfies FromWorker);
      return;
    }
    try {
      const c = open(msg.file);
      const r = msg.trim ? trim(c) : (c.db.pragma('wal_checkpoint(PASSIVE)') as CheckpointRow[])[0]!;
      syncAfter(c, r.checkpointed, msg.fd);
      port.postMessage({ type: 'done', key: msg.key, busy: r.busy, log: r.log, checkpointed: r.checkpointed, walBytes: walBytes(msg.file) } satisfies FromWorker);
    } catch (error) {
      close(msg.file);
      port.postMessage({ type: 'failed', key: msg.key, message: error instanceof Error ? error.message : String(error) } satisfies FromWorker);
    }
  });
}

interface CheckpointRow {
  busy: number;
  log: number;
  checkpointed: number;
}

/** Longest a trim waits for a reader to leave the WAL before giving up (the main thread's commits are held meanwhile). */
const TRIM_BUSY_MS = 100;

/**
 * A TRUNCATE checkpoint: copies what is left, waits (briefly) until no reader uses the
 * WAL, and cuts the file to zero bytes, so this thread, not a commit on the event
 * loop, pays for freeing its blocks. A reader that stays longer makes it answer busy
 * with the file left as it was; the main thread tries again later.
 */
function trim(c: Connection): CheckpointRow {
  c.db.pragma(`busy_timeout = ${TRIM_BUSY_MS}`);
  try {
    return (c.db.pragma('wal_checkpoint(TRUNCATE)') as CheckpointRow[])[0]!;
  } finally {
    c.db.pragma(`busy_timeout = ${BUSY_MS}`);
  }
}

function walBytes(file: string): number {
  return statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
}

/**
 * SQLite syncs the database file only when a checkpoint reaches the end of the WAL;
 * one that new commits overtake (the usual case under load) copies pages and leaves
 * them unsynced. The one sync that finally comes, in the catch-up checkpoint that
 * commits wait for, would then flush everything copied since the last: tens of MB, tens
 * of ms. Syncing after every checkpoint keeps that last one short.
 */
function syncAfter(c: Connection, checkpointed: number, fd: number | null): void {
  if (fd !== null && checkpointed > 0 && checkpointed !== c.checkpointed) fsyncSync(fd);
  c.checkpointed = checkpointed;
}

if (!isMainThread && (workerData as { role?: unknown } | null)?.role === CHECKPOINT_WORKER_ROLE) serve(parentPort!);
