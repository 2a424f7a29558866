import type { BlobStore, RecordStore } from '../../storage/types.js';
import { newSecret } from '../ids.js';
import { SYSTEM_OWNER } from '../system-tables.js';

const PROBE_TABLE = 'system.store_probe';

/**
 * Whether two opened stores are one store under two addresses. Addresses cannot tell:
 * `sqlite:./data/x.db` and `sqlite:/srv/data/x.db`, `127.0.0.1` and `localhost`, a path
 * with `./` in it, a symlink. A migration that took one store for two would copy the
 * owner onto themself and then, on `--confirm`, delete "the old copy", which is the
 * only one (an audit lost an owner's records and files that way). So the question is
 * put to the stores: a marker written through `a` is looked for through `b`, then
 * removed. `a` must be writable.
 */
export async function sameRecordStore(a: RecordStore, b: RecordStore): Promise<boolean> {
  if (a === b) return true;
  const id = `probe-${newSecret(12)}`;
  const now = Date.now();
  await a.put(SYSTEM_OWNER, PROBE_TABLE, { _id: id, _date_created: now, _date_modified: now });
  try {
    return (await b.get(SYSTEM_OWNER, PROBE_TABLE, id)) !== null;
  } finally {
    // Its own marker only: another probe of the same store may be under way.
    await a.delete(SYSTEM_OWNER, PROBE_TABLE, id);
  }
}

export async function sameBlobStore(a: BlobStore, b: BlobStore): Promise<boolean> {
  if (a === b) return true;
  const key = `${SYSTEM_OWNER}/store-probe/${newSecret(12)}`;
  await a.put(key, Buffer.from('probe'));
  try {
    return (await b.head(key)) !== null;
  } finally {
    await a.delete(key);
  }
}

/** Whether a store holds anything of `owner` (a move must not merge into, or wipe, someone's data there). */
export async function holdsOwnerData(records: RecordStore | null, blobs: BlobStore | null, owner: string): Promise<boolean> {
  if (records && (await records.listTables(owner)).length > 0) return true;
  if (blobs) for await (const _ of blobs.list(owner)) return true;
  return false;
}
