/**
 * The checkpoint thread: one per process, holding its own connection to every SQLite
 * file the main thread asks about, and running `PRAGMA wal_checkpoint(PASSIVE)` on
 * request. A passive checkpoint takes no lock that writers or readers wait on, so the
 * main thread keeps committing while this thread copies the WAL into the database
 * file and fsyncs it. See checkpointer.ts for the main-thread side.
 *
 * This file is both a module (the main thread imports its URL and message types, so
 * every build that includes the store also compiles this file) and the worker's entry;
 * it only starts serving inside a worker started with its role in `workerData`.
 */
import { fsyncSync } from 'node:fs';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { CHECKPOINT_WORKER_ROLE } from './checkpoint-protocol.js';

export type ToWorker =
  /**
   * `key` names the main thread's registration of `file`, echoed in the answer. `fd` is a
   * descriptor of the database file, opened and closed by the main thread, to fsync it
   * (see syncAfter); null if it could not be opened.
   */
  | { type: 'checkpoint'; file: string; key: number; fd: number | null }
  /** Closes this thread's connection to `file`; answered by `closed` with the same id. */
  | { type: 'close'; file: string; id: number };

export type FromWorker =
  /** `log`: frames in the WAL; `checkpointed`: frames now in the database file; both -1 if it could not run. */
  | { type: 'done'; key: number; busy: number; log: number; checkpointed: number }
  /** Opening or checkpointing `file` failed; the main thread stops asking about it. */
  | { type: 'failed'; key: number; message: string }
  | { type: 'closed'; id: number };

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
      db.pragma('busy_timeout = 1000');
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
      const [r] = c.db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      syncAfter(c, r!.checkpointed, msg.fd);
      port.postMessage({ type: 'done', key: msg.key, busy: r!.busy, log: r!.log, checkpointed: r!.checkpointed } satisfies FromWorker);
    } catch (error) {
      close(msg.file);
      port.postMessage({ type: 'failed', key: msg.key, message: error instanceof Error ? error.message : String(error) } satisfies FromWorker);
    }
  });
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
