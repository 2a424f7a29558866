import { FreeholdError } from '../errors.js';
import type { ClientFields } from './reserved.js';

/**
 * A FEPS partial update's fields over a stored record's, as freezr's stores apply
 * `$set`: a plain key replaces that top-level field; a dotted key (`"meta.tag"`) sets the
 * field at that path, making the objects on the way that are missing and keeping their
 * other fields. A path through a value that is not an object (a number, an array, null)
 * is refused, as MongoDB refuses it, rather than overwriting that value.
 *
 * Only partial updates read dots this way: a record written whole (CEPS write, update,
 * FEPS upsert replacing all fields) keeps a dotted key as the key it is.
 */
export function mergeFields(base: ClientFields, patch: ClientFields): ClientFields {
  const out: ClientFields = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (!key.includes('.')) {
      out[key] = value;
      continue;
    }
    const segments = key.split('.');
    if (segments.some((s) => s === '')) throw invalid(`Field path ${quote(key)} has an empty part`);
    // Assigning it would set the object's prototype, not a field (JSON bodies refuse the key too).
    if (segments.includes('__proto__')) throw invalid(`Field path ${quote(key)} names __proto__`);
    let parent: Record<string, unknown> = out;
    for (let i = 0; i < segments.length - 1; i++) {
      const seg = segments[i]!;
      const next = Object.hasOwn(parent, seg) ? parent[seg] : undefined;
      if (next === undefined) {
        parent = parent[seg] = {};
      } else if (next !== null && typeof next === 'object' && !Array.isArray(next)) {
        // A copy: the stored record's objects are not changed in place.
        parent = parent[seg] = { ...(next as Record<string, unknown>) };
      } else {
        throw invalid(`Cannot set ${quote(key)}: ${quote(segments.slice(0, i + 1).join('.'))} holds ${kindOf(next)}, not an object`);
      }
    }
    parent[segments.at(-1)!] = value;
  }
  return out;
}

/** Whether a partial update names nested fields by dotted keys (stores merging in SQL cannot apply those). */
export function hasFieldPaths(patch: ClientFields): boolean {
  return Object.keys(patch).some((k) => k.includes('.'));
}

function invalid(message: string): FreeholdError {
  return new FreeholdError('invalid_record', message);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}
