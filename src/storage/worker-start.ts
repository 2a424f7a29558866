import { createRequire } from 'node:module';
import { extname } from 'node:path';
import type { Worker, WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on one of the storage modules (its URL: compiled `.js`, or
 * under tsx the `.ts` source). node:worker_threads is loaded here, not at start-up: a
 * server that never needs a thread never loads it.
 */
export function startModuleWorker(moduleUrl: string, workerData: unknown, options: { shareEnv?: boolean } = {}): Worker {
  const threads = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
  const { Worker } = threads;
  const url = new URL(moduleUrl);
  // shareEnv: the thread sees the process's environment as it is now, not a copy taken at its start (PATH for the programs it runs).
  const env: WorkerOptions = options.shareEnv ? { env: threads.SHARE_ENV } : {};
  if (extname(url.pathname) !== '.ts') return new Worker(url, { workerData, ...env });
  // Under tsx (tests, `npm run dev`): on Node 20, tsx registers its loader for the main
  // thread only, even when the worker inherits `--import tsx`; so the worker loads the
  // TypeScript file through tsx's API. A missing tsx throws here, and the caller falls back.
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((api) => api.tsImport(${JSON.stringify(url.href)}, ${JSON.stringify(url.href)}))`;
  return new Worker(boot, { eval: true, workerData, ...env });
}

/**
 * Ends a worker as if it had crashed (tests), and waits until it has. The wait is held
 * open: a thread ended while inside a SQLite call stops only once the call returns, and
 * meanwhile Node may hold no handle for it, so the event loop ran dry with the caller
 * still waiting (seen: 1 in 12 runs of a query-thread test, cancelled).
 */
export async function terminateHeld(worker: Worker | undefined): Promise<void> {
  if (!worker) return;
  const hold = setInterval(() => undefined, 1000);
  try {
    await worker.terminate();
  } finally {
    clearInterval(hold);
  }
}
