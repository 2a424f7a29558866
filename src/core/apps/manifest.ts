import { FreeholdError } from '../errors.js';
import { assertAppName, isReservedCollection, parseAppTable } from '../names.js';
import { PATH_SEGMENT } from '../../query/validate.js';
import { parseJsonWithComments } from './json-comments.js';
import { relPathProblem } from './paths.js';

/**
 * An app's manifest, in one normalised shape whichever of freezr's two forms it
 * came from (CEPS.md §7):
 * - `manifest.json`: `identifier`, `display_name`, `version`, `description`, `pages`,
 *   `public_pages`, `app_tables`, `permissions` (an array).
 * - the older `app_config.json`: `meta` { app_name, app_display_name, app_version,
 *   app_description }, `pages`, `collections`, `permissions` (an object keyed by name).
 * Unknown keys are tolerated (apps carry notes for other servers); wrong types are not.
 */

export interface AppPage {
  title: string;
  htmlFile: string;
  cssFiles: string[];
  scriptFiles: string[];
  modules: string[];
}

export interface AppTableSpec {
  /** Each index is a list of dotted field paths (`['a.b', 'c']` is one compound index). */
  indexes: string[][];
}

export const PERMISSION_TYPES = [
  'share_records', 'message_records', 'read_all', 'write_own', 'write_all', 'upload_pages',
  // freehold's own: let an app's pages reach (connect-src) or load scripts from (script-src)
  // the https hosts the permission lists, once the owner grants it.
  'external_fetch', 'external_scripts',
] as const;
export type PermissionType = (typeof PERMISSION_TYPES)[number];

/** Permission types that name outside hosts (in `hosts`) instead of tables. */
export const HOST_PERMISSION_TYPES: ReadonlySet<PermissionType> = new Set(['external_fetch', 'external_scripts']);

/**
 * An outside host an app may ask for: an https origin, optionally `*.` for its
 * subdomains, no path. Strict on purpose: the value goes into a CSP header, so it can
 * never carry `;`, quotes, spaces or a scheme other than https.
 */
const EXTERNAL_HOST = /^https:\/\/(\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::\d{1,5})?$/;
const MAX_HOSTS = 20;

/** A declared permission, in CEPS.md §4's object shape (grant state is added by the service). */
export interface Permission {
  name: string;
  type: PermissionType;
  table_id: string[];
  description: string;
  requestor_app: string;
  return_fields?: string[];
  search_fields?: string[];
  /** external_fetch / external_scripts: the https origins asked for. */
  hosts?: string[];
}

export interface AppManifest {
  identifier: string;
  displayName: string;
  version: string;
  description: string;
  pages: Record<string, AppPage>;
  publicPages: Record<string, AppPage>;
  /** Keyed by full app table name (`<app>` or `<app>.<collection>`). */
  appTables: Record<string, AppTableSpec>;
  permissions: Permission[];
  /** Which file it was read from. */
  source: 'manifest.json' | 'app_config.json';
}

export interface ManifestFiles {
  manifestJson?: string;
  appConfigJson?: string;
}

export interface ParseManifestOptions {
  /** The app name the package is known by (e.g. an update of a named app); must match. */
  expectedName?: string;
  /** Paths in the package; when given, every file a page names must be among them. */
  files?: ReadonlySet<string>;
}

/** freezr's older permission type names, mapped to the CEPS type they meant. */
const LEGACY_PERMISSION_TYPES: Record<string, PermissionType> = {
  object_delegate: 'share_records',
  db_query: 'read_all',
};

const MAX_MANIFEST_CHARS = 256 * 1024;
const MAX_PAGES = 200;
const MAX_TABLES = 200;
const MAX_PERMISSIONS = 200;
const MAX_INDEXES_PER_TABLE = 16;
/** The most fields one index may have; the sqlite backend has the same cap. */
const MAX_INDEX_FIELDS = 8;
const MAX_TEXT = 4000;
/** Real manifests nest a handful of levels (permissions → table_id → names). */
const MAX_MANIFEST_DEPTH = 32;
const PAGE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
export const PERMISSION_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

type Json = Record<string, unknown>;

/**
 * Collects every problem with its JSON path instead of stopping at the first, and the
 * warnings: what freezr tolerates in a manifest (and so real apps carry) is installed
 * without it, and said.
 */
class Problems {
  readonly list: string[] = [];
  readonly warnings: string[] = [];
  add(path: string, what: string): void {
    if (this.list.length < 200) this.list.push(`${path}: ${what}`);
  }
  warn(path: string, what: string): void {
    if (this.warnings.length < 200) this.warnings.push(`${path}: ${what}`);
  }
}

const joinPath = (path: string, key: string): string => (path ? `${path}.${key}` : key);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function optString(obj: Json, key: string, path: string, p: Problems, max = MAX_TEXT): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    p.add(joinPath(path, key), `must be a string, not ${typeName(v)}`);
    return undefined;
  }
  if (v.length > max) {
    p.add(joinPath(path, key), `is longer than ${max} characters`);
    return undefined;
  }
  return v;
}

/** freezr accepts one string where a list is expected (`"css_files": "index.css"`). */
function stringList(obj: Json, key: string, path: string, p: Problems): string[] {
  const v = obj[key];
  if (v === undefined || v === null || v === '') return [];
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) {
    p.add(joinPath(path, key), `must be a string or an array of strings, not ${typeName(v)}`);
    return [];
  }
  const out: string[] = [];
  v.forEach((item, i) => {
    if (typeof item !== 'string') p.add(`${joinPath(path, key)}[${i}]`, `must be a string, not ${typeName(item)}`);
    else out.push(item);
  });
  if (out.length > 100) p.add(joinPath(path, key), 'lists more than 100 entries');
  return out;
}

/** freezr's `./index.js` is `index.js`. */
const withoutDotSlash = (value: string): string => value.replace(/^(?:\.\/)+/, '');

function filePath(value: string, path: string, p: Problems, files: ReadonlySet<string> | undefined, folder = ''): string {
  const file = folder + withoutDotSlash(value);
  const problem = relPathProblem(file);
  if (problem) p.add(path, `${problem}: ${JSON.stringify(value.slice(0, 100))}`);
  else if (files && !files.has(file)) {
    // A public page's files sit in public/ (as in freezr): name the file looked for, not just the value.
    p.add(path, `no such file in the package: ${JSON.stringify(value)}${folder ? ` (looked for ${JSON.stringify(file)}: a public page's files go in the package's ${folder} folder)` : ''}`);
  }
  return file;
}

/**
 * A stylesheet or script a page loads. freezr passes addresses (`/app/…`, `https://…`)
 * through and leaves missing files to fail at run time; here they are left out of the
 * page, with a warning: an address elsewhere would be refused by the page's CSP (or
 * is another server's path), and a missing file would only be a 404. A path that
 * tries to leave the app is still refused.
 */
function assetPath(value: string, path: string, p: Problems, files: ReadonlySet<string> | undefined, folder = ''): string | null {
  if (/^(?:[a-z][a-z0-9+.-]*:|\/)/i.test(value) && !/^[A-Za-z]:/.test(value)) {
    p.warn(path, `not a file of the app, left out of the page: ${JSON.stringify(value.slice(0, 100))}`);
    return null;
  }
  const file = folder + withoutDotSlash(value);
  const problem = relPathProblem(file);
  if (problem) {
    p.add(path, `${problem}: ${JSON.stringify(value.slice(0, 100))}`);
    return null;
  }
  if (files && !files.has(file)) {
    p.warn(path, `no such file in the package, left out of the page: ${JSON.stringify(value)}`);
    return null;
  }
  return file;
}

/**
 * `folder`: where the pages' files are, inside the package: public pages' are in
 * `public/`, as freezr keeps them (`html_file: "post.html"` is `public/post.html`).
 */
function parsePages(raw: unknown, path: string, fallbackTitle: string, p: Problems, files?: ReadonlySet<string>, folder = ''): Record<string, AppPage> {
  const pages: Record<string, AppPage> = {};
  if (raw === undefined || raw === null) return pages;
  if (!isObject(raw)) {
    p.add(path, `must be an object of pages, not ${typeName(raw)}`);
    return pages;
  }
  const names = Object.keys(raw);
  if (names.length > MAX_PAGES) p.add(path, `declares more than ${MAX_PAGES} pages`);
  for (const name of names.slice(0, MAX_PAGES)) {
    const at = `${path}.${name}`;
    // Page names are URL segments (/apps/<app>/<page>), so they stay plain; and never a name
    // every object already has (`__proto__`, `constructor`), which would not be a page of its own.
    if (!PAGE_NAME.test(name)) p.add(at, 'page names use A-Z a-z 0-9 _ - (at most 64)');
    else if (name in Object.prototype) p.add(at, `${JSON.stringify(name)} cannot be a page name`);
    const page = raw[name];
    if (!isObject(page)) {
      p.add(at, `must be an object, not ${typeName(page)}`);
      continue;
    }
    const html = page.html_file;
    let htmlFile = '';
    if (typeof html !== 'string' || html === '') p.add(`${at}.html_file`, 'is required and must be a file path');
    else htmlFile = filePath(html, `${at}.html_file`, p, files, folder);
    const list = (key: string) => stringList(page, key, at, p)
      .map((f, i) => assetPath(f, `${at}.${key}[${i}]`, p, files, folder))
      .filter((f): f is string => f !== null);
    pages[name] = {
      title: optString(page, 'page_title', at, p, 200) ?? fallbackTitle,
      htmlFile,
      cssFiles: list('css_files'),
      scriptFiles: list('script_files'),
      modules: list('modules'),
    };
  }
  return pages;
}

/** A table key may be the full table name or just the collection (`posts` → `<app>.posts`). */
function tableName(app: string, key: string): string {
  return key === app || key.startsWith(app + '.') ? key : `${app}.${key}`;
}

function checkTable(app: string, table: string, path: string, p: Problems): boolean {
  try {
    const parsed = parseAppTable(table, app);
    if (parsed.app !== app) {
      p.add(path, `table ${table} does not belong to ${app}`);
      return false;
    }
    return true;
  } catch (err) {
    p.add(path, (err as Error).message);
    return false;
  }
}

function parseIndexes(raw: unknown, path: string, p: Problems): string[][] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    p.add(path, `must be an array of indexes, not ${typeName(raw)}`);
    return [];
  }
  if (raw.length > MAX_INDEXES_PER_TABLE) p.add(path, `declares more than ${MAX_INDEXES_PER_TABLE} indexes`);
  const out: string[][] = [];
  raw.slice(0, MAX_INDEXES_PER_TABLE).forEach((index, i) => {
    const at = `${path}[${i}]`;
    // One string is a one-field index; an array of strings is a compound index.
    const fields = typeof index === 'string' ? [index] : index;
    if (!Array.isArray(fields) || fields.length === 0 || fields.length > MAX_INDEX_FIELDS) {
      p.add(at, `must be a field path or an array of 1 to ${MAX_INDEX_FIELDS} field paths`);
      return;
    }
    const good: string[] = [];
    fields.forEach((field: unknown, j: number) => {
      const segs = typeof field === 'string' ? field.split('.') : [];
      if (segs.length === 0 || segs.length > 32 || !segs.every((s) => PATH_SEGMENT.test(s))) {
        p.add(typeof index === 'string' ? at : `${at}[${j}]`, `is not a field path (names joined by dots, without quotes, backslashes or control characters): ${JSON.stringify(field)}`);
      } else {
        good.push(field as string);
      }
    });
    if (good.length === fields.length) out.push(good);
  });
  return out;
}

function parseTables(app: string, raw: unknown, path: string, p: Problems): Record<string, AppTableSpec> {
  const tables: Record<string, AppTableSpec> = {};
  if (raw === undefined || raw === null) return tables;
  if (!isObject(raw)) {
    p.add(path, `must be an object keyed by table name, not ${typeName(raw)}`);
    return tables;
  }
  const keys = Object.keys(raw);
  if (keys.length > MAX_TABLES) p.add(path, `declares more than ${MAX_TABLES} tables`);
  for (const key of keys.slice(0, MAX_TABLES)) {
    const at = `${path}.${key}`;
    const spec = raw[key];
    if (!isObject(spec)) {
      p.add(at, `must be an object, not ${typeName(spec)}`);
      continue;
    }
    // A dotted name that is not the app's own reads as a collection `com.other.app`; say what it is.
    if (/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+){2,}$/.test(key) && key !== app && !key.startsWith(`${app}.`)) {
      p.add(at, `names another app's table: an app declares only its own tables (${app}, or ${app}.<collection> written as <collection>); it asks for another app's tables with a permission`);
      continue;
    }
    const table = tableName(app, key);
    if (!checkTable(app, table, at, p)) continue;
    tables[table] = { indexes: parseIndexes(spec.indexes, `${at}.indexes`, p) };
  }
  return tables;
}

/**
 * The permission's type, or null for a type this server does not offer: freezr has more
 * (`use_llm`, `use_mail`, …) for features of its own, and apps that declare them still
 * install there, so here they install too, without that permission, and with a warning.
 */
function permissionType(raw: unknown, path: string, p: Problems): PermissionType | null | undefined {
  if (typeof raw === 'string') {
    if ((PERMISSION_TYPES as readonly string[]).includes(raw)) return raw as PermissionType;
    if (LEGACY_PERMISSION_TYPES[raw]) return LEGACY_PERMISSION_TYPES[raw];
    if (/^[A-Za-z0-9_-]{1,64}$/.test(raw)) {
      p.warn(path, `${JSON.stringify(raw)} is not a permission type this server offers (${PERMISSION_TYPES.join(', ')}); the permission is left out`);
      return null;
    }
  }
  p.add(path, `must be one of ${PERMISSION_TYPES.join(', ')}; got ${JSON.stringify(typeof raw === 'string' ? raw.slice(0, 100) : raw)}`);
  return undefined;
}

/** Table ids a permission names: `table_id` (string or list), or app_config's `collection(s)` of `requestee_app`. */
function permissionTables(app: string, perm: Json, at: string, p: Problems): string[] {
  let tables: string[];
  if (perm.table_id !== undefined && perm.table_id !== null) {
    tables = stringList(perm, 'table_id', at, p);
  } else {
    const owner = typeof perm.requestee_app === 'string' && perm.requestee_app !== '' ? perm.requestee_app : app;
    // app_config.json spells it `collection_name` too (freezr's own apps do).
    const collections = [...stringList(perm, 'collection', at, p), ...stringList(perm, 'collections', at, p), ...stringList(perm, 'collection_name', at, p)];
    tables = collections.length ? collections.map((c) => tableName(owner, c)) : [owner];
  }
  const good: string[] = [];
  tables.forEach((t, i) => {
    try {
      good.push(parseAppTable(t).table);
    } catch (err) {
      p.add(`${at}.table_id[${i}]`, (err as Error).message);
    }
  });
  return good;
}

function externalHosts(perm: Json, at: string, p: Problems): string[] {
  const hosts = stringList(perm, 'hosts', at, p);
  if (hosts.length === 0) p.add(`${at}.hosts`, 'must list at least one https origin (https://api.example.com)');
  if (hosts.length > MAX_HOSTS) p.add(`${at}.hosts`, `lists more than ${MAX_HOSTS} hosts`);
  hosts.forEach((h, i) => {
    if (!EXTERNAL_HOST.test(h)) p.add(`${at}.hosts[${i}]`, `must be an https origin such as https://api.example.com (lowercase, no path): ${JSON.stringify(h.slice(0, 100))}`);
  });
  return hosts;
}

/** Permission types that open another app's tables as a whole (core/records/table-grants.ts). */
const TABLE_GRANT_TYPES: ReadonlySet<string> = new Set(['read_all', 'write_own', 'write_all']);

function parsePermission(app: string, name: string, perm: unknown, at: string, p: Problems): Permission | undefined {
  if (!isObject(perm)) {
    p.add(at, `must be an object, not ${typeName(perm)}`);
    return undefined;
  }
  if (!PERMISSION_NAME.test(name)) p.add(`${at}.name`, 'is required: A-Z a-z 0-9 _ . - (at most 100)');
  const type = permissionType(perm.type, `${at}.type`, p);
  if (type === null) return undefined;
  const table_id = permissionTables(app, perm, at, p);
  if (type && TABLE_GRANT_TYPES.has(type)) {
    // Installed as freezr would, but said: the owner would otherwise be offered a permission that does nothing.
    for (const t of table_id) {
      if (t === app || t.startsWith(`${app}.`)) continue;
      if (t.startsWith('dev.ceps.') || isReservedCollection(t.slice(t.lastIndexOf('.') + 1))) {
        p.warn(`${at}.table_id`, `${t} is kept by the server (another app's files, or a collection such as jobs): no grant reaches it, so allowing this permission will not give access to it`);
      }
    }
  }
  const requestor = optString(perm, 'requestor_app', at, p, 35) ?? app;
  if (requestor !== app) p.add(`${at}.requestor_app`, `must be the app itself (${app})`);
  const out: Permission = {
    name, type: type ?? 'read_all', table_id, description: optString(perm, 'description', at, p) ?? '', requestor_app: app,
  };
  if (perm.return_fields !== undefined && perm.return_fields !== null) out.return_fields = stringList(perm, 'return_fields', at, p);
  if (perm.search_fields !== undefined && perm.search_fields !== null) out.search_fields = stringList(perm, 'search_fields', at, p);
  if (type && HOST_PERMISSION_TYPES.has(type)) out.hosts = externalHosts(perm, at, p);
  return type ? out : undefined;
}

function parsePermissions(app: string, raw: unknown, path: string, p: Problems): Permission[] {
  if (raw === undefined || raw === null) return [];
  // manifest.json lists permissions; app_config.json keys them by name.
  const entries: Array<[string, unknown, string]> = Array.isArray(raw)
    ? raw.map((perm, i) => [isObject(perm) && typeof perm.name === 'string' ? perm.name : '', perm, `${path}[${i}]`])
    : isObject(raw) ? Object.entries(raw).map(([name, perm]) => [name, perm, `${path}.${name}`])
    : [];
  if (!Array.isArray(raw) && !isObject(raw)) p.add(path, `must be an array of permissions, not ${typeName(raw)}`);
  if (entries.length > MAX_PERMISSIONS) p.add(path, `declares more than ${MAX_PERMISSIONS} permissions`);
  const seen = new Set<string>();
  const out: Permission[] = [];
  for (const [name, perm, at] of entries.slice(0, MAX_PERMISSIONS)) {
    if (seen.has(name)) p.add(at, `repeats the permission name ${JSON.stringify(name)}`);
    seen.add(name);
    const parsed = parsePermission(app, name, perm, at, p);
    if (parsed) out.push(parsed);
  }
  return out;
}

function parseJson(text: string, file: string, p: Problems): Json | undefined {
  if (text.length > MAX_MANIFEST_CHARS) {
    p.add(file, `is larger than ${MAX_MANIFEST_CHARS / 1024} KB`);
    return undefined;
  }
  let value: unknown;
  try {
    value = parseJsonWithComments(text);
  } catch (err) {
    p.add(file, `is not valid JSON (${(err as Error).message.slice(0, 200)})`);
    return undefined;
  }
  if (!isObject(value)) {
    p.add(file, `must hold a JSON object, not ${typeName(value)}`);
    return undefined;
  }
  if (nestedDeeperThan(value, MAX_MANIFEST_DEPTH)) {
    // The raw manifest is stored with the app: too deep for the stores' JSON (and JSON.stringify's stack).
    p.add(file, `is nested more than ${MAX_MANIFEST_DEPTH} levels deep`);
    return undefined;
  }
  return value;
}

/** Iterative, so that the inputs it refuses cannot overflow the stack while it looks. */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 1 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (depth > max) return true;
    for (const child of Object.values(v as object)) if (child !== null && typeof child === 'object') stack.push({ v: child, depth: depth + 1 });
  }
  return false;
}

function checkName(name: unknown, path: string, expected: string | undefined, p: Problems): string {
  if (typeof name !== 'string' || name === '') {
    p.add(path, 'the app name is required');
    return '';
  }
  try {
    assertAppName(name, true);
  } catch (err) {
    // Apps written for freezr may carry its own names (info.freezr.*) or longer ones: say the way out.
    p.add(path, `${(err as Error).message}. To install it here, give the app a name of its own in its manifest (e.g. com.<you>.<app>)`);
  }
  if (expected !== undefined && name !== expected) p.add(path, `names ${name}, but the package is for ${expected}`);
  return name;
}

function versionOf(v: unknown, path: string, p: Problems): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && v.length <= 100) return v;
  p.add(path, 'must be a string of at most 100 characters');
  return '';
}

/**
 * Reads and validates an app manifest, preferring `manifest.json` when a package has
 * both. Throws FreeholdError('invalid_manifest') listing every problem found; what it
 * left out instead of refusing (Problems says what) comes back as `warnings`.
 * `raw` is the JSON as the app wrote it (freezr clients read their own manifest back).
 */
export function parseManifest(files: ManifestFiles, opts: ParseManifestOptions = {}): { manifest: AppManifest; raw: Record<string, unknown>; warnings: string[] } {
  const p = new Problems();
  const source = files.manifestJson !== undefined ? 'manifest.json' : files.appConfigJson !== undefined ? 'app_config.json' : null;
  if (source === null) {
    throw new FreeholdError('invalid_manifest', 'App manifest is invalid', ['manifest.json: the package has no manifest.json (or app_config.json)']);
  }
  const json = parseJson(source === 'manifest.json' ? files.manifestJson! : files.appConfigJson!, source, p);
  if (!json) throw new FreeholdError('invalid_manifest', 'App manifest is invalid', p.list);

  let identifier: string;
  let displayName: string | undefined;
  let version: string;
  let description: string | undefined;
  let tablesRaw: unknown;
  let tablesPath: string;
  if (source === 'manifest.json') {
    identifier = checkName(json.identifier, 'identifier', opts.expectedName, p);
    displayName = optString(json, 'display_name', '', p, 200);
    version = versionOf(json.version, 'version', p);
    description = optString(json, 'description', '', p);
    tablesRaw = json.app_tables;
    tablesPath = 'app_tables';
  } else {
    const meta = isObject(json.meta) ? json.meta : {};
    if (!isObject(json.meta)) p.add('meta', `must be an object, not ${typeName(json.meta)}`);
    identifier = checkName(meta.app_name, 'meta.app_name', opts.expectedName, p);
    displayName = optString(meta, 'app_display_name', 'meta', p, 200);
    version = versionOf(meta.app_version, 'meta.app_version', p);
    description = optString(meta, 'app_description', 'meta', p);
    tablesRaw = json.collections ?? json.app_tables;
    tablesPath = json.collections !== undefined ? 'collections' : 'app_tables';
  }
  const name = identifier || 'app';
  const title = displayName || name;
  const manifest: AppManifest = {
    identifier,
    displayName: title,
    version,
    description: description ?? '',
    pages: parsePages(json.pages, 'pages', title, p, opts.files),
    publicPages: parsePages(json.public_pages, 'public_pages', title, p, opts.files, 'public/'),
    appTables: parseTables(name, tablesRaw, tablesPath, p),
    permissions: parsePermissions(name, json.permissions, 'permissions', p),
    source,
  };
  if (p.list.length > 0) throw new FreeholdError('invalid_manifest', 'App manifest is invalid', p.list);
  return { manifest, raw: json, warnings: p.warnings };
}
