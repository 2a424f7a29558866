import type { Condition, FieldPath, Scalar, SortKey } from './types.js';

/**
 * In-memory evaluation of a validated query: used by the flat-file backend and as
 * the reference the SQL compilers are tested against. These are THE semantics of the
 * query language; sqlite.ts (and later postgres.ts) must give identical answers.
 *
 * Values. A path is resolved segment by segment through plain objects only; a
 * segment that is absent, or a path through anything that is not an object (a
 * string, null, an array), yields MISSING. No scalar equals or compares with an
 * object or an array value itself.
 *
 * Arrays (as in MongoDB and NeDB, which freezr apps are written against): when the
 * field's value is an array, a comparing leaf (eq, in, lt/lte/gt/gte, contains)
 * also matches if any element of that array matches it as a scalar field would
 * (`{ tags: 'work' }` matches `tags: ['home', 'work']`). Only the array at the end
 * of the path is searched, one level deep: paths do not step into arrays
 * (`a.b` does not look inside `a: [{ b: 1 }]`) and nested arrays are not
 * searched. ne and nin, being negations, then match only arrays holding no such
 * element; exists is about the field itself.
 *
 * Type brackets (like MongoDB, no coercion):
 *   - eq v      : the field has the same JSON type as v and the same value
 *                 (5 ≠ "5", true ≠ 1). `eq null` matches null OR missing (and,
 *                 by the array rule, an array holding null).
 *   - ne v      : NOT eq v: matches missing fields and fields of another type.
 *   - lt/lte/gt/gte v : only fields of v's bracket (numbers with numbers, strings
 *                 with strings); anything else, including missing, does not match.
 *   - in [..]   : OR of eq over the values (so null in the list matches missing);
 *                 nin = NOT in.
 *   - exists b  : true = the field is present (even if null); false = absent.
 *   - contains  : only string fields. Substring match, or prefix when anchored.
 *                 Case-insensitive folds ASCII A-Z only (SQLite's lower() does
 *                 the same without ICU); non-ASCII letters are compared as-is.
 *   - not c     : boolean negation (every condition is two-valued: true or false).
 *
 * Strings compare by Unicode code point (which is UTF-8 byte order, SQLite's
 * BINARY collation), not by UTF-16 code unit as JS `<` does. Numbers compare
 * numerically. Strings containing lone surrogates are not supported (SQLite
 * stores them as U+FFFD).
 *
 * Sort order of one key, ascending: missing/null, then numbers, then strings,
 * then booleans (false < true), then objects/arrays (all equal to each other).
 * Descending is the exact reverse. Equal keys are left to the caller's tie-breakers
 * (the store appends `_id` or `_date_modified, _id`).
 */

/** Marker for an absent field (distinct from JSON null). */
const MISSING: unique symbol = Symbol('missing');
type Value = unknown | typeof MISSING;

export function resolvePath(record: object, path: FieldPath): Value {
  let cur: unknown = record;
  for (const seg of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return MISSING;
    if (!Object.prototype.hasOwnProperty.call(cur, seg)) return MISSING;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur === undefined ? MISSING : cur;
}

/**
 * Compares two strings by code point. JS compares UTF-16 units, which puts
 * U+E000..U+FFFF after astral characters; shifting units at the first difference
 * fixes that without allocating.
 */
export function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
    return x < y ? -1 : 1;
  }
  return a.length - b.length < 0 ? -1 : a.length === b.length ? 0 : 1;
}

/** Lower-cases ASCII A-Z only, the same as SQLite's built-in lower(). */
export function asciiLower(s: string): string {
  return /[A-Z]/.test(s) ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s;
}

function isNumber(v: Value): v is number {
  return typeof v === 'number';
}

function equalsScalar(v: Value, target: Scalar): boolean {
  if (target === null) return v === null || v === MISSING;
  return typeof v === typeof target && v === target;
}

function compareInBracket(v: Value, target: string | number): number | null {
  if (typeof target === 'number') return isNumber(v) ? v - target : null;
  return typeof v === 'string' ? compareStrings(v, target) : null;
}

export function matches(record: object, cond: Condition): boolean {
  switch (cond.op) {
    case 'true':
      return true;
    case 'and':
      return cond.items.every((c) => matches(record, c));
    case 'or':
      return cond.items.some((c) => matches(record, c));
    case 'not':
      return !matches(record, cond.item);
    case 'eq':
    case 'ne': {
      const found = leafMatches(resolvePath(record, cond.path), { op: 'eq', value: cond.value });
      return cond.op === 'eq' ? found : !found;
    }
    case 'in':
    case 'nin': {
      const found = leafMatches(resolvePath(record, cond.path), { op: 'in', values: cond.values });
      return cond.op === 'in' ? found : !found;
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
    case 'contains':
      return leafMatches(resolvePath(record, cond.path), cond);
    case 'exists':
      return (resolvePath(record, cond.path) !== MISSING) === cond.value;
  }
}

/** What a comparing leaf tests a value with: the leaves that also look into an array value (the array rule above). */
type ComparingLeaf =
  | { op: 'eq'; value: Scalar }
  | { op: 'in'; values: Scalar[] }
  | { op: 'lt' | 'lte' | 'gt' | 'gte'; value: string | number }
  | { op: 'contains'; value: string; anchored: boolean; caseInsensitive: boolean };

function leafMatches(v: Value, cond: ComparingLeaf): boolean {
  if (scalarMatches(v, cond)) return true;
  return Array.isArray(v) && v.some((element: unknown) => scalarMatches(element, cond));
}

function scalarMatches(v: Value, cond: ComparingLeaf): boolean {
  switch (cond.op) {
    case 'eq':
      return equalsScalar(v, cond.value);
    case 'in':
      return cond.values.some((t) => equalsScalar(v, t));
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      const c = compareInBracket(v, cond.value);
      if (c === null) return false;
      return cond.op === 'lt' ? c < 0 : cond.op === 'lte' ? c <= 0 : cond.op === 'gt' ? c > 0 : c >= 0;
    }
    case 'contains': {
      if (typeof v !== 'string') return false;
      const hay = cond.caseInsensitive ? asciiLower(v) : v;
      const needle = cond.caseInsensitive ? asciiLower(cond.value) : cond.value;
      return cond.anchored ? hay.startsWith(needle) : hay.includes(needle);
    }
  }
}

/** Sort rank of a value's type; the SQL compilers must produce the same ranks. */
export function sortRank(v: Value): 0 | 1 | 2 | 3 | 4 {
  if (v === MISSING || v === null) return 0;
  switch (typeof v) {
    case 'number':
      return 1;
    case 'string':
      return 2;
    case 'boolean':
      return 3;
    default:
      return 4;
  }
}

function compareValues(a: Value, b: Value): number {
  const ra = sortRank(a);
  const rb = sortRank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 1) return Math.sign((a as number) - (b as number));
  if (ra === 2) return compareStrings(a as string, b as string);
  if (ra === 3) return Number(a) - Number(b);
  return 0; // null/missing, or objects/arrays: equal within their rank
}

export function compareForSort(a: object, b: object, sort: SortKey[]): number {
  for (const key of sort) {
    const c = compareValues(resolvePath(a, key.path), resolvePath(b, key.path));
    if (c !== 0) return c * key.direction;
  }
  return 0;
}
