import type { Condition, FieldPath, Scalar, SortKey } from './types.js';
import { ANY_PATH_MAY_HOLD_ARRAYS, ConditionCompiler, type ArraysAt } from './condition-compiler.js';
import { COLUMN_REF, RESERVED_COLUMNS } from './columns.js';
import { PATH_SEGMENT } from './validate.js';
import { asciiLower } from './evaluate.js';

/**
 * Compiles a validated Condition to a parameterised PostgreSQL WHERE expression
 * over a `jsonb` column. The semantics are those documented at the top of
 * evaluate.ts; this file mirrors sqlite.ts and each comment says how PostgreSQL is
 * made to agree with them.
 *
 *   - A path resolves to a real column (reserved top-level fields) or to a chain of
 *     `->` steps with literal keys (`data -> 'a' -> 'b'`). `->` with a text key
 *     gives NULL on arrays and scalars, which is exactly MISSING (`#>` would index
 *     into arrays with '0'). Literal keys, not bound ones, because an expression
 *     index only matches a literal expression; every segment matched PATH_SEGMENT
 *     in validation and is checked again here, so embedding is safe.
 *   - Equality is jsonb equality against a bound jsonb value: it is type-strict on
 *     its own (5 ≠ "5", true ≠ 1, 2 = 2.0) and served by ensureIndex's indexes.
 *   - Ranges guard with jsonb_typeof. Numbers compare as jsonb (numeric). Strings
 *     compare as text COLLATE "C" (byte order = code-point order, like SQLite's
 *     BINARY): jsonb's own string ordering uses the database collation.
 *   - Positive leaves may be NULL (= no match); only `not` needs two-valued logic
 *     and wraps its operand in COALESCE(…, FALSE), as sqlite.ts does.
 *
 * Arrays. A comparing leaf also matches an element of an array value (evaluate.ts):
 * `OR (<the field is an array> AND EXISTS(<an element passes the same test>))` over
 * jsonb_array_elements, unless the caller's `arraysAt` rules the path out (the store
 * does, for paths an index leads with, behind a guard: arraySplit in
 * storage/postgres/record-store.ts). The
 * branch leads with a range on the same expression (in jsonb's order every non-empty
 * array lies between `true` and `{}`), so an index can serve even it.
 *
 * Text encoding. PostgreSQL text (and so jsonb) cannot hold U+0000, so strings and
 * keys are stored with an escape: U+0001 → U+0001 U+0002 and U+0000 → U+0001 U+0001
 * (see encodeText). This is a prefix code whose code words sort like the characters
 * they stand for, so equality, code-point order and prefixes are unchanged; only an
 * unanchored substring search for a needle starting with U+0000..U+0002 could match
 * across a code word, and that case uses an aligned regular expression instead.
 * Lone surrogates become U+FFFD, as SQLite does. Every bound string goes through
 * the same encoding.
 */

type Field =
  | { kind: 'column'; expr: string; type: 'text' | 'number' }
  /** `value` is the jsonb expression, `text` the same field as text (`->>`). */
  | { kind: 'json'; value: string; text: string };

const COLUMNS = RESERVED_COLUMNS;
const SQL_OPS = { lt: '<', lte: '<=', gt: '>', gte: '>=' } as const;


// --- text encoding (see the comment at the top) ---

const NEEDS_ENCODING = /[\u0000\u0001\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The text PostgreSQL receives for `s` when it is sent as is (pg sends UTF-8, in which
 * every lone surrogate becomes U+FFFD): two strings naming the same row there may
 * differ here.
 */
export function asSentText(s: string): string {
  return /[\uD800-\uDFFF]/.test(s) ? s.replace(LONE_SURROGATE, '\uFFFD') : s;
}

/** A JS string as stored in PostgreSQL. */
export function encodeText(s: string): string {
  if (!NEEDS_ENCODING.test(s)) return s;
  return asSentText(s).replace(/[\u0000\u0001]/g, (c) => (c === '\u0000' ? '\u0001\u0001' : '\u0001\u0002'));
}

export function decodeText(s: string): string {
  return s.includes('\u0001') ? s.replace(/\u0001([\u0001\u0002])/g, (_, c: string) => (c === '\u0001' ? '\u0000' : '\u0001')) : s;
}

function mapStrings(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === 'string') return f(v);
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[f(k)] = mapStrings(x, f);
  return out;
}

/**
 * JSON text for a jsonb parameter. JSON.stringify escapes U+0000/U+0001 and lone
 * surrogates as `\u…`, so scanning its output finds every value that needs the
 * (slower) structural encoding; a literal backslash-u in a string only costs a
 * needless walk. `json` is JSON.stringify(v), when the caller has it already.
 */
export function toJsonb(v: unknown, json: string = JSON.stringify(v)): string {
  return /\\u(?:000[01]|d[89a-f])/.test(json) ? JSON.stringify(mapStrings(v, encodeText)) : json;
}

/**
 * jsonb output text as JSON for a client: the text itself (the same values; jsonb's own
 * spacing) unless it holds an encoded string, which must be decoded first.
 */
export function jsonbToJson(text: string): string {
  return text.includes('\\u0001') ? JSON.stringify(fromJsonb(text)) : text;
}

/** Parses jsonb output text; PostgreSQL writes U+0001 as `\u0001`, so most values skip the walk. */
export function fromJsonb<T>(text: string): T {
  const v: unknown = JSON.parse(text);
  return (text.includes('\\u0001') ? mapStrings(v, decodeText) : v) as T;
}

// --- paths ---

function checkPath(path: FieldPath): void {
  if (path.length === 0) throw new Error('Empty field path');
  for (const seg of path) {
    // Defence in depth: validation already guarantees this, and it is what makes embedding safe.
    if (!PATH_SEGMENT.test(seg)) throw new Error(`Unsafe field path segment ${JSON.stringify(seg)}`);
  }
}

function field(path: FieldPath, dataColumn: string): Field {
  if (!COLUMN_REF.test(dataColumn)) throw new Error(`Unsafe column reference ${JSON.stringify(dataColumn)}`);
  checkPath(path);
  const top = path[0]!;
  if (path.length === 1 && Object.prototype.hasOwnProperty.call(COLUMNS, top)) {
    const reserved = COLUMNS[top]!;
    const dot = dataColumn.lastIndexOf('.');
    const prefix = dot >= 0 ? dataColumn.slice(0, dot + 1) : '';
    return { kind: 'column', expr: prefix + reserved.column, type: reserved.type };
  }
  const parent = [dataColumn, ...path.slice(0, -1).map((s) => `'${s}'`)].join(' -> ');
  const last = `'${path[path.length - 1]}'`;
  return { kind: 'json', value: `(${parent} -> ${last})`, text: `(${parent} ->> ${last})` };
}

/** The expression an index must use to serve equality queries on `path` (ensureIndex). */
export function postgresValueExpression(path: FieldPath, dataColumn: string): string {
  const f = field(path, dataColumn);
  return f.kind === 'column' ? f.expr : f.value;
}

/**
 * postgresValueExpression(path, 'data') as PostgreSQL prints it back
 * (pg_get_indexdef): how the store recognises the indexes that lead with a path.
 */
export function postgresIndexedExpression(path: FieldPath): string {
  checkPath(path);
  return path.reduce((e, seg) => `(${e} -> '${seg}'::text)`, 'data');
}

/** True for a jsonb value that is a non-empty array, as an index-range test on `expr`. */
export function postgresArrayRange(expr: string): string {
  return `${expr} > 'true'::jsonb AND ${expr} < '{}'::jsonb`;
}

// --- conditions ---

/** Escapes LIKE's wildcards and its escape character (declared with ESCAPE '\'). */
function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c);
}

/** Each character outside [A-Za-z0-9] as a `\Uxxxxxxxx` escape, so the pattern is a pure literal. */
function regexLiteral(s: string): string {
  let out = '';
  for (const ch of s) {
    out += /[A-Za-z0-9]/.test(ch) ? ch : '\\U' + ch.codePointAt(0)!.toString(16).padStart(8, '0');
  }
  return out;
}

/**
 * The id column holds ids as they are (not encoded): they never contain U+0000,
 * which PostgreSQL text cannot hold, so a value containing it equals no id, and a
 * bound on it reduces to its prefix.
 */
function nulPrefix(s: string): string | null {
  const i = s.indexOf('\u0000');
  return i < 0 ? null : s.slice(0, i);
}

class Compiler extends ConditionCompiler<Field> {
  protected readonly TRUE = 'TRUE';
  protected readonly FALSE = 'FALSE';
  /** An element of an array field (jsonb_array_elements(…) AS je(v)). */
  protected readonly element: Field = { kind: 'json', value: 'je.v', text: `(je.v #>> '{}')` };

  constructor(
    dataColumn: string,
    private readonly params: unknown[],
    arraysAt: ArraysAt,
  ) {
    super(dataColumn, arraysAt);
  }

  bind(v: unknown, cast = ''): string {
    this.params.push(v);
    return `$${this.params.length}${cast}`;
  }

  protected field(path: FieldPath): Field {
    return field(path, this.dataColumn);
  }

  /** Leads with the non-empty arrays' range of jsonb's order, which an index can serve. */
  protected arrayBranch(f: Field & { kind: 'json' }, _path: FieldPath, inElements: string): string {
    return `(${postgresArrayRange(f.value)} AND jsonb_typeof(${f.value}) = 'array' AND EXISTS(SELECT 1 FROM jsonb_array_elements(${f.value}) AS je(v) WHERE ${inElements}))`;
  }

  protected not(sql: string): string {
    return `NOT COALESCE(${sql}, FALSE)`;
  }

  /** jsonb equality is already type-strict; `null` also matches a missing field (SQL NULL). */
  protected eq(f: Field, v: Scalar): string {
    if (f.kind === 'column') return this.columnEq(f, v);
    if (v === null) return `(${f.value} IS NULL OR ${f.value} = 'null'::jsonb)`;
    if (typeof v === 'boolean') return `${f.value} = '${v}'::jsonb`;
    return `${f.value} = ${this.bind(toJsonb(v), '::jsonb')}`;
  }

  private columnEq(f: Field & { kind: 'column' }, v: Scalar): string {
    if (f.type === 'text') {
      return typeof v === 'string' && nulPrefix(v) === null ? `${f.expr} = ${this.bind(v)}` : 'FALSE';
    }
    // Dates are stored as safe integers, so no other number can be equal.
    return typeof v === 'number' && Number.isSafeInteger(v) ? `${f.expr} = ${this.bind(v, '::int8')}` : 'FALSE';
  }

  /** One array parameter for the whole list (`= ANY`, which an index serves like `=`). */
  protected in(f: Field, values: Scalar[]): string {
    const parts: string[] = [];
    if (f.kind === 'column') {
      const list = f.type === 'text'
        ? [...new Set(values.filter((v): v is string => typeof v === 'string' && nulPrefix(v) === null))]
        : [...new Set(values.filter((v): v is number => typeof v === 'number' && Number.isSafeInteger(v)))];
      if (list.length === 0) return 'FALSE';
      return list.length === 1
        ? `${f.expr} = ${this.bind(list[0], f.type === 'text' ? '' : '::int8')}`
        : `${f.expr} = ANY(${this.bind(list, f.type === 'text' ? '::text[]' : '::int8[]')})`;
    }
    const list = [...new Set(values.filter((v) => v !== null).map((v) => toJsonb(v)))];
    if (list.length === 1) parts.push(`${f.value} = ${this.bind(list[0], '::jsonb')}`);
    else if (list.length > 1) parts.push(`${f.value} = ANY(${this.bind(list, '::jsonb[]')})`);
    if (values.includes(null)) parts.push(this.eq(f, null));
    if (parts.length === 0) return 'FALSE';
    return parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`;
  }

  protected exists(f: Field, present: boolean): string {
    if (f.kind === 'column') return present ? 'TRUE' : 'FALSE';
    return present ? `${f.value} IS NOT NULL` : `${f.value} IS NULL`;
  }

  /** Only within the value's type bracket. */
  protected compare(f: Field, op: keyof typeof SQL_OPS, v: string | number): string {
    const sqlOp = SQL_OPS[op];
    if (f.kind === 'column') {
      if (f.type === 'number') {
        if (typeof v !== 'number') return 'FALSE';
        // int8 keeps the (…, modified, id) index usable; numeric is exact for fractions and huge values.
        return `${f.expr} ${sqlOp} ${this.bind(v, Number.isSafeInteger(v) ? '::int8' : '::numeric')}`;
      }
      if (typeof v !== 'string') return 'FALSE';
      const prefix = nulPrefix(v);
      if (prefix === null) return `${f.expr} ${sqlOp} ${this.bind(v)}`;
      // No id lies between p and p+"\0…": below v means ≤ p, above v means > p.
      return `${f.expr} ${op === 'lt' || op === 'lte' ? '<=' : '>'} ${this.bind(prefix)}`;
    }
    if (typeof v === 'number') {
      return `(${f.value} ${sqlOp} ${this.bind(toJsonb(v), '::jsonb')} AND jsonb_typeof(${f.value}) = 'number')`;
    }
    return `(${f.text} COLLATE "C" ${sqlOp} ${this.bind(encodeText(v))} AND jsonb_typeof(${f.value}) = 'string')`;
  }

  /**
   * LIKE with escaped wildcards. lower() under COLLATE "C" folds ASCII A-Z only,
   * exactly like SQLite's lower() and asciiLower().
   */
  protected contains(f: Field, needle: string, anchored: boolean, ci: boolean): string {
    let hay: string;
    if (f.kind === 'column') {
      if (f.type !== 'text' || needle.includes('\u0000')) return 'FALSE';
      hay = f.expr;
    } else {
      hay = f.text;
    }
    hay = ci ? `lower(${hay} COLLATE "C")` : `${hay} COLLATE "C"`;
    const folded = ci ? asciiLower(needle) : needle;
    // Ids are stored as they are (they never hold U+0000); JSON strings are encoded.
    const n = f.kind === 'json' ? encodeText(folded) : folded;
    let test: string;
    if (f.kind === 'json' && !anchored && /^[\u0001\u0002]/.test(n)) {
      // Could match starting inside an escape code word: require the match to start
      // after whole code words (plain characters or U+0001 plus one character).
      test = `${hay} ~ ${this.bind('^(?:[^\\u0001]|\\u0001[\\u0001\\u0002])*' + regexLiteral(n))}`;
    } else {
      test = `${hay} LIKE ${this.bind((anchored ? '' : '%') + likeEscape(n) + '%')} ESCAPE '\\'`;
    }
    return f.kind === 'column' ? test : `(jsonb_typeof(${f.value}) = 'string' AND ${test})`;
  }
}

/**
 * WHERE expression for `cond` over the jsonb column `dataColumn` (optionally
 * `alias.data`). Values are appended to `params` and referenced as $n, so callers
 * put their own parameters (owner, table) first.
 */
export function compilePostgres(cond: Condition, dataColumn: string, params: unknown[], arraysAt: ArraysAt = ANY_PATH_MAY_HOLD_ARRAYS): string {
  return new Compiler(dataColumn, params, arraysAt).cond(cond);
}

/**
 * ORDER BY terms (no leading keyword; '' for an empty sort). A JSON field sorts by
 * a type rank (missing/null 0, numbers 1, strings 2, booleans 3, objects/arrays 4),
 * then by its jsonb value for numbers and booleans (numeric order; false < true),
 * then by its text COLLATE "C" for strings. Within one rank only one of the two
 * value terms is non-NULL, so NULLS FIRST/LAST never matters, and objects/arrays
 * get NULL in both and tie, as in compareForSort.
 */
export function compilePostgresOrder(sort: SortKey[], dataColumn: string): string {
  return sort
    .map((key) => {
      const dir = key.direction === 1 ? 'ASC' : 'DESC';
      const f = field(key.path, dataColumn);
      if (f.kind === 'column') return `${f.expr} ${dir}`;
      const type = `jsonb_typeof(${f.value})`;
      const rank =
        `CASE ${type} WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'boolean' THEN 3 ` +
        `WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END`;
      const scalar = `CASE WHEN ${type} IN ('number', 'boolean') THEN ${f.value} END`;
      const text = `CASE WHEN ${type} = 'string' THEN ${f.text} COLLATE "C" END`;
      return `${rank} ${dir}, ${scalar} ${dir}, ${text} ${dir}`;
    })
    .join(', ');
}
