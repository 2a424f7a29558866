import { join, resolve, sep } from 'node:path';
import { FreeholdError } from '../../core/errors.js';

/**
 * Where things live under a flat-file root (see docs/flatfile.md):
 *
 *   <root>/<owner>/<app_table>/<id>.json   one record, pretty-printed JSON
 *   <root>/<owner>/_changes.jsonl          the owner's change log, one JSON line per change
 *   <root>/<owner>/_journal.json           write-ahead journal, two files used in turn (journal.ts);
 *   <root>/<owner>/_journal2.json          empty after a clean shutdown
 *
 * Every name becomes exactly one path segment through `encodeSegment`: characters
 * that are safe and readable in a file name pass through, everything else becomes
 * `%XX` per UTF-8 byte (like URL percent-encoding, uppercase hex). The encoding is
 * reversible and canonical: each name has one spelling on disk, so a directory
 * listing can be decoded back to ids, and files whose names are not a canonical
 * encoding (editor backups, `notes copy.json`) are simply not records.
 */

/** Characters kept as-is. `%` is not among them: it is the escape character. */
const SAFE_CHAR = /^[A-Za-z0-9_\-.~:@+=]$/;
/** Linux/macOS limit for one file name, in bytes. */
const MAX_NAME_BYTES = 255;
export const RECORD_SUFFIX = '.json';
/** Prefix of in-flight temporary files and directories; never a valid encoded name (leading '.' is escaped). */
export const TMP_PREFIX = '.tmp-';
export const TRASH_PREFIX = '.trash-';
export const CHANGES_FILE = '_changes.jsonl';
export const JOURNAL_FILE = '_journal.json';
export const JOURNAL_FILE_2 = '_journal2.json';
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * 'id' names live in a table directory next to nothing but temp files (which start
 * with '.'). 'dir' names (owners, tables) share their parent with our `_changes.jsonl`
 * and `_journal.json`, so a leading '_' is escaped too, reserving `_*` for the store.
 */
export type SegmentKind = 'id' | 'dir';

function bad(message: string): FreeholdError {
  return new FreeholdError('bad_request', message);
}

function escapeChar(ch: string): string {
  let out = '';
  for (const byte of Buffer.from(ch, 'utf8')) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

export function encodeSegment(name: string, kind: SegmentKind): string {
  if (typeof name !== 'string' || name.length === 0) throw bad(`Invalid ${kind === 'id' ? 'record id' : 'name'}: empty`);
  // NUL is refused everywhere. Owners and tables never hold a path separator, so one there
  // is refused; ids may (a file record's id is its path, a grant's is `<app>/<name>`), and
  // are escaped like any other character (`%2F`), so the name is still one segment.
  if (name.includes('\0') || (kind === 'dir' && /[/\\]/.test(name))) {
    throw bad(`Invalid name ${JSON.stringify(name)}: NUL${kind === 'dir' ? ', "/" and "\\"' : ''} not allowed`);
  }
  // A lone surrogate has no UTF-8 form, so it could not round-trip.
  if (LONE_SURROGATE.test(name)) throw bad('Invalid name: unpaired surrogate');
  let out = '';
  let i = 0;
  for (const ch of name) {
    const leading = i === 0 && (ch === '.' || (kind === 'dir' && ch === '_'));
    out += SAFE_CHAR.test(ch) && !leading ? ch : escapeChar(ch);
    i++;
  }
  const budget = MAX_NAME_BYTES - (kind === 'id' ? RECORD_SUFFIX.length : 0);
  if (Buffer.byteLength(out) > budget) throw bad(`Name too long for the flat-file store (${budget} bytes once encoded)`);
  return out;
}

/** The name a segment encodes, or null if it is not the canonical encoding of any name. */
export function decodeSegment(segment: string, kind: SegmentKind): string | null {
  if (segment.length === 0) return null;
  let name: string;
  try {
    // decodeURIComponent is strict about malformed %XX and invalid UTF-8, which is what we want.
    name = decodeURIComponent(segment);
  } catch {
    return null;
  }
  try {
    return encodeSegment(name, kind) === segment ? name : null;
  } catch {
    return null;
  }
}

/** Record id from a file name in a table directory, or null if the file is not a record. */
export function idFromFileName(file: string): string | null {
  if (!file.endsWith(RECORD_SUFFIX)) return null;
  return decodeSegment(file.slice(0, -RECORD_SUFFIX.length), 'id');
}

/** Table folders remembered by FlatFilePaths; past this many the memory starts afresh. */
const MAX_REMEMBERED_TABLES = 4096;

export class FlatFilePaths {
  readonly root: string;
  /**
   * Table folder by owner and table (NUL between them, which no valid name holds):
   * a write computes its record's path five times or so, and encoding and joining
   * the owner and table each time was ~9% of the event loop's time in the flat-file
   * write row. Only names that encoded without error are remembered.
   */
  private readonly tables = new Map<string, string>();

  constructor(root: string) {
    this.root = resolve(root);
  }

  owner(owner: string): string {
    return this.inside(join(this.root, encodeSegment(owner, 'dir')));
  }

  table(owner: string, table: string): string {
    const key = owner + '\0' + table;
    let dir = this.tables.get(key);
    if (dir === undefined) {
      dir = this.inside(join(this.owner(owner), encodeSegment(table, 'dir')));
      if (this.tables.size >= MAX_REMEMBERED_TABLES) this.tables.clear();
      this.tables.set(key, dir);
    }
    return dir;
  }

  /** The table folder plus one segment: an encoded id holds no separator and never starts with '.', so no join is needed. */
  record(owner: string, table: string, id: string): string {
    return this.inside(this.table(owner, table) + sep + encodeSegment(id, 'id') + RECORD_SUFFIX);
  }

  changes(owner: string): string {
    return join(this.owner(owner), CHANGES_FILE);
  }

  journal(owner: string): string {
    return join(this.owner(owner), JOURNAL_FILE);
  }

  /** Both journal files: units append to one while the other is being checkpointed (journal.ts). */
  journals(owner: string): [string, string] {
    return [join(this.owner(owner), JOURNAL_FILE), join(this.owner(owner), JOURNAL_FILE_2)];
  }

  /** Belt and braces: the encoding already makes escaping impossible; this proves it per call. */
  private inside(path: string): string {
    const base = this.root.endsWith(sep) ? this.root : this.root + sep;
    if (!path.startsWith(base)) throw bad('Path escapes the flat-file root');
    return path;
  }
}
