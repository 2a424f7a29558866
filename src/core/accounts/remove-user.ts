import { FreeholdError } from '../errors.js';
import { newSecret } from '../ids.js';
import { endSignIns } from '../auth/end-sign-ins.js';
import type { Services } from '../services.js';

export interface RemovedUser {
  userId: string;
  tables: number;
  files: number;
}

/**
 * Removes an account and everything it holds on this server: its sign-ins and tokens,
 * its records and files (in whatever stores it uses), its two-factor state, quota and
 * storage settings, then the account itself. In that order, so that the person is
 * locked out first, and the account record goes last: should a step fail, the account
 * is still there and removing it again finishes the job. Backups in the backup store
 * are kept (they exist to bring data back): a later account of the same name sees them
 * as an earlier account's, restored only when the admin says so (backup/service.ts).
 */
export async function removeUser(services: Services, userId: string): Promise<RemovedUser> {
  const user = await services.accounts.get(userId);
  if (!user) throw new FreeholdError('not_found', 'No such user');
  const storage = services.stores.storageOf(userId);
  if (storage.state === 'migrating' || storage.target) {
    throw new FreeholdError('conflict', `A move of ${userId}'s data is under way: finish it or abort it first`);
  }
  if (storage.previous) {
    throw new FreeholdError('conflict', `A copy of ${userId}'s data is kept in the stores it moved from: confirm the move (migrate --confirm) first`);
  }
  // No one can sign in as them while the rest goes: a password nobody knows.
  await services.accounts.setPassword(userId, newSecret(24));
  await endSignIns(services.sessions, services.tokens, userId);
  await services.tokens.revokeFor(userId);
  const records = services.stores.records(userId);
  let tables = 0;
  for (const { table } of await records.listTables(userId)) {
    await records.dropTable(userId, table);
    tables++;
  }
  const files = await services.stores.blobs(userId).deletePrefix(userId);
  await services.twoFactor.disable(userId);
  await services.quota.setQuota(userId, null);
  await services.stores.forgetOwnerStorage(userId);
  await services.accounts.remove(userId);
  return { userId, tables, files };
}
