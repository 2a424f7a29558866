import type { Condition, QueryOptions } from '../query/types.js';
import type { RecordStore } from './types.js';

/**
 * Reads answered as JSON text, for the HTTP routes that only pass records on: a store
 * that keeps records as JSON (SQLite) hands its text over as it is; any other store
 * is read normally and serialised here, so every backend answers alike.
 */
export function getRecordJson(store: RecordStore, owner: string, table: string, id: string): Promise<string | null> {
  if (store.getJson) return store.getJson(owner, table, id);
  return store.get(owner, table, id).then((r) => (r === null ? null : JSON.stringify(r)));
}

export function queryRecordsJson(store: RecordStore, owner: string, table: string, where: Condition, options: QueryOptions): Promise<string> {
  if (store.queryJson) return store.queryJson(owner, table, where, options);
  return store.query(owner, table, where, options).then((rows) => JSON.stringify(rows));
}

/** Whether JSON text takes more than `maxBytes` in UTF-8; short texts skip the count (a UTF-16 unit is at most 3 bytes). */
export function jsonOverBytes(json: string, maxBytes: number): boolean {
  return json.length * 3 > maxBytes && Buffer.byteLength(json) > maxBytes;
}
