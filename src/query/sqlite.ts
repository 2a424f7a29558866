import type { Condition, FieldPath, Scalar, SortKey } from './types.js';
import { ANY_PATH_MAY_HOLD_ARRAYS, ConditionCompiler, type ArraysAt } from './condition-compiler.js';
import { COLUMN_REF, RESERVED_COLUMNS } from './columns.js';
import { PATH_SEGMENT } from './validate.js';
import { asciiLower } from './evaluate.js';

/**
 * Compiles a validated Condition to a parameterised SQLite WHERE expression over a
 * JSON text column. The semantics are those documented at the top of evaluate.ts;
 * each comment below says how SQLite is made to agree with them.
 *
 * Shape (a later postgres.ts mirrors it with jsonb_typeof / `#>>`):
 *   - a path resolves to a Field: either a real column (reserved top-level fields
 *     with a fixed type) or a JSON path, with a value expression and a type expression;
 *   - each operator is a small function of (Field, value) → SQL;
 *   - positive leaves may evaluate to NULL, which means "no match" (SQL three-valued
 *     logic: AND/OR treat NULL like false for the purpose of a WHERE clause); only
 *     `not` needs two-valued logic, so it wraps its operand in COALESCE(…, 0).
 *     Keeping positive leaves bare (`json_extract(data,'$."f"') = ? AND …`) lets
 *     SQLite use expression indexes made by ensureIndex.
 *
 * Paths are embedded as literals (`'$."a"."b"'`) rather than bound, because an
 * expression index only matches a literal path. That is safe because every segment
 * matched PATH_SEGMENT in validation, and is checked again here.
 *
 * Arrays. A comparing leaf also matches an element of an array value (evaluate.ts),
 * which SQL adds as `OR (<the field is an array> AND EXISTS(<an element passes the
 * same test>))` over json_each. That branch defeats an expression index's plan for
 * the leaf, so a caller that knows a path holds no array in the table being queried
 * (the store probes its indexes: arrayPlan in storage/sqlite/record-store.ts) says so through `arraysAt`, and
 * the leaf compiles bare. The branch leads with a range on the same expression (an
 * array's JSON text starts with `[`), which lets SQLite serve even it from the index.
 */

export interface CompiledSql {
  sql: string;
  params: unknown[];
}

type Field =
  | { kind: 'column'; expr: string; type: 'text' | 'number' }
  | { kind: 'json'; value: string; type: string };


const COLUMNS = RESERVED_COLUMNS;
const NUMBER_TYPES = `('integer','real')`;

/** `'$."a"."b"'`: a SQL string literal holding a JSON path with every key quoted. */
export function jsonPathLiteral(path: FieldPath): string {
  if (path.length === 0) throw new Error('Empty field path');
  for (const seg of path) {
    // Defence in depth: validation already guarantees this, and it is what makes embedding safe.
    if (!PATH_SEGMENT.test(seg)) throw new Error(`Unsafe field path segment ${JSON.stringify(seg)}`);
  }
  return `'$.${path.map((s) => `"${s}"`).join('.')}'`;
}

/** The expression an index must use to serve equality/range queries on `path`. */
export function sqliteValueExpression(path: FieldPath, dataColumn: string): string {
  const f = field(path, dataColumn);
  return f.kind === 'column' ? f.expr : f.value;
}

/**
 * Whether some record of one (owner, tbl) may hold an array at a JSON path: an index
 * range seek when an index leads with the path's expression (its value is an array's
 * JSON text, which starts with `[`; a string starting with `[` also answers yes, which
 * only costs the array branch). Parameters: owner, tbl.
 */
export function sqliteArrayProbe(valueExpression: string): string {
  return `EXISTS(SELECT 1 FROM records WHERE owner = ? AND tbl = ? AND ${valueExpression} >= '[' AND ${valueExpression} < '\\')`;
}

function field(path: FieldPath, dataColumn: string): Field {
  if (!COLUMN_REF.test(dataColumn)) throw new Error(`Unsafe column reference ${JSON.stringify(dataColumn)}`);
  const top = path[0]!;
  if (path.length === 1 && Object.prototype.hasOwnProperty.call(COLUMNS, top)) {
    const reserved = COLUMNS[top]!;
    const dot = dataColumn.lastIndexOf('.');
    const prefix = dot >= 0 ? dataColumn.slice(0, dot + 1) : '';
    return { kind: 'column', expr: prefix + reserved.column, type: reserved.type };
  }
  const p = jsonPathLiteral(path);
  return { kind: 'json', value: `json_extract(${dataColumn}, ${p})`, type: `json_type(${dataColumn}, ${p})` };
}

class Compiler extends ConditionCompiler<Field> {
  readonly params: unknown[] = [];
  protected readonly TRUE = '1';
  protected readonly FALSE = '0';
  /** json_each's row: its value and type columns follow json_extract's and json_type's conventions. */
  protected readonly element: Field = { kind: 'json', value: 'je.value', type: 'je.type' };

  bind(v: unknown): '?' {
    this.params.push(v);
    return '?';
  }

  protected field(path: FieldPath): Field {
    return field(path, this.dataColumn);
  }

  /** Leads with a range on the field's own expression (an array's JSON text starts with `[`), which an index can serve. */
  protected arrayBranch(f: Field & { kind: 'json' }, path: FieldPath, inElements: string): string {
    return `(${f.value} >= '[' AND ${f.value} < '\\' AND ${f.type} = 'array' AND EXISTS(SELECT 1 FROM json_each(${this.dataColumn}, ${jsonPathLiteral(path)}) AS je WHERE ${inElements}))`;
  }

  protected not(sql: string): string {
    return `NOT COALESCE(${sql}, 0)`;
  }

  /**
   * Same JSON type and value. The value test comes first so an expression index can
   * serve it; the type test then rejects look-alikes, and is added only when one is
   * possible, because it parses every candidate row's JSON (measured: a third of an
   * indexed 50-record query). json_extract gives INTEGER 1/0 for true/false and an
   * object's or array's JSON text for it; SQLite never finds a TEXT equal to a number.
   * So only the numbers 0 and 1, and strings starting with `{` or `[`, have look-alikes.
   */
  protected eq(f: Field, v: Scalar): string {
    if (v === null) return f.kind === 'column' ? '0' : `COALESCE(${f.type}, 'null') = 'null'`;
    if (typeof v === 'boolean') return f.kind === 'column' ? '0' : `${f.type} = '${v ? 'true' : 'false'}'`;
    const want = typeof v === 'number' ? 'number' : 'text';
    if (f.kind === 'column') return f.type === want ? `${f.expr} = ${this.bind(v)}` : '0';
    const value = `${f.value} = ${this.bind(v)}`;
    return hasLookAlike(v) ? `(${value} AND ${this.typeIs(f, want)})` : value;
  }

  protected in(f: Field, values: Scalar[]): string {
    const numbers = values.filter((v): v is number => typeof v === 'number');
    const strings = values.filter((v): v is string => typeof v === 'string');
    const others = [...new Set(values.filter((v) => v === null || typeof v === 'boolean'))];
    const parts = others.map((v) => this.eq(f, v));
    // A list binds as one JSON array parameter, so a 1000-value $in costs one variable.
    for (const [list, type] of [[numbers, 'number'], [strings, 'text']] as const) {
      if (list.length === 0) continue;
      if (list.length === 1) {
        parts.push(this.eq(f, list[0]!));
        continue;
      }
      if (f.kind === 'column' && f.type !== type) continue; // a fixed-type column never matches the other bracket
      const set = `(SELECT value FROM json_each(${this.bind(JSON.stringify(list))}))`;
      if (f.kind === 'column' || !list.some(hasLookAlike)) parts.push(`${f.kind === 'column' ? f.expr : f.value} IN ${set}`);
      else parts.push(`(${f.value} IN ${set} AND ${this.typeIs(f, type)})`);
    }
    if (parts.length === 0) return '0';
    return parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`;
  }

  protected exists(f: Field, present: boolean): string {
    if (f.kind === 'column') return present ? '1' : '0';
    return present ? `${f.type} IS NOT NULL` : `${f.type} IS NULL`;
  }

  /** Only within the value's type bracket; TEXT compares with BINARY collation = code point order. */
  protected compare(f: Field, op: 'lt' | 'lte' | 'gt' | 'gte', v: string | number): string {
    const sqlOp = { lt: '<', lte: '<=', gt: '>', gte: '>=' }[op];
    const want = typeof v === 'number' ? 'number' : 'text';
    if (f.kind === 'column') return f.type === want ? `${f.expr} ${sqlOp} ${this.bind(v)}` : '0';
    return `(${f.value} ${sqlOp} ${this.bind(v)} AND ${this.typeIs(f, want)})`;
  }

  /**
   * Substring via instr(), prefix via substr() on a code-point count (SQLite counts
   * characters, JS counts UTF-16 units). lower() folds ASCII only, like asciiLower().
   */
  protected contains(f: Field, needle: string, anchored: boolean, ci: boolean): string {
    let hay: string;
    if (f.kind === 'column') {
      if (f.type !== 'text') return '0';
      hay = f.expr;
    } else {
      hay = f.value;
    }
    if (ci) hay = `lower(${hay})`;
    const n = ci ? asciiLower(needle) : needle;
    const test = anchored
      ? `substr(${hay}, 1, ${this.bind(codePointLength(n))}) = ${this.bind(n)}`
      : `instr(${hay}, ${this.bind(n)}) > 0`;
    return f.kind === 'column' ? test : `(${f.type} = 'text' AND ${test})`;
  }

  private typeIs(f: Field & { kind: 'json' }, want: 'number' | 'text'): string {
    return want === 'number' ? `${f.type} IN ${NUMBER_TYPES}` : `${f.type} = 'text'`;
  }
}

/** Whether json_extract can turn a value of another JSON type into something equal to `v` (see eq). */
function hasLookAlike(v: string | number): boolean {
  return typeof v === 'number' ? v === 0 || v === 1 : v.startsWith('{') || v.startsWith('[');
}

function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export function compileSqlite(cond: Condition, dataColumn: string, arraysAt: ArraysAt = ANY_PATH_MAY_HOLD_ARRAYS): CompiledSql {
  const c = new Compiler(dataColumn, arraysAt);
  const sql = c.cond(cond);
  return { sql, params: c.params };
}

/**
 * ORDER BY terms (no leading keyword; '' for an empty sort). A JSON field sorts by
 * a type rank first (missing/null 0, numbers 1, strings 2, booleans 3,
 * objects/arrays 4) and then by its value within the rank; objects and arrays get
 * a NULL value so they tie, as in compareForSort.
 */
export function compileSqliteOrder(sort: SortKey[], dataColumn: string): string {
  return sort
    .map((key) => {
      const dir = key.direction === 1 ? 'ASC' : 'DESC';
      const f = field(key.path, dataColumn);
      if (f.kind === 'column') return `${f.expr} ${dir}`;
      const rank =
        `CASE ${f.type} WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 ` +
        `WHEN 'true' THEN 3 WHEN 'false' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END`;
      const value = `CASE WHEN ${f.type} IN ('integer','real','text','true','false') THEN ${f.value} END`;
      return `${rank} ${dir}, ${value} ${dir}`;
    })
    .join(', ');
}
