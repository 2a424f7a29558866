import type { Condition, FieldPath, Scalar } from './types.js';

/** Whether the leaves on `path` must also look into arrays (evaluate.ts's array rule). */
export type ArraysAt = (path: FieldPath) => boolean;

/** The default: any path may hold an array. */
export const ANY_PATH_MAY_HOLD_ARRAYS: ArraysAt = () => true;

/** A resolved path, as each dialect describes it: a real column, or a value inside the JSON. */
export interface DialectField {
  kind: 'column' | 'json';
}

/**
 * The walk over a validated Condition that the SQL dialects (sqlite.ts, postgres.ts)
 * share: how each operator maps to a leaf test, negation and the array rule. Each
 * dialect says how a field resolves, how each test is written, and how a leaf is
 * extended to the elements of an array value; the semantics they must meet are those
 * at the top of evaluate.ts.
 */
export abstract class ConditionCompiler<F extends DialectField> {
  protected abstract readonly TRUE: string;
  protected abstract readonly FALSE: string;
  /** An element of an array value, as a field (so the leaf tests apply to it unchanged). */
  protected abstract readonly element: F;

  constructor(
    protected readonly dataColumn: string,
    private readonly arraysAt: ArraysAt,
  ) {}

  protected abstract field(path: FieldPath): F;
  /** Two-valued negation: an operand that is NULL (unknown, so no match) becomes a match. */
  protected abstract not(sql: string): string;
  protected abstract eq(f: F, v: Scalar): string;
  protected abstract in(f: F, values: Scalar[]): string;
  protected abstract exists(f: F, present: boolean): string;
  protected abstract compare(f: F, op: 'lt' | 'lte' | 'gt' | 'gte', v: string | number): string;
  protected abstract contains(f: F, needle: string, anchored: boolean, ci: boolean): string;
  /** True when the JSON field `f` (at `path`) is an array with an element that passes `inElements`. */
  protected abstract arrayBranch(f: F, path: FieldPath, inElements: string): string;

  cond(c: Condition): string {
    switch (c.op) {
      case 'true':
        return this.TRUE;
      case 'and':
      case 'or':
        return c.items.length === 0
          ? (c.op === 'and' ? this.TRUE : this.FALSE)
          : `(${c.items.map((i) => this.cond(i)).join(c.op === 'and' ? ' AND ' : ' OR ')})`;
      case 'not':
        return this.not(this.cond(c.item));
      case 'eq':
        return this.leaf(c.path, (f) => this.eq(f, c.value));
      case 'ne':
        return this.not(this.leaf(c.path, (f) => this.eq(f, c.value)));
      case 'in':
        return this.leaf(c.path, (f) => this.in(f, c.values));
      case 'nin':
        return this.not(this.leaf(c.path, (f) => this.in(f, c.values)));
      case 'exists':
        return this.exists(this.field(c.path), c.value);
      case 'lt':
      case 'lte':
      case 'gt':
      case 'gte':
        return this.leaf(c.path, (f) => this.compare(f, c.op, c.value));
      case 'contains':
        return this.leaf(c.path, (f) => this.contains(f, c.value, c.anchored, c.caseInsensitive));
    }
  }

  /**
   * A comparing leaf: `test` on the field and, for a JSON path that may hold arrays, on
   * each element of an array there. The field's test is written (and binds its values)
   * first, then the elements', as the text reads.
   */
  private leaf(path: FieldPath, test: (f: F) => string): string {
    const f = this.field(path);
    const own = test(f);
    if (f.kind === 'column' || !this.arraysAt(path)) return own;
    const inElements = test(this.element);
    if (inElements === this.FALSE) return own;
    const array = this.arrayBranch(f, path, inElements);
    return own === this.FALSE ? array : `(${own} OR ${array})`;
  }
}
