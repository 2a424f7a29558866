/**
 * What every SQL backend shares about the records table: the reserved top-level
 * fields kept in real columns (with their fixed type), and the shape of a safe
 * column reference (the data column, optionally table-qualified).
 */
export const RESERVED_COLUMNS: Record<string, { column: string; type: 'text' | 'number' }> = {
  _id: { column: 'id', type: 'text' },
  _date_created: { column: 'created', type: 'number' },
  _date_modified: { column: 'modified', type: 'number' },
};

export const COLUMN_REF = /^(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/;
