import { FreeholdError } from '../core/errors.js';
import {
  DEFAULT_QUERY_COUNT,
  MAX_QUERY_COUNT,
  type Condition,
  type FieldPath,
  type Query,
  type Scalar,
  type SortKey,
} from './types.js';

/**
 * Turns client query JSON (CEPS.md §3, Mongo-like) into the validated `Condition`
 * tree. This is the only place that reads raw client query input, so every limit
 * lives here: backends may assume paths are safe to embed in SQL, values are
 * scalars and trees are small. Everything refused is a FreeholdError('invalid_query')
 * whose message names what was wrong, so app developers can fix their query.
 */

/**
 * Field path segments: any field name a record may hold (letters of any script, spaces,
 * punctuation), except what would need escaping where backends embed the path in SQL
 * (SQLite `'$."seg"'`, PostgreSQL `-> 'seg'`): `"`, `'`, `\`; the `.` that separates
 * segments; control characters; lone surrogates (not Unicode, so not storable as
 * such); and a leading `$`, which names an operator.
 */
export const PATH_SEGMENT = /^(?!\$)[^."'\\\u0000-\u001f\u007f\ud800-\udfff]+$/u;
export const MAX_DEPTH = 20;
export const MAX_CONDITIONS = 200;
export const MAX_IN_VALUES = 1000;
export const MAX_STRING_LENGTH = 4096;
export const MAX_REGEX_LENGTH = 200;
export const MAX_SORT_KEYS = 5;
export const MAX_SKIP = 10_000_000;
const MAX_PATH_SEGMENTS = 32;
const MAX_PATH_LENGTH = 512;

/** Operators that are known Mongo operators but deliberately not supported (mostly code execution). */
const REFUSED_OPERATORS = new Set([
  '$where', '$function', '$expr', '$accumulator', '$elemMatch', '$size', '$all', '$mod',
  '$text', '$type', '$jsonSchema', '$nor', '$comment', '$geoWithin', '$near', '$bitsAllSet',
]);

const FIELD_OPERATORS = new Set([
  '$eq', '$ne', '$lt', '$lte', '$gt', '$gte', '$in', '$nin', '$exists', '$regex', '$options', '$not',
]);

function invalid(message: string): FreeholdError {
  return new FreeholdError('invalid_query', message);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' && !Number.isFinite(v)) return 'a non-finite number';
  return `a ${typeof v}`;
}

function unsupportedOperator(op: string): FreeholdError {
  return REFUSED_OPERATORS.has(op)
    ? invalid(`Query operator ${op} is not allowed`)
    : invalid(`Unknown query operator ${op}`);
}

/** Parses `a.b.c` into validated segments. Reserved fields like `_id` pass: they are queryable. */
export function parseFieldPath(key: string): FieldPath {
  if (key.length === 0 || key.length > MAX_PATH_LENGTH) {
    throw invalid(`Invalid field name: must be 1-${MAX_PATH_LENGTH} characters`);
  }
  const segments = key.split('.');
  if (segments.length > MAX_PATH_SEGMENTS) throw invalid(`Field path ${truncate(key)} has too many segments`);
  for (const seg of segments) {
    if (seg.startsWith('$')) throw unsupportedOperator(seg);
    if (!PATH_SEGMENT.test(seg)) {
      throw invalid(`Invalid field name ${truncate(key)}: no part between dots may be empty or hold " ' \\ or control characters`);
    }
  }
  return segments;
}

function truncate(s: string): string {
  return JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s);
}

/** Counts nodes and tracks depth while validating one query. */
class Budget {
  private nodes = 0;
  take(): void {
    if (++this.nodes > MAX_CONDITIONS) throw invalid(`Query has more than ${MAX_CONDITIONS} conditions`);
  }
  static depth(depth: number): void {
    if (depth > MAX_DEPTH) throw invalid(`Query is nested more than ${MAX_DEPTH} levels deep`);
  }
}

function scalar(v: unknown, where: string): Scalar {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw invalid(`${where}: numbers must be finite`);
    return v;
  }
  if (typeof v === 'string') {
    if (v.length > MAX_STRING_LENGTH) throw invalid(`${where}: strings are limited to ${MAX_STRING_LENGTH} characters`);
    return v;
  }
  throw invalid(`${where}: expected a string, number, boolean or null, got ${describe(v)} (matching objects or arrays is not supported; use dotted paths)`);
}

function and(items: Condition[]): Condition {
  return items.length === 1 ? items[0]! : { op: 'and', items };
}

/** Validates a whole `q`. `undefined`, `null` and `{}` match every record. */
export function validateWhere(q: unknown): Condition {
  if (q === undefined || q === null) return { op: 'true' };
  return whereObject(q, new Budget(), 1);
}

function whereObject(q: unknown, budget: Budget, depth: number): Condition {
  Budget.depth(depth);
  if (!isPlainObject(q)) throw invalid(`A query must be an object, got ${describe(q)}`);
  const keys = Object.keys(q);
  if (keys.length === 0) return { op: 'true' };
  const items: Condition[] = [];
  for (const key of keys) {
    const value = q[key];
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(value) || value.length === 0) throw invalid(`${key} needs a non-empty array of queries`);
      budget.take();
      const sub = value.map((v) => whereObject(v, budget, depth + 1));
      items.push({ op: key === '$and' ? 'and' : 'or', items: sub });
    } else if (key === '$not') {
      budget.take();
      items.push({ op: 'not', item: whereObject(value, budget, depth + 1) });
    } else if (key.startsWith('$')) {
      throw unsupportedOperator(key);
    } else {
      items.push(fieldCondition(parseFieldPath(key), key, value, budget, depth + 1));
    }
  }
  if (items.length > 1) budget.take();
  return and(items);
}

function fieldCondition(path: FieldPath, key: string, value: unknown, budget: Budget, depth: number): Condition {
  Budget.depth(depth);
  if (!isPlainObject(value)) {
    budget.take();
    return { op: 'eq', path, value: scalar(value, `Value for ${truncate(key)}`) };
  }
  const ops = Object.keys(value);
  if (ops.length === 0) throw invalid(`Empty operator object for ${truncate(key)}`);
  const nonOps = ops.filter((k) => !k.startsWith('$'));
  if (nonOps.length > 0) {
    throw invalid(`Value for ${truncate(key)}: matching whole objects is not supported; use dotted paths like ${truncate(key + '.' + nonOps[0])}`);
  }
  if ('$options' in value && !('$regex' in value)) throw invalid(`$options is only allowed with $regex (field ${truncate(key)})`);
  const items: Condition[] = [];
  for (const op of ops) {
    if (!FIELD_OPERATORS.has(op)) throw unsupportedOperator(op);
    if (op === '$options') continue; // read together with $regex
    const arg = value[op];
    const where = `${op} on ${truncate(key)}`;
    budget.take();
    switch (op) {
      case '$eq':
      case '$ne':
        items.push({ op: op === '$eq' ? 'eq' : 'ne', path, value: scalar(arg, where) });
        break;
      case '$lt':
      case '$lte':
      case '$gt':
      case '$gte': {
        const v = scalar(arg, where);
        if (typeof v !== 'string' && typeof v !== 'number') throw invalid(`${where}: expected a string or a number, got ${describe(arg)}`);
        items.push({ op: op.slice(1) as 'lt' | 'lte' | 'gt' | 'gte', path, value: v });
        break;
      }
      case '$in':
      case '$nin': {
        if (!Array.isArray(arg)) throw invalid(`${where}: expected an array, got ${describe(arg)}`);
        if (arg.length > MAX_IN_VALUES) throw invalid(`${where}: at most ${MAX_IN_VALUES} values`);
        items.push({ op: op === '$in' ? 'in' : 'nin', path, values: arg.map((v) => scalar(v, where)) });
        break;
      }
      case '$exists':
        if (typeof arg !== 'boolean') throw invalid(`${where}: expected true or false, got ${describe(arg)}`);
        items.push({ op: 'exists', path, value: arg });
        break;
      case '$regex':
        items.push(regexCondition(path, arg, value['$options'], where));
        break;
      case '$not': {
        if (!isPlainObject(arg)) throw invalid(`${where}: expected an operator object like {"$gt": 5}, got ${describe(arg)}`);
        if (Object.keys(arg).some((k) => !k.startsWith('$'))) throw invalid(`${where}: expected an operator object like {"$gt": 5}`);
        items.push({ op: 'not', item: fieldCondition(path, key, arg, budget, depth + 1) });
        break;
      }
    }
  }
  if (items.length > 1) budget.take();
  return and(items);
}

/** Characters with a meaning in a regular expression; only a leading `^` is accepted unescaped. */
const REGEX_META = new Set(['\\', '^', '$', '.', '|', '?', '*', '+', '(', ')', '[', ']', '{', '}']);
/** Characters that may follow a backslash to mean themselves. */
const ESCAPABLE = new Set([...REGEX_META, '/', '-']);

/**
 * `$regex` is only a substring (or, with a leading `^`, prefix) match: real regular
 * expressions cannot be compiled to portable, index-friendly SQL and invite ReDoS.
 */
function regexCondition(path: FieldPath, pattern: unknown, options: unknown, where: string): Condition {
  if (typeof pattern !== 'string') throw invalid(`${where}: expected a string, got ${describe(pattern)}`);
  if (pattern.length > MAX_REGEX_LENGTH) throw invalid(`${where}: limited to ${MAX_REGEX_LENGTH} characters`);
  if (options !== undefined && options !== '' && options !== 'i') {
    throw invalid(`${where}: $options may only be "" or "i"`);
  }
  const anchored = pattern.startsWith('^');
  let literal = '';
  for (let i = anchored ? 1 : 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined || !ESCAPABLE.has(next)) {
        throw invalid(`${where}: only plain text or a ^prefix is supported (escape sequence \\${next ?? ''} is not)`);
      }
      literal += next;
      i++;
    } else if (REGEX_META.has(c)) {
      throw invalid(`${where}: only plain text or a ^prefix is supported (${JSON.stringify(c)} is a regular expression character; escape it with \\ to match it literally)`);
    } else {
      literal += c;
    }
  }
  return { op: 'contains', path, value: literal, anchored, caseInsensitive: options === 'i' };
}

/** Sort: `{field: 1 | -1 | "asc" | "desc"}`, in key order, at most MAX_SORT_KEYS keys. */
export function validateSort(sort: unknown): SortKey[] {
  if (sort === undefined || sort === null) return [];
  if (!isPlainObject(sort)) throw invalid(`sort must be an object like {"field": 1}, got ${describe(sort)}`);
  const keys = Object.keys(sort);
  if (keys.length > MAX_SORT_KEYS) throw invalid(`sort is limited to ${MAX_SORT_KEYS} fields`);
  return keys.map((key) => {
    const path = parseFieldPath(key);
    const d = sort[key];
    const dir = typeof d === 'string' ? d.toLowerCase() : d;
    if (dir === 1 || dir === 'asc') return { path, direction: 1 as const };
    if (dir === -1 || dir === 'desc') return { path, direction: -1 as const };
    throw invalid(`sort direction for ${truncate(key)} must be 1, -1, "asc" or "desc"`);
  });
}

/**
 * Integers may arrive as digit strings (freezr clients and query strings send them
 * that way); anything else that is not an integer is refused.
 */
function integer(v: unknown, name: string, min: number, max: number, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  const n = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw invalid(`${name} must be an integer`);
  if (n < min || n > max) throw invalid(`${name} must be between ${min} and ${max}`);
  return n;
}

export function validateQuery(q: unknown, opts: { sort?: unknown; skip?: unknown; count?: unknown } = {}): Query {
  return {
    where: validateWhere(q),
    options: {
      sort: validateSort(opts.sort),
      skip: integer(opts.skip, 'skip', 0, MAX_SKIP, 0),
      limit: integer(opts.count, 'count', 1, MAX_QUERY_COUNT, DEFAULT_QUERY_COUNT),
    },
  };
}
