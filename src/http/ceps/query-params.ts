import type { Condition, Query } from '../../query/types.js';
import { DEFAULT_QUERY_COUNT, MAX_QUERY_COUNT } from '../../query/types.js';
import { FreeholdError } from '../../core/errors.js';
import { FILE_RECORD_SERVER_FIELDS } from '../../core/files/freezr-fields.js';
import { MAX_CONDITIONS, PATH_SEGMENT } from '../../query/validate.js';

/** A dotted field path the query language takes (validate.ts: any script, no quotes or control characters). */
const isFieldPath = (key: string) => key.split('.').every((segment) => PATH_SEGMENT.test(segment));
const NUMERIC = /^-?(0|[1-9]\d*)(\.\d+)?$/;
// `_id`, and the fields freezr's file records carry (`?_file_extension=pdf` on `<app>.files`).
const QUERYABLE_RESERVED = new Set(['_id', ...FILE_RECORD_SERVER_FIELDS]);

function intParam(name: string, v: string | undefined, fallback: number, max: number, min = 0): number {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) throw new FreeholdError('invalid_query', `${name} must be a whole number`);
  const n = Number(v);
  if (n < min || n > max) throw new FreeholdError('invalid_query', `${name} must be between ${min} and ${max}`);
  return n;
}

function dateParam(name: string, v: string): number {
  if (!/^\d{1,16}$/.test(v)) throw new FreeholdError('invalid_query', `${name} must be a time in epoch milliseconds`);
  return Number(v);
}

/**
 * `GET /ceps/query/:app_table` parameters (CEPS.md §3): each plain parameter is an
 * equality filter; a numeric-looking value matches the string or the number, and
 * `true`/`false` the string or the boolean, since a URL cannot say which the app stored.
 */
export function queryFromParams(params: Record<string, unknown>): Query {
  const items: Condition[] = [];
  let count = DEFAULT_QUERY_COUNT;
  let skip = 0;
  for (const [key, raw] of Object.entries(params)) {
    if (Array.isArray(raw)) throw new FreeholdError('invalid_query', `Parameter ${key.slice(0, 50)} is given more than once`);
    if (typeof raw !== 'string') throw new FreeholdError('invalid_query', `Parameter ${key.slice(0, 50)} is malformed`);
    if (raw.length > 4096) throw new FreeholdError('invalid_query', `Parameter ${key.slice(0, 50)} is too long`);
    switch (key) {
      case '_count': count = intParam('_count', raw, DEFAULT_QUERY_COUNT, MAX_QUERY_COUNT, 1); continue;
      case '_skip': skip = intParam('_skip', raw, 0, 10_000_000); continue;
      case '_modified_after': items.push({ op: 'gt', path: ['_date_modified'], value: dateParam(key, raw) }); continue;
      case '_modified_before': items.push({ op: 'lt', path: ['_date_modified'], value: dateParam(key, raw) }); continue;
    }
    if (!isFieldPath(key) || key.length > 200 || (key.startsWith('_') && !QUERYABLE_RESERVED.has(key))) {
      throw new FreeholdError('invalid_query', `Cannot filter on ${key.slice(0, 50)}`);
    }
    // The POST query language's cap, which a long address would otherwise get around:
    // each filter becomes a condition the database compiles (SQLite refuses very deep ones).
    if (items.length >= MAX_CONDITIONS) throw new FreeholdError('invalid_query', `Query has more than ${MAX_CONDITIONS} conditions`);
    const path = key.split('.');
    items.push(NUMERIC.test(raw) && raw.length < 20
      ? { op: 'in', path, values: [raw, Number(raw)] }
      : raw === 'true' || raw === 'false'
        ? { op: 'in', path, values: [raw, raw === 'true'] }
        : { op: 'eq', path, value: raw });
  }
  return {
    where: items.length === 0 ? { op: 'true' } : items.length === 1 ? items[0]! : { op: 'and', items },
    options: { sort: NEWEST_FIRST, skip, limit: count },
  };
}

/** CEPS's default order: newest modification first, then id, so pages are stable. */
export const NEWEST_FIRST = [{ path: ['_date_modified'], direction: -1 as const }, { path: ['_id'], direction: 1 as const }];
