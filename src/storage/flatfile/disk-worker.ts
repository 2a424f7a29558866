/**
 * The flat-file disk thread's entry (disk-thread.ts is the main thread's side). It
 * runs each request to its end before the next, in the order they were posted.
 *
 * This file is both a module (the main thread imports its message types, so every
 * build that includes the store also compiles this file) and the worker's entry; it
 * only starts serving inside a worker started with its role in `workerData`.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { DISK_WORKER_ROLE } from './disk-protocol.js';
import { syncAll, unlinkAll, type SyncJob, type SyncfsOutcome } from './disk-work.js';

export type ToDiskWorker =
  | { type: 'sync'; id: number; job: SyncJob }
  | { type: 'unlink'; id: number; names: string[] };

export type FromDiskWorker =
  /** Serving: requests posted before this are held by the port until now, none lost. */
  | { type: 'ready' }
  | { type: 'synced'; id: number; syncfs: SyncfsOutcome }
  /** `code`: the errno code (ENOSPC, EIO, …), so the main thread throws what fs would. */
  | { type: 'failed'; id: number; message: string; code: string | null }
  | { type: 'unlinked'; id: number };

function serve(port: MessagePort): void {
  port.on('message', (msg: ToDiskWorker) => {
    if (msg.type === 'unlink') {
      unlinkAll(msg.names);
      port.postMessage({ type: 'unlinked', id: msg.id } satisfies FromDiskWorker);
      return;
    }
    try {
      const { syncfs } = syncAll(msg.job);
      port.postMessage({ type: 'synced', id: msg.id, syncfs } satisfies FromDiskWorker);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      port.postMessage({ type: 'failed', id: msg.id, message: e?.message ?? String(error), code: typeof e?.code === 'string' ? e.code : null } satisfies FromDiskWorker);
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromDiskWorker);
}

if (!isMainThread && (workerData as { role?: unknown } | null)?.role === DISK_WORKER_ROLE) serve(parentPort!);
