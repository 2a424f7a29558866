import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What the checkpointer and its worker agree on, apart from both: the main thread
 * reads these without loading the worker's module (nor node:worker_threads) until a
 * worker is actually started.
 */

/** Marks the worker this module's checkpointer starts, in its workerData. */
export const CHECKPOINT_WORKER_ROLE = 'freehold-sqlite-checkpointer';

/** The worker's module, compiled (.js) or, under tsx, the TypeScript source (.ts). */
export const CHECKPOINT_WORKER_URL = new URL(`./checkpoint-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;
