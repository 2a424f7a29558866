import { FreeholdError } from './errors.js';

/**
 * Name rules from CEPS.md §2. Every call validates the names it receives, not
 * just installation, so a table name is never trusted because it looked fine once.
 */

const APP_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?){2,}$/;
const COLLECTION = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const USER_ID = /^[a-z0-9-]{2,34}$/;
const RESERVED_APP_PREFIXES = ['info.freezr.', 'dev.ceps.'];
const RESERVED_COLLECTIONS = new Set(['files', 'jobs', 'field_permissions', 'accessible_objects']);
export const RESERVED_USER_IDS = new Set([
  'admin', 'public', 'system', 'test', 'freezr', 'account', 'self', 'group', 'root', 'freehold',
  'apps', 'app', 'api', 'ceps', 'feps', 'oauth', 'acctapi', 'www', 'null', 'undefined', 'anonymous',
  'everyone', 'owner', 'users', 'user', 'login', 'logout', 'setup', 'static',
]);

export function isValidAppName(name: string): boolean {
  return typeof name === 'string' && name.length <= 35 && APP_NAME.test(name);
}

/** Whether an installable (third-party) app may take this name. */
export function isReservedAppName(name: string): boolean {
  return RESERVED_APP_PREFIXES.some((p) => name.startsWith(p)) || name.toLowerCase().startsWith('system');
}

export function assertAppName(name: unknown, forInstall = false): string {
  if (typeof name !== 'string' || !isValidAppName(name)) {
    throw new FreeholdError('invalid_name', `Invalid app name: it must be reverse-domain (e.g. com.example.notes), at most 35 characters of A-Z a-z 0-9 . -`);
  }
  if (forInstall && isReservedAppName(name)) {
    throw new FreeholdError('invalid_name', `App name ${name} is reserved for the server`);
  }
  const parent = forInstall ? parentAppOf(name) : null;
  if (parent !== null && isReservedCollection(name.slice(parent.length + 1))) {
    // Its own table would be the server-kept table of app `parent` (its files, its jobs).
    throw new FreeholdError('invalid_name', `App name ${name} is reserved: it names a table the server keeps for ${parent}`);
  }
  return name;
}

export interface AppTable {
  /** The full table name, `<app>` or `<app>.<collection>`. */
  table: string;
  app: string;
  /** Empty for the app's default table. */
  collection: string;
}

/** Server-owned tables that apps may address (messages) are parsed with `allowSystem`. */
const SYSTEM_TABLES = new Set(['dev.ceps.messages.got', 'dev.ceps.messages.sent', 'dev.ceps.contacts']);

/**
 * Splits an app table name into app and collection. The app is identified by the
 * app the caller is acting for: `<app>.<collection>` when the name starts with it,
 * else the table must be the app itself. Without a known app, the last segment
 * is a collection only when removing it leaves a valid app name of 3+ segments.
 */
export function parseAppTable(table: unknown, forApp?: string, opts: { allowFilesTable?: boolean } = {}): AppTable {
  if (typeof table !== 'string' || table.length === 0 || table.length > 100) {
    throw new FreeholdError('invalid_name', 'Invalid app table name');
  }
  if (SYSTEM_TABLES.has(table)) {
    return { table, app: 'dev.ceps', collection: table.slice('dev.ceps.'.length) };
  }
  if (forApp !== undefined && (table === forApp || table.startsWith(forApp + '.'))) {
    const collection = table === forApp ? '' : table.slice(forApp.length + 1);
    // `<app>.` (an empty collection) is refused here too: it is not the app's default table.
    if (table !== forApp && !(opts.allowFilesTable && collection === 'files')) assertCollection(collection);
    return { table, app: forApp, collection };
  }
  if (isValidAppName(table)) {
    // Ambiguous without the installed-app list (`a.b.c.d` may be app `a.b.c` + collection `d`);
    // callers that authorise compare against the caller's app first, above.
    return { table, app: table, collection: '' };
  }
  const dot = table.lastIndexOf('.');
  const app = table.slice(0, dot);
  const collection = table.slice(dot + 1);
  if (dot < 0 || !isValidAppName(app)) {
    throw new FreeholdError('invalid_name', `Invalid app table name: ${truncate(table)}`);
  }
  assertCollection(collection);
  return { table, app, collection };
}

function assertCollection(collection: string): void {
  if (!COLLECTION.test(collection) || collection.length > 64) {
    throw new FreeholdError('invalid_name', 'Invalid collection name: use A-Z a-z 0-9 and -, not starting with -');
  }
  if (isReservedCollection(collection)) {
    throw new FreeholdError('invalid_name', `Collection name ${collection} is reserved`);
  }
}

/**
 * Whether `collection` is one the server keeps for itself (`files`, `jobs`, …), in any
 * case: on a file system that ignores case (flat files on macOS), `Files` would be the
 * directory of the app's `files` table.
 */
export function isReservedCollection(collection: string): boolean {
  return RESERVED_COLLECTIONS.has(collection.toLowerCase());
}

/**
 * The app whose collection an app's own default table would also name: `com.a.b` for
 * `com.a.b.c` (the table `com.a.b.c` is both). Null when the name minus its last
 * segment is not an app name (three segments or fewer).
 */
export function parentAppOf(app: string): string | null {
  const dot = app.lastIndexOf('.');
  const parent = dot < 0 ? '' : app.slice(0, dot);
  return isValidAppName(parent) ? parent : null;
}

/** Whether `table` is `app`'s default table or one of its collections (`<app>.<x>`, one segment more). */
export function isAppOwnTable(table: string, app: string): boolean {
  return table === app || (table.startsWith(app + '.') && !table.slice(app.length + 1).includes('.'));
}

/**
 * The app whose server-kept files table this is (`com.a.b` for `com.a.b.files`), or null.
 * By what precedes `.files`, not the ending alone: `com.zz.files` is an app's own table
 * (`com.zz` is no app).
 */
export function filesTableApp(table: string): string | null {
  if (!table.endsWith('.files')) return null;
  const app = table.slice(0, -'.files'.length);
  return isValidAppName(app) ? app : null;
}

export function isValidUserId(id: unknown): id is string {
  return typeof id === 'string' && USER_ID.test(id) && !id.startsWith('-') && !id.endsWith('-');
}

export function assertUserId(id: unknown, forCreate = false): string {
  if (!isValidUserId(id)) {
    throw new FreeholdError('invalid_name', 'Invalid user id: 2-34 characters of a-z 0-9 and -');
  }
  if (forCreate && RESERVED_USER_IDS.has(id)) {
    throw new FreeholdError('invalid_name', `User id ${id} is reserved`);
  }
  return id;
}

/** Characters an id keeps as they are in a file name (the flat-file store escapes the rest as %XX per byte). */
const PLAIN_ID_CHAR = /[A-Za-z0-9_\-.~:@+=]/;
/** Ids of only such characters (leading '.' aside), at most 200 of them, always fit. */
const PLAIN_ID = /^[A-Za-z0-9_\-~:@+=][A-Za-z0-9_\-.~:@+=]*$/;
/** The flat-file store's room for one id (a file name of 255 bytes less `.json`). */
const MAX_ENCODED_ID_BYTES = 250;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Ids that come from clients (FEPS write with an id, freezr's upserts). CEPS.md §2
 * refuses `..`, `%2e%2e`, NUL and control characters (C0, DEL, C1); freezr apps use ids such as
 * page addresses (`https://example.com/page 1`), so anything else is allowed, up to
 * 200 characters and as long as every backend can keep it: the flat-file store writes
 * the id as one file name, so its escaped form must fit in one (and a lone surrogate
 * has no UTF-8 form at all). Server-made ids are base64url.
 */
const badRecordId = (): FreeholdError => new FreeholdError('invalid_name', 'Invalid record id');

export function assertRecordId(id: unknown): string {
  const bad = badRecordId;
  if (typeof id !== 'string' || id.length === 0 || id.length > 200 || id === '.') throw bad();
  // Every read, update and delete checks its id: the usual ones (server-made) in one test.
  if (PLAIN_ID.test(id) && !id.includes('..')) return id;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(id) || id.includes('..') || /%2e%2e/i.test(id) || LONE_SURROGATE.test(id)) throw bad();
  // A leading '.' is escaped too (no hidden or dot files).
  let encoded = id.startsWith('.') ? 2 : 0;
  for (const ch of id) encoded += PLAIN_ID_CHAR.test(ch) ? 1 : 3 * Buffer.byteLength(ch);
  if (encoded > MAX_ENCODED_ID_BYTES) throw new FreeholdError('invalid_name', 'Invalid record id: too long once escaped for storage');
  return id;
}

function truncate(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}
