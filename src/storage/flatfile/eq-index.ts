import { resolvePath } from '../../query/evaluate.js';
import type { Condition, FieldPath, Scalar } from '../../query/types.js';
import { pathKey } from '../../query/compared-paths.js';

/**
 * In-memory equality indexes over one cached table, so an equality query looks at
 * the records it can match instead of every record.
 *
 * An index only narrows: the store still runs `matches` (the reference semantics)
 * on every candidate, so the one property that must hold is that the candidates
 * include every record that matches. The keys follow `eq` exactly: same JSON type
 * and value (5 ≠ "5"), null and missing share a key (`eq null` matches both),
 * objects get no key (no scalar equals them), and an array is filed under the key
 * of each of its scalar elements (`eq` matches an array holding the value).
 */

/** The key `eq value` looks up; for a record's value, null if no scalar can equal it. */
export function keyOf(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return 's' + value;
    case 'number':
      return 'n' + String(value); // injective on finite numbers, and 0 and -0 are `===`
    case 'boolean':
      return value ? 'bt' : 'bf';
    case 'symbol':
      return 'z'; // resolvePath's marker for a missing field
    default:
      return value === null ? 'z' : null;
  }
}


export class EqIndex<T extends { record: object }> {
  /** A bucket of one is the entry itself: a Set each costs ~200 bytes, and unique fields are common. */
  private readonly buckets = new Map<string, T | Set<T>>();

  constructor(readonly path: FieldPath) {}

  add(entry: T): void {
    const value = resolvePath(entry.record, this.path);
    if (Array.isArray(value)) for (const element of value) this.addKey(keyOf(element), entry);
    else this.addKey(keyOf(value), entry);
  }

  /** `entry` must be the object that was added (records in the cache are never mutated). */
  remove(entry: T): void {
    const value = resolvePath(entry.record, this.path);
    if (Array.isArray(value)) for (const element of value) this.removeKey(keyOf(element), entry);
    else this.removeKey(keyOf(value), entry);
  }

  private addKey(k: string | null, entry: T): void {
    if (k === null) return;
    const b = this.buckets.get(k);
    if (b === undefined) this.buckets.set(k, entry);
    else if (b instanceof Set) b.add(entry);
    else if (b !== entry) this.buckets.set(k, new Set([b, entry]));
  }

  private removeKey(k: string | null, entry: T): void {
    if (k === null) return;
    const b = this.buckets.get(k);
    if (b === entry) this.buckets.delete(k);
    else if (b instanceof Set) {
      b.delete(entry);
      if (b.size === 1) this.buckets.set(k, b.values().next().value!);
    }
  }

  lookup(value: Scalar): ReadonlySet<T> {
    const b = this.buckets.get(keyOf(value)!);
    return b === undefined ? EMPTY : b instanceof Set ? b : new Set([b]);
  }
}

const EMPTY: ReadonlySet<never> = new Set();

/** Paths compared by `eq`/`in` at the top of the condition (inside `and`/`or`): what an index could serve. */
export function equalityPaths(cond: Condition, out: FieldPath[] = []): FieldPath[] {
  if (cond.op === 'eq' || cond.op === 'in') out.push(cond.path);
  else if (cond.op === 'and' || cond.op === 'or') for (const c of cond.items) equalityPaths(c, out);
  return out;
}

/**
 * Entries that may match `cond`, or null when the indexes cannot narrow it (scan
 * everything). A superset: `and` takes its narrowest item, `or` the union of its
 * items only if every item narrows.
 */
export function candidates<T extends { record: object }>(cond: Condition, indexes: ReadonlyMap<string, EqIndex<T>>): ReadonlySet<T> | null {
  switch (cond.op) {
    case 'eq':
      return indexes.get(pathKey(cond.path))?.lookup(cond.value) ?? null;
    case 'in': {
      const ix = indexes.get(pathKey(cond.path));
      if (!ix) return null;
      return union(cond.values.map((v) => ix.lookup(v)));
    }
    case 'and': {
      let best: ReadonlySet<T> | null = null;
      for (const c of cond.items) {
        const got = candidates(c, indexes);
        if (got && (!best || got.size < best.size)) best = got;
      }
      return best;
    }
    case 'or': {
      const parts: Array<ReadonlySet<T>> = [];
      for (const c of cond.items) {
        const got = candidates(c, indexes);
        if (!got) return null;
        parts.push(got);
      }
      return union(parts);
    }
    default:
      return null;
  }
}

function union<T>(sets: Array<ReadonlySet<T>>): ReadonlySet<T> {
  const nonEmpty = sets.filter((s) => s.size > 0);
  if (nonEmpty.length <= 1) return nonEmpty[0] ?? EMPTY;
  const out = new Set<T>();
  for (const s of nonEmpty) for (const e of s) out.add(e);
  return out;
}
