import type { Readable } from 'node:stream';
import { FreeholdError } from '../core/errors.js';
import type { BlobInfo, BlobStore, RecordStore } from './types.js';

/**
 * Stand-ins for an owner's stores that could not be opened (a server that is down, a
 * store the host's rules no longer allow): every call fails with 503, so that one
 * owner's storage keeps neither the server from starting nor anyone else from working.
 * The registry opens the real stores again later (registry.ts, reopen).
 */
function unreachable(): FreeholdError {
  return new FreeholdError('unavailable', "This account's storage cannot be reached just now; try again in a minute");
}

const refuse = (): Promise<never> => Promise.reject(unreachable());

/** An owner's record store that could not be opened. */
export const unreachableRecords: RecordStore = {
  kind: 'unreachable',
  init: refuse,
  close: () => Promise.resolve(),
  create: refuse,
  get: refuse,
  replace: refuse,
  put: refuse,
  delete: refuse,
  query: refuse,
  count: refuse,
  batch: refuse,
  ensureIndex: refuse,
  listTables: refuse,
  usage: refuse,
  changes: refuse,
  dropTable: refuse,
};

/** An owner's blob store that could not be opened. */
export const unreachableBlobs: BlobStore = {
  kind: 'unreachable',
  init: refuse,
  close: () => Promise.resolve(),
  put: (_key: string, body: Readable | Buffer): Promise<BlobInfo> => {
    // The request's body is not read by anyone else: let it drain.
    if (!Buffer.isBuffer(body)) body.resume();
    return refuse();
  },
  get: refuse,
  head: refuse,
  delete: refuse,
  deletePrefix: refuse,
  list: () => ({ [Symbol.asyncIterator]: () => ({ next: refuse }) }),
};
