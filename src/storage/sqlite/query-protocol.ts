import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What the query offload (query-offload.ts) reads of its worker (query-worker.ts) before
 * starting one, apart from both, so the main thread does not load the worker's module
 * (nor node:worker_threads) until a worker is actually started. The messages are typed
 * in the worker's module: the offload imports those types, which also makes every build
 * that includes the store compile the worker.
 */

/** Marks the worker a store's query offload starts, in its workerData. */
export const QUERY_WORKER_ROLE = 'freehold-sqlite-queries';

/** The worker's module, compiled (.js) or, under tsx, the TypeScript source (.ts). */
export const QUERY_WORKER_URL = new URL(`./query-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;
