import { FreeholdError } from '../../core/errors.js';
import type { StoredRecord } from '../types.js';

/**
 * The on-disk form of one record: the whole StoredRecord, reserved fields included,
 * as 2-space pretty-printed JSON with a final newline, so `cat`, `jq`, `grep` and
 * diff tools show it naturally.
 */

export function serializeRecord(r: StoredRecord): string {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new FreeholdError('bad_request', 'A record must be an object');
  if (typeof r._id !== 'string' || r._id.length === 0) throw new FreeholdError('bad_request', 'Record _id must be a non-empty string');
  if (!Number.isFinite(r._date_created) || !Number.isFinite(r._date_modified)) {
    throw new FreeholdError('bad_request', 'Record _date_created and _date_modified must be numbers');
  }
  return JSON.stringify(r, null, 2) + '\n';
}

/**
 * Parses a record file. The files are meant to be edited by hand, so a broken one
 * is reported with its path (a 500 naming the file to fix) rather than silently
 * skipped, which would look like data loss.
 */
export function parseRecord(text: string, file: string): StoredRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FreeholdError('internal', `Record file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new FreeholdError('internal', `Record file ${file} does not hold a JSON object`);
  }
  const r = v as Record<string, unknown>;
  if (typeof r._id !== 'string' || typeof r._date_created !== 'number' || typeof r._date_modified !== 'number') {
    throw new FreeholdError('internal', `Record file ${file} lacks a string _id or numeric _date_created/_date_modified`);
  }
  return r as StoredRecord;
}
