import { FreeholdError } from '../errors.js';
import { jsonOverBytes } from '../../storage/record-json.js';

/** Fields only the server sets (CEPS.md §3). Stripped from client input, never trusted. */
export const RESERVED_FIELDS = new Set([
  '_id', '_date_created', '_date_modified', '_accessibles', '_publicid', '_date_accessibility_mod',
  '_owner', '_created_by_user', '_created_by_app',
]);

/** Largest record, serialised (CEPS.md §3): the app's own fields, as the client sends them. */
export const MAX_RECORD_BYTES = 2 * 1024 * 1024;

/**
 * Room beyond MAX_RECORD_BYTES that a stored record's server-set fields may take (`_id`,
 * dates, who added it, a file record's `_file_*`): what an archive line may hold on top.
 */
export const SERVER_FIELDS_ALLOWANCE = 64 * 1024;

export type ClientFields = Record<string, unknown>;

/**
 * Deepest nesting of objects and arrays a record may have. Storage cannot take much
 * more: SQLite's JSON functions refuse text nested over 1000 levels, so a deeper record
 * failed app-declared index writes with a 500 and, stored without an index, made every
 * filtered query of its table fail; JSON.stringify overflows the stack near 10^4 levels.
 * Real app data is nowhere near 100 levels.
 */
export const MAX_RECORD_DEPTH = 100;

/**
 * Most field names a record may have, its nested objects' included. Each costs the
 * server's single thread about 4 µs per write (parsing, checking, copying, storing): a
 * 1 MB record of 100,000 short fields took ~0.4 s, and sixteen of them at once stalled
 * every other request for seconds (an audit). Arrays are not counted: their elements
 * cost a tenth of that.
 */
export const MAX_RECORD_FIELDS = 20_000;

/**
 * Checks depth and field count (`maxFields`; Infinity counts none); iterative (a recursive
 * walk would itself overflow on the inputs it exists to refuse).
 */
export function assertShallow(value: unknown, maxFields = MAX_RECORD_FIELDS): void {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 1 }];
  let fields = 0;
  while (stack.length) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_RECORD_DEPTH) {
      throw new FreeholdError('invalid_record', `A record may be nested at most ${MAX_RECORD_DEPTH} levels deep`);
    }
    const children = Object.values(v as object);
    if (!Array.isArray(v) && (fields += children.length) > maxFields) {
      throw new FreeholdError('invalid_record', `A record may have at most ${maxFields} fields, its nested objects' included`);
    }
    for (const child of children) if (child !== null && typeof child === 'object') stack.push({ v: child, depth: depth + 1 });
  }
}

/**
 * Turns a client's JSON body into the fields we store: reserved fields dropped,
 * other `_`-keys refused, size capped. freezr's `{ _entity: record }` wrapper is
 * unwrapped first.
 */
export function cleanClientRecord(body: unknown): ClientFields {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new FreeholdError('invalid_record', 'The record must be a JSON object');
  }
  let input = body as Record<string, unknown>;
  const entity = input._entity;
  if (entity !== undefined) {
    if (entity === null || typeof entity !== 'object' || Array.isArray(entity)) {
      throw new FreeholdError('invalid_record', '_entity must be a JSON object');
    }
    input = entity as Record<string, unknown>;
  }
  const out: ClientFields = {};
  for (const [key, value] of Object.entries(input)) {
    if (RESERVED_FIELDS.has(key)) continue;
    const problem = clientFieldProblem(key);
    if (problem) throw new FreeholdError('invalid_record', problem[0]!.toUpperCase() + problem.slice(1));
    out[key] = value;
  }
  assertShallow(out);
  return out;
}

/**
 * A record's own fields may take MAX_RECORD_BYTES; the fields the server adds (its id and
 * dates) are not counted against the app, so a body of exactly the limit is taken.
 */
export function assertRecordSize(record: object): void {
  const json = JSON.stringify(record);
  if (!jsonOverBytes(json, MAX_RECORD_BYTES)) return;
  let server = 0;
  for (const [key, value] of Object.entries(record)) {
    // `"key":value` and its comma, as JSON.stringify wrote it.
    if (key.startsWith('_')) server += Buffer.byteLength(JSON.stringify(key)) + 2 + Buffer.byteLength(JSON.stringify(value) ?? '');
  }
  if (Buffer.byteLength(json) - server > MAX_RECORD_BYTES) {
    throw new FreeholdError('too_large', `A record may be at most ${MAX_RECORD_BYTES} bytes (2 MB) of its own fields`);
  }
}

/**
 * Why a field name may not be written by a client (CEPS.md §3), or null: other `_` names
 * are the server's, `$` would read as a query operator, NUL breaks storage.
 */
export function clientFieldProblem(key: string): string | null {
  if (key.startsWith('_')) return `field ${key.slice(0, 50)} is not allowed: names starting with _ are reserved`;
  if (key.startsWith('$') || key.includes('\u0000')) return 'field names may not start with $ or contain NUL';
  return null;
}
