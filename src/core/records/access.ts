import { FreeholdError } from '../errors.js';
import { parseAppTable, type AppTable } from '../names.js';

/** Who is asking, for whose data, through which app: what a token carries. */
export interface Access {
  userId: string;
  ownerId: string;
  appName: string;
}

/**
 * Decides whether an access may touch a table of its own app. Another app's tables are
 * reached only through permissions the owner granted (table-grants.ts, used by the record
 * service); everything else (files, the server's tables) stays the app's own.
 */
export function authorizeTable(access: Access, table: unknown, ownerId: string = access.ownerId, mode: 'read' | 'merge' | 'write' = 'write'): AppTable {
  const own = ownAppTable(access, table, ownerId, mode);
  if (own === null) throw new FreeholdError('forbidden', `This app's token cannot reach table ${String(table)}`);
  return own;
}

/** `table` when it is one of the access's own app's tables; null when it belongs to another app; throws for bad names. */
export function ownAppTable(access: Access, table: unknown, ownerId: string = access.ownerId, mode: 'read' | 'merge' | 'write' = 'write'): AppTable | null {
  // An app's file records (`<app>.files`) are made and replaced only by the upload routes;
  // the app reads them and merges fields of its own into them (freezr's updateFields on
  // 'files'), which cannot touch the server's `_` fields.
  const parsed = parseAppTable(table, access.appName, { allowFilesTable: mode !== 'write' });
  if (parsed.app !== access.appName) return null;
  if (ownerId !== access.ownerId) {
    // Another owner's records are visible only through grants; without one, the record "does not exist".
    throw new FreeholdError('not_found', 'No such record');
  }
  return parsed;
}
