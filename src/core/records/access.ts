import { FreeholdError } from '../errors.js';
import { parseAppTable, type AppTable } from '../names.js';

/** Who is asking, for whose data, through which app: what a token carries. */
export interface Access {
  userId: string;
  ownerId: string;
  appName: string;
}

/**
 * Decides whether an access may touch a table. Today an app reaches only its own
 * tables in its owner's store; granted permissions (sharing) will widen this here
 * and nowhere else.
 */
export function authorizeTable(access: Access, table: unknown, ownerId: string = access.ownerId, mode: 'read' | 'merge' | 'write' = 'write'): AppTable {
  // An app's file records (`<app>.files`) are made and replaced only by the upload routes;
  // the app reads them and merges fields of its own into them (freezr's updateFields on
  // 'files'), which cannot touch the server's `_` fields.
  const parsed = parseAppTable(table, access.appName, { allowFilesTable: mode !== 'write' });
  if (parsed.app !== access.appName) {
    throw new FreeholdError('forbidden', `This app's token cannot reach table ${parsed.table}`);
  }
  if (ownerId !== access.ownerId) {
    // Another owner's records are visible only through grants; without one, the record "does not exist".
    throw new FreeholdError('not_found', 'No such record');
  }
  return parsed;
}
