import { normaliseUserFilePath } from '../files/paths.js';
import { PERMISSION_NAME } from '../apps/manifest.js';
import { relPathProblem } from '../apps/paths.js';
import { FreeholdError } from '../errors.js';
import { assertRecordId, filesTableApp, isReservedAppName, isValidAppName, parseAppTable } from '../names.js';
import { OwnerTable } from '../system-tables.js';
import { Entry } from './export.js';

/**
 * What each entry of an export archive is (docs/export-format.md), and the names it
 * may carry: tables, record ids, app and file paths. Import (import.ts) refuses an
 * archive at its first bad name, with an error naming the entry.
 */

/** The fs BlobStore's key limit; a longer key would fail in the middle of the write pass. */
const MAX_KEY_LENGTH = 1024;

/** A refused archive: the message names the entry, `details` repeats it for programs. */
export function invalid(entry: string | null, problem: string): FreeholdError {
  const where = entry === null ? '' : `${JSON.stringify(entry.slice(0, 200))}: `;
  return new FreeholdError('invalid_package', `The archive is invalid: ${where}${problem}`, { entry, problem });
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const TABLE_CHARS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const INTERNAL_TABLE = /^system\.[a-z0-9][a-z0-9_-]{0,63}$/;
/** Collections that apps may not create but the server keeps per app (`<app>.files`, …). */
const SERVER_COLLECTIONS = new Set(['files', 'jobs', 'field_permissions', 'accessible_objects']);

/**
 * Tables an owner can have: app tables (CEPS.md §2), the server's per-app tables
 * (`<app>.files`), the CEPS system tables (`dev.ceps.*`) and the owner's internal
 * `system.*` tables (OwnerTable; future ones included, so that an archive from a
 * newer server still imports).
 */
export function tableNameProblem(table: string): string | null {
  if (!TABLE_CHARS.test(table) || table.includes('..') || table.endsWith('.')) return 'not a valid table name';
  if (table.startsWith('system')) return INTERNAL_TABLE.test(table) ? null : 'not a valid internal table name';
  const dot = table.lastIndexOf('.');
  if (dot > 0 && SERVER_COLLECTIONS.has(table.slice(dot + 1)) && isValidAppName(table.slice(0, dot))) return null;
  try {
    parseAppTable(table);
    return null;
  } catch (err) {
    return messageOf(err);
  }
}

export function recordIdProblem(table: string, id: string): string | null {
  if (table === OwnerTable.apps) return isValidAppName(id) ? null : 'is not a valid app name';
  if (table === OwnerTable.permissions) {
    // A grant's id is `<app>/<permission name>` (PermissionService).
    const slash = id.indexOf('/');
    return slash > 0 && isValidAppName(id.slice(0, slash)) && PERMISSION_NAME.test(id.slice(slash + 1))
      ? null : 'is not a valid grant id (<app>/<permission name>)';
  }
  if (filesTableApp(table) !== null) {
    // A file record's id is the file's path inside the app's file space.
    try {
      return normaliseUserFilePath(id) === id ? null : 'is not a canonical file path';
    } catch {
      return 'is not a valid file path';
    }
  }
  try {
    assertRecordId(id);
    return null;
  } catch {
    return 'is not a valid record id';
  }
}

export type Kind =
  | { kind: 'table'; table: string }
  | { kind: 'file'; app: string; path: string }
  | { kind: 'app'; app: string; path: string }
  | { kind: 'side'; name: string };

export const SIDE_ENTRIES: readonly string[] = [Entry.permissions, Entry.contacts, Entry.messages];

/** What an entry is, or a FreeholdError saying why it cannot be in an archive. */
export function classify(name: string, owner: string): Kind {
  if (SIDE_ENTRIES.includes(name)) return { kind: 'side', name };
  if (name.startsWith(Entry.tablesDir) && name.endsWith(Entry.tableSuffix)) {
    const table = name.slice(Entry.tablesDir.length, -Entry.tableSuffix.length);
    const problem = tableNameProblem(table);
    if (problem) throw invalid(name, `bad table name ${JSON.stringify(table)}: ${problem}`);
    return { kind: 'table', table };
  }
  for (const [dir, kind] of [[Entry.filesDir, 'file'], [Entry.appsDir, 'app']] as const) {
    if (!name.startsWith(dir)) continue;
    const rest = name.slice(dir.length);
    const slash = rest.indexOf('/');
    const app = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? '' : rest.slice(slash + 1);
    if (!isValidAppName(app)) throw invalid(name, `${JSON.stringify(app)} is not a valid app name`);
    if (path === '') throw invalid(name, 'no file path after the app name');
    if (kind === 'file') {
      let canonical: string | null = null;
      try {
        canonical = normaliseUserFilePath(path);
      } catch {
        // reported below
      }
      if (canonical !== path) throw invalid(name, 'not a valid file path');
    } else {
      if (isReservedAppName(app)) throw invalid(name, `app name ${app} is reserved for the server`);
      const problem = relPathProblem(path);
      if (problem) throw invalid(name, problem);
    }
    const key = `${owner}/${kind === 'file' ? 'files' : 'apps'}/${app}/${kind === 'app' ? 'x'.repeat(24) + '/' : ''}${path}`;
    if (key.length > MAX_KEY_LENGTH) throw invalid(name, 'path too long to store');
    return { kind, app, path };
  }
  throw invalid(name, 'not an entry of the export format (expected tables/, files/, apps/ or a known file)');
}
