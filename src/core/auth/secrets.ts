import type { RecordStore } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { newSecret } from '../ids.js';
import { SYSTEM_OWNER, SystemTable } from '../system-tables.js';

/**
 * The host's long-lived secret (derives page tokens). Made once and kept in the host
 * store, so that every process sharing that store derives the same values.
 */
export async function loadHostSecret(store: RecordStore): Promise<string> {
  const existing = await store.get(SYSTEM_OWNER, SystemTable.secrets, 'host');
  if (existing && typeof existing.value === 'string') return existing.value;
  const now = Date.now();
  try {
    await store.create(SYSTEM_OWNER, SystemTable.secrets, { _id: 'host', _date_created: now, _date_modified: now, value: newSecret(32) });
  } catch (err) {
    // Another process made it first: use theirs.
    if (!(err instanceof FreeholdError && err.code === 'conflict')) throw err;
  }
  const made = await store.get(SYSTEM_OWNER, SystemTable.secrets, 'host');
  if (!made || typeof made.value !== 'string') throw new Error('Host secret could not be stored');
  return made.value;
}
