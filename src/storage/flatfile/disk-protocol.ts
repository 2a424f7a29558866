import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What the disk thread's two sides agree on apart from both: the main thread reads these
 * without loading the worker's module (nor node:worker_threads) until it starts one.
 */

/** Marks the worker the disk thread starts, in its workerData. */
export const DISK_WORKER_ROLE = 'freehold-flatfile-disk';

/** The worker's module, compiled (.js) or, under tsx, the TypeScript source (.ts). */
export const DISK_WORKER_URL = new URL(`./disk-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;
