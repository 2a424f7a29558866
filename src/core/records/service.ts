import type { StoreRegistry } from '../../storage/registry.js';
import type { StoredRecord } from '../../storage/types.js';
import { getRecordJson, queryRecordsJson } from '../../storage/record-json.js';
import type { Condition, Query } from '../../query/types.js';
import { FreeholdError } from '../errors.js';
import { newRecordId } from '../ids.js';
import { normaliseUserFilePath } from '../files/paths.js';
import { assertRecordId, filesTableApp } from '../names.js';
import { authorizeTable, ownAppTable, type Access } from './access.js';
import { grantedReach, onlyAdded, type GrantLookup, type TableOp } from './table-grants.js';
import { checkPartialUpdate, hasFieldPaths, mergeFields } from './merge.js';
import { assertRecordSize, cleanClientRecord, MAX_RECORD_BYTES, RESERVED_FIELDS, type ClientFields } from './reserved.js';

export interface WriteResult {
  _id: string;
  _date_created: number;
  _date_modified: number;
}

/** A date strictly after the previous one, even when the clock stands still or steps back. */
function nextModified(previous: number, now = Date.now()): number {
  return Math.max(now, previous + 1);
}

function datesOf(r: StoredRecord): WriteResult {
  return { _id: r._id, _date_created: r._date_created, _date_modified: r._date_modified };
}

/** The reserved fields a CEPS update keeps from the stored record, besides the id and dates it sets itself. */
const KEPT_ON_REPLACE: readonly string[] = [...RESERVED_FIELDS].filter((k) => k !== '_id' && k !== '_date_created' && k !== '_date_modified');

/** Client fields with the reserved ones from the stored record put back. */
function withReserved(fields: ClientFields, stored: StoredRecord, modified: number): StoredRecord {
  const out: StoredRecord = { ...fields, _id: stored._id, _date_created: stored._date_created, _date_modified: modified };
  for (const key of RESERVED_FIELDS) {
    if (key in stored && !(key in out)) out[key] = stored[key];
  }
  return out;
}

/**
 * CEPS and FEPS record semantics over the owner's RecordStore: reserved fields,
 * strictly increasing modification dates, no upsert through update, access checks.
 */
/**
 * An id a read may name. A file record's id is the file's path (`pics/dot.png`, the
 * upload's folder and name), which ordinary record ids cannot hold; in an app's
 * `files` table (apps read it and merge their own fields in) it is checked as a path instead.
 */
function readableId(table: string, id: string): string {
  if (filesTableApp(table) === null) return assertRecordId(id);
  let path: string;
  try {
    path = normaliseUserFilePath(id);
  } catch {
    throw new FreeholdError('invalid_name', 'Invalid record id');
  }
  if (path !== id) throw new FreeholdError('invalid_name', 'Invalid record id: not a canonical file path');
  return id;
}

/** Where a request may act: a table, and whether it is limited to the records its app added (write_own). */
interface Reach {
  /** The table belongs to another app, reached through a grant. */
  granted: boolean;
  addedBy?: string;
  /** Through a grant without write_all: records get their ids from the server. */
  serverIdsOnly?: boolean;
}

const OWN: Reach = { granted: false };

export class RecordService {
  /** `grants` tells which of an app's permissions its owner allowed; without it, apps reach only their own tables. */
  constructor(private readonly stores: StoreRegistry, private readonly grants?: GrantLookup) {}

  /**
   * What `access` may do in `table`: anything in its own app's tables (the common case,
   * decided without a lookup), else what the owner's grants allow (table-grants.ts).
   */
  private async reach(access: Access, table: string, op: TableOp, mode: 'read' | 'merge' | 'write', ownerId = access.ownerId): Promise<Reach> {
    if (ownAppTable(access, table, ownerId, mode) !== null) return OWN;
    // Grants reach another app's tables of the same owner only.
    const grants = ownerId === access.ownerId ? this.grants : undefined;
    if (!grants) throw new FreeholdError('forbidden', `This app's token cannot reach table ${table}`);
    const granted = await grantedReach(grants, access, table, op);
    return { granted: true, serverIdsOnly: granted.serverIdsOnly, ...(granted.addedBy ? { addedBy: granted.addedBy } : {}) };
  }

  /**
   * Through write_own alone, records get ids from the server: with an id of its choosing,
   * the answer (a conflict, or an upsert's 404 against a create) would tell the app which
   * ids exist among the records it may not see.
   */
  private refuseChosenIdUnderWriteOwn(reach: Reach, table: string): void {
    if (reach.serverIdsOnly) throw new FreeholdError('forbidden', `Records added to ${table} through a write_own permission get their ids from the server`);
  }

  /** For write_own: the record must be one the app added; any other "does not exist" for it. */
  private async assertAdded(reach: Reach, access: Access, table: string, id: string): Promise<void> {
    if (reach.addedBy === undefined) return;
    const stored = await this.stores.records(access.ownerId).get(access.ownerId, table, assertRecordId(id));
    if (stored?._created_by_app !== reach.addedBy) throw new FreeholdError('not_found', 'No such record');
  }

  /** CEPS write (server id) and FEPS write with a client id. */
  async create(access: Access, table: string, body: unknown, id?: string): Promise<WriteResult> {
    const reach = await this.reach(access, table, 'create', 'write');
    if (id !== undefined) this.refuseChosenIdUnderWriteOwn(reach, table);
    const fields = cleanClientRecord(body);
    const now = Date.now();
    const record: StoredRecord = { ...fields, _id: id === undefined ? newRecordId() : assertRecordId(id), _date_created: now, _date_modified: now };
    // Added to another app's table: who added it is kept, and decides what a write_own grant may touch later.
    if (reach.granted) Object.assign(record, { _created_by_app: access.appName, _created_by_user: access.userId });
    assertRecordSize(record);
    await this.stores.records(access.ownerId).create(access.ownerId, table, record);
    return datesOf(record);
  }

  async read(access: Access, table: string, id: string, ownerId = access.ownerId): Promise<StoredRecord> {
    return this.readReached(await this.reach(access, table, 'read', 'read', ownerId), ownerId, table, id);
  }

  /** The record, if it is there and `reach` shows it (write_own: only records its app added). */
  private async readReached(reach: Reach, ownerId: string, table: string, id: string): Promise<StoredRecord> {
    const record = await this.stores.records(ownerId).get(ownerId, table, readableId(table, id));
    if (!record || (reach.addedBy !== undefined && record._created_by_app !== reach.addedBy)) throw new FreeholdError('not_found', 'No such record');
    return record;
  }

  /**
   * `read`, and the CEPS query, as the JSON text the client receives, for routes that pass
   * records on untouched: stores that keep JSON text skip a parse and a re-serialise
   * per record (a third of a 50-record query's cost on SQLite).
   */
  async readJson(access: Access, table: string, id: string, ownerId = access.ownerId): Promise<string> {
    const reach = await this.reach(access, table, 'read', 'read', ownerId);
    if (reach.addedBy !== undefined) return JSON.stringify(await this.readReached(reach, ownerId, table, id));
    const json = await getRecordJson(this.stores.records(ownerId), ownerId, table, readableId(table, id));
    if (json === null) throw new FreeholdError('not_found', 'No such record');
    return json;
  }

  async queryJson(access: Access, table: string, query: Query, ownerId = access.ownerId): Promise<string> {
    const reach = await this.reach(access, table, 'read', 'read', ownerId);
    return queryRecordsJson(this.stores.records(ownerId), ownerId, table, onlyAdded(query.where, reach.addedBy), query.options);
  }

  /** CEPS update: replaces every non-reserved field. Never creates. */
  async replace(access: Access, table: string, id: string, body: unknown): Promise<WriteResult> {
    await this.assertAdded(await this.reach(access, table, 'change', 'write'), access, table, id);
    return this.rewrite(access, table, id, cleanClientRecord(body), false);
  }

  /** FEPS partial update: merges the given top-level fields into the record (file records too). */
  async updateFields(access: Access, table: string, id: string, body: unknown): Promise<WriteResult> {
    await this.assertAdded(await this.reach(access, table, 'change', 'merge'), access, table, id);
    return this.rewrite(access, table, id, cleanClientRecord(body), true);
  }

  /** FEPS write with `upsert`: replaces the record if it exists, else creates it with this id. */
  async upsert(access: Access, table: string, id: string, body: unknown, replaceAll: boolean): Promise<WriteResult> {
    const reach = await this.reach(access, table, 'create', 'write');
    // An upsert names its id: through write_own alone, refused whatever is there (see refuseChosenIdUnderWriteOwn).
    this.refuseChosenIdUnderWriteOwn(reach, table);
    const fields = cleanClientRecord(body);
    const store = this.stores.records(access.ownerId);
    const existing = await store.get(access.ownerId, table, assertRecordId(id));
    if (!existing) {
      try {
        // A partial upsert that creates sets its dotted keys as nested fields too, as `$set` with upsert does.
        if (!replaceAll) checkPartialUpdate(fields);
        return await this.create(access, table, replaceAll ? fields : mergeFields({}, fields), id);
      } catch (err) {
        // Someone created it between our read and our write: fall through to an update.
        if (!(err instanceof FreeholdError && err.code === 'conflict')) throw err;
      }
    }
    return this.rewrite(access, table, id, fields, !replaceAll);
  }

  /**
   * Writes `fields` over an existing record: in place of its client fields, or merged
   * into them. In one step where the store can (RecordStore.update: no read first, and
   * concurrent merges cannot lose each other's fields); else, or when that step
   * declines, by reading the record and replacing it, where a merge racing another
   * write of the same record can lose one of them.
   */
  private async rewrite(access: Access, table: string, id: string, fields: ClientFields, merge: boolean): Promise<WriteResult> {
    const store = this.stores.records(access.ownerId);
    // A file record's id is its path (only merges reach a files table: authorizeTable).
    const recordId = readableId(table, id);
    const modified = Date.now();
    if (merge) checkPartialUpdate(fields);
    const fileRecord = filesTableApp(table) !== null;
    // What RecordUpdate describes, in JS: for stores that apply it themselves, and for the general path below.
    const build = (old: StoredRecord): StoredRecord => {
      if (fileRecord) assertOwnFileFields(old, fields);
      return withReserved(merge ? mergeFields(stripReserved(old), fields) : fields, old, nextModified(old._date_modified, modified));
    };
    // Paths into nested fields are applied in JS, and file records are checked against
    // what they hold: `build` must run, which a store merging in SQL (PostgreSQL's
    // update) skips. Such a record is rebuilt under the store's write lock (updateWhere,
    // by id) rather than read and replaced, where concurrent merges lost each other.
    const buildOnly = merge && (hasFieldPaths(fields) || fileRecord);
    if (buildOnly && store.updateWhere) {
      let written: StoredRecord | null = null;
      const n = await store.updateWhere(access.ownerId, table, { op: 'eq', path: ['_id'], value: recordId }, 1, (old) => {
        const record = build(old);
        assertRecordSize(record);
        return (written = record);
      });
      if (n !== null) {
        if (n === 0 || written === null) throw new FreeholdError('not_found', 'No such record');
        return datesOf(written);
      }
    }
    if (store.update && !buildOnly) {
      const keep = merge ? 'all' : KEPT_ON_REPLACE;
      const dates = await store.update(access.ownerId, table, recordId, { fields, keep, modified, maxBytes: MAX_RECORD_BYTES, build });
      if (dates) return { _id: recordId, ...dates };
    }
    const old = await store.get(access.ownerId, table, recordId);
    if (!old) throw new FreeholdError('not_found', 'No such record');
    const record = build(old);
    assertRecordSize(record);
    if (!(await store.replace(access.ownerId, table, record))) throw new FreeholdError('not_found', 'No such record');
    return datesOf(record);
  }

  /**
   * FEPS update by query: merges `keys` into every matching record, all or none. In one
   * step where the store can (RecordStore.updateWhere); else by a query and then a batch,
   * where a write of a match between the two can be lost under the bulk update.
   */
  async updateWhere(access: Access, table: string, matching: Condition, keys: unknown): Promise<{ nModified: number }> {
    const where = onlyAdded(matching, (await this.reach(access, table, 'change', 'merge')).addedBy);
    const patch = cleanClientRecord(keys);
    checkPartialUpdate(patch);
    const fileRecords = filesTableApp(table) !== null;
    const store = this.stores.records(access.ownerId);
    const build = (old: StoredRecord): StoredRecord => {
      if (fileRecords) assertOwnFileFields(old, patch);
      const record = withReserved(mergeFields(stripReserved(old), patch), old, nextModified(old._date_modified));
      assertRecordSize(record);
      return record;
    };
    const done = store.updateWhere ? await store.updateWhere(access.ownerId, table, where, MAX_BULK, build) : null;
    if (done !== null) return { nModified: done };
    const matches = await store.query(access.ownerId, table, where, { sort: [], skip: 0, limit: MAX_BULK });
    const ops = matches.map((old) => ({ kind: 'put' as const, table, record: build(old) }));
    if (ops.length) await store.batch(access.ownerId, ops);
    return { nModified: ops.length };
  }

  async delete(access: Access, table: string, id: string): Promise<WriteResult & { success: true }> {
    await this.assertAdded(await this.reach(access, table, 'change', 'write'), access, table, id);
    const removed = await this.stores.records(access.ownerId).delete(access.ownerId, table, assertRecordId(id));
    if (!removed) throw new FreeholdError('not_found', 'No such record');
    return { ...datesOf(removed), success: true };
  }

  /** FEPS delete by query, all or none; in one step where the store can, as updateWhere. */
  async deleteWhere(access: Access, table: string, matching: Condition): Promise<{ success: true; deleted: number }> {
    const where = onlyAdded(matching, (await this.reach(access, table, 'change', 'write')).addedBy);
    const store = this.stores.records(access.ownerId);
    const done = store.deleteWhere ? await store.deleteWhere(access.ownerId, table, where, MAX_BULK) : null;
    if (done !== null) return { success: true, deleted: done };
    const matches = await store.query(access.ownerId, table, where, { sort: [], skip: 0, limit: MAX_BULK });
    if (matches.length) await store.batch(access.ownerId, matches.map((r) => ({ kind: 'delete' as const, table, id: r._id })));
    return { success: true, deleted: matches.length };
  }

  /**
   * FEPS restore: writes a record back with its own id and dates (from a backup the
   * app kept). Replaces a record with the same id.
   */
  async restore(access: Access, table: string, body: unknown): Promise<WriteResult> {
    authorizeTable(access, table);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new FreeholdError('invalid_record', 'The record must be a JSON object');
    }
    const input = body as Record<string, unknown>;
    const source = (input.record && typeof input.record === 'object' ? input.record : input) as Record<string, unknown>;
    const id = assertRecordId(source._id);
    const created = validDate(source._date_created) ?? Date.now();
    const modified = validDate(source._date_modified) ?? created;
    const fields = cleanClientRecord(source);
    const record: StoredRecord = { ...fields, _id: id, _date_created: created, _date_modified: Math.max(modified, created) };
    assertRecordSize(record);
    await this.stores.records(access.ownerId).put(access.ownerId, table, record);
    return datesOf(record);
  }
}

/** Bulk FEPS operations touch at most this many records in one call. */
export const MAX_BULK = 10000;

/**
 * A merge into a file record written before `_blob_id` (freezr-fields.ts) may not set
 * `blob_id`: there it still says where the file's bytes are, and the app would point
 * its file at other bytes. In newer records it is the app's own field like any other.
 */
function assertOwnFileFields(stored: StoredRecord, patch: ClientFields): void {
  if (stored._blob_id === undefined && Object.keys(patch).some((k) => k === 'blob_id' || k.startsWith('blob_id.'))) {
    throw new FreeholdError('invalid_record', 'blob_id is kept by the server in this file record (uploaded by an older version); upload the file again to use the name');
  }
}

function stripReserved(r: StoredRecord): ClientFields {
  const out: ClientFields = {};
  for (const [k, v] of Object.entries(r)) if (!RESERVED_FIELDS.has(k)) out[k] = v;
  return out;
}

function validDate(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 && v < 1e15 ? Math.floor(v) : undefined;
}
