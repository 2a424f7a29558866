import { FreeholdError } from '../errors.js';
import { isReservedCollection, parseAppTable } from '../names.js';
import type { Condition } from '../../query/types.js';
import type { Access } from './access.js';

/**
 * Reaching another app's tables through permissions the owner granted (CEPS.md §1, §4:
 * "it can touch only its own app's tables unless a granted permission says otherwise").
 * An app declares in its manifest a permission naming the tables (`table_id`) and its
 * type; once the owner allows it, the app's token reaches those tables of the same owner:
 *
 * - `read_all`: reads and queries every record;
 * - `write_own`: adds records, and reads, changes and deletes the ones it added (kept in
 *   `_created_by_app`, which the server sets and nobody can change);
 * - `write_all`: reads, adds, changes and deletes any record.
 *
 * Grants are read fresh on every such request, so taking one back takes effect at once.
 * The table must belong to an app installed here: once that app is removed, its tables
 * (kept data, listed and deletable on the home page) are out of every grant's reach, so
 * nothing can be added to them unseen. Never through a grant: another app's server-kept
 * collections (`files`, `jobs`, … in any case), the server's own tables (`dev.ceps.*`),
 * and other owners' data (sharing between people is a separate feature). FEPS restore
 * (records with dates the client chooses) stays with the table's own app.
 */

/** A permission as the grant check needs it. */
export interface TableGrant {
  type: string;
  table_id: readonly string[];
  granted: boolean;
}

/** What the grant check reads: an app's permissions with the owner's decisions, and which apps are installed. */
export interface GrantLookup {
  /** The permissions `appName` declares, with the owner's decision on each (PermissionService.list). */
  grantsOf(ownerId: string, appName: string): Promise<readonly TableGrant[]>;
  installedApps(ownerId: string): Promise<readonly string[]>;
}

/** What a request does to a table: read or query; add a record; change or delete records. */
export type TableOp = 'read' | 'create' | 'change';

export interface GrantedReach {
  table: string;
  /** Only records this app added (write_own); absent: every record. */
  addedBy?: string;
  /** write_all is not granted: ids of the app's choosing are refused (RecordService). */
  serverIdsOnly: boolean;
}

const READS = new Set(['read_all', 'write_all']);
const CREATES = new Set(['write_own', 'write_all']);

/** What `access` may do in another app's `table` of its owner, by the owner's grants; throws 403 when nothing. */
export async function grantedReach(lookup: GrantLookup, access: Access, table: string, op: TableOp): Promise<GrantedReach> {
  const refused = (why = '') => new FreeholdError('forbidden', `This app's token cannot reach table ${table}${why}`);
  const parsed = parseAppTable(table);
  if (parsed.table.startsWith('dev.ceps.')) throw refused();
  // The installed app the table belongs to (the longest name that is the table or a prefix of it).
  const owning = (await lookup.installedApps(access.ownerId))
    .filter((app) => parsed.table === app || parsed.table.startsWith(`${app}.`))
    .sort((a, b) => b.length - a.length)[0];
  if (owning === undefined) throw refused(': no app installed here keeps it');
  if (parsed.table !== owning && isReservedCollection(parsed.table.slice(owning.length + 1))) throw refused();
  const types = new Set((await lookup.grantsOf(access.ownerId, access.appName))
    .filter((p) => p.granted && p.table_id.includes(parsed.table)).map((p) => p.type));
  const all = op === 'read' ? [...types].some((t) => READS.has(t)) : op === 'create' ? [...types].some((t) => CREATES.has(t)) : types.has('write_all');
  const serverIdsOnly = !types.has('write_all');
  if (all) return { table: parsed.table, serverIdsOnly };
  if (types.has('write_own')) return { table: parsed.table, addedBy: access.appName, serverIdsOnly };
  throw refused();
}

/** `where`, narrowed to the records `addedBy` added when a write_own grant is all there is. */
export function onlyAdded(where: Condition, addedBy: string | undefined): Condition {
  if (addedBy === undefined) return where;
  const mine: Condition = { op: 'eq', path: ['_created_by_app'], value: addedBy };
  return where.op === 'true' ? mine : { op: 'and', items: [where, mine] };
}
