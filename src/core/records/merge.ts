import { FreeholdError } from '../errors.js';
import { assertShallow, MAX_RECORD_DEPTH, type ClientFields } from './reserved.js';

/**
 * A FEPS partial update's fields over a stored record's, as freezr's stores apply
 * `$set`: a plain key replaces that top-level field; a dotted key (`"meta.tag"`) sets the
 * field at that path, making the objects on the way that are missing and keeping their
 * other fields. A path through a value that is not an object (a number, an array, null)
 * is refused, as MongoDB refuses it, rather than overwriting that value.
 *
 * Only partial updates read dots this way: a record written whole (CEPS write, update,
 * FEPS upsert replacing all fields) keeps a dotted key as the key it is.
 *
 * `patch` must have passed checkPartialUpdate. Each object on a path is copied once per
 * merge (the stored record's objects are never changed in place), so the work is the
 * patch's size, however many of its keys share a parent.
 */
export function mergeFields(base: ClientFields, patch: ClientFields): ClientFields {
  const out: ClientFields = { ...base };
  // Objects this merge made or copied: changed in place from then on.
  const own = new Set<object>([out]);
  for (const [key, value] of Object.entries(patch)) {
    if (!key.includes('.')) {
      out[key] = value;
      continue;
    }
    const segments = key.split('.');
    let parent: Record<string, unknown> = out;
    for (let i = 0; i < segments.length - 1; i++) {
      const seg = segments[i]!;
      const next = Object.hasOwn(parent, seg) ? parent[seg] : undefined;
      let child: Record<string, unknown>;
      if (next === undefined) child = {};
      else if (next !== null && typeof next === 'object' && !Array.isArray(next)) {
        child = own.has(next) ? (next as Record<string, unknown>) : { ...(next as Record<string, unknown>) };
      } else {
        throw invalid(`Cannot set ${quote(key)}: ${quote(segments.slice(0, i + 1).join('.'))} holds ${kindOf(next)}, not an object`);
      }
      if (child !== next) {
        parent[seg] = child;
        own.add(child);
      }
      parent = child;
    }
    parent[segments.at(-1)!] = value;
  }
  return out;
}

/** Whether a partial update names nested fields by dotted keys. */
export function hasFieldPaths(patch: ClientFields): boolean {
  return Object.keys(patch).some((k) => k.includes('.'));
}

interface PathNode {
  /** A key of the patch ends here. */
  end: boolean;
  children: Map<string, PathNode>;
}

/**
 * Checks a partial update's keys before any record is read: dotted paths well formed
 * (no empty part, no `__proto__`, which would set a prototype, not a field), no key
 * that is a path into another key's value (`a` with `a.b`, which MongoDB also refuses,
 * whatever their order), and what the patch adds within the record limits of depth
 * and field count (a dotted key nests its value as deep as its path).
 */
export function checkPartialUpdate(patch: ClientFields): void {
  if (!hasFieldPaths(patch)) return;
  const root: PathNode = { end: false, children: new Map() };
  for (const key of Object.keys(patch)) {
    const segments = key.split('.');
    // The value sits `segments.length` levels into the record: refused here before any work per segment.
    if (segments.length >= MAX_RECORD_DEPTH) throw invalid(`Field path ${quote(key)} is deeper than a record may be nested (${MAX_RECORD_DEPTH} levels)`);
    if (segments.some((s) => s === '')) throw invalid(`Field path ${quote(key)} has an empty part`);
    if (segments.includes('__proto__')) throw invalid(`Field path ${quote(key)} names __proto__`);
    let node = root;
    for (const seg of segments) {
      if (node.end) throw conflict(key);
      let child = node.children.get(seg);
      if (!child) node.children.set(seg, (child = { end: false, children: new Map() }));
      node = child;
    }
    if (node.children.size > 0) throw conflict(key);
    node.end = true;
  }
  // What the patch adds, laid out as it will be in the record: deep or wide paths are refused here.
  assertShallow(mergeFields({}, patch));
}

function conflict(key: string): FreeholdError {
  return invalid(`Field path ${quote(key)} overlaps another key of the update (a field and a path into it)`);
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
