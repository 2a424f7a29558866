import { RESERVED_COLUMNS } from './columns.js';
import type { Condition, FieldPath } from './types.js';

/**
 * The JSON paths (not the reserved columns) that comparing leaves of `cond` look at
 * (eq, ne, in, nin, the ranges, contains): the leaves that also match an element of
 * an array (evaluate.ts), so the paths a SQL store may probe for arrays. One entry
 * per distinct path, keyed by its JSON text.
 */
export function comparedJsonPaths(cond: Condition, out = new Map<string, FieldPath>()): Map<string, FieldPath> {
  switch (cond.op) {
    case 'and':
    case 'or':
      for (const item of cond.items) comparedJsonPaths(item, out);
      break;
    case 'not':
      comparedJsonPaths(cond.item, out);
      break;
    case 'true':
    case 'exists':
      break;
    default:
      if (cond.path.length > 1 || !Object.prototype.hasOwnProperty.call(RESERVED_COLUMNS, cond.path[0]!)) {
        out.set(pathKey(cond.path), cond.path);
      }
  }
  return out;
}

export const pathKey = (path: FieldPath): string => JSON.stringify(path);
