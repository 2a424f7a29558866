/**
 * The query language, after validation. Clients send Mongo-like JSON (CEPS.md §3);
 * `validateQuery` turns it into this tree once, and every backend consumes the tree:
 * SQL backends compile it to parameterised SQL, the flat-file backend evaluates it
 * in memory. Nothing downstream ever sees the raw client JSON.
 */

/** A scalar a query may compare against. Objects and arrays are refused at validation. */
export type Scalar = string | number | boolean | null;

/** A dotted path into the record, split into segments (`a.b` → ['a','b']). */
export type FieldPath = readonly string[];

export type Condition =
  | { op: 'eq' | 'ne'; path: FieldPath; value: Scalar }
  | { op: 'lt' | 'lte' | 'gt' | 'gte'; path: FieldPath; value: string | number }
  | { op: 'in' | 'nin'; path: FieldPath; values: Scalar[] }
  | { op: 'exists'; path: FieldPath; value: boolean }
  /** Plain substring (`anchored: false`) or prefix (`anchored: true`) match on a string field. */
  | { op: 'contains'; path: FieldPath; value: string; anchored: boolean; caseInsensitive: boolean }
  | { op: 'and' | 'or'; items: Condition[] }
  | { op: 'not'; item: Condition }
  /** Matches every record. */
  | { op: 'true' };

export interface SortKey {
  path: FieldPath;
  direction: 1 | -1;
}

export interface QueryOptions {
  sort: SortKey[];
  skip: number;
  limit: number;
}

export interface Query {
  where: Condition;
  options: QueryOptions;
}

export const MAX_QUERY_COUNT = 5000;
export const DEFAULT_QUERY_COUNT = 500;
