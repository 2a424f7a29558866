import type { RecordStore, StoredRecord } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { newSecret } from '../ids.js';
import { SYSTEM_OWNER } from '../system-tables.js';

/**
 * One migration run per owner at a time, across processes: a lease in the host store
 * (where every process looks), renewed while the run lasts. Two runs side by side lost
 * acknowledged writes (an audit): the second run's final pass made the target equal to
 * the old store after the first had switched the owner to the target and writes had
 * landed there. A run that dies stops renewing, so its lease lapses after LEASE_MS and a
 * rerun (the way to finish a killed move) waits at most that long.
 */
const LEASE_TABLE = 'system.migration_leases';
const LEASE_MS = 15_000;
const RENEW_MS = 5_000;

interface Lease extends StoredRecord {
  run: string;
  expires_at: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `work` holding the owner's migration lease; waits up to `waitMs` for another run's
 * to lapse (telling `onWait` once, so a person is not left looking at nothing), then refuses.
 */
export async function withMigrationLease<T>(host: RecordStore, owner: string, waitMs: number, work: () => Promise<T>, onWait?: () => void): Promise<T> {
  const run = newSecret(12);
  const give = Date.now() + waitMs;
  let told = false;
  for (;;) {
    const now = Date.now();
    const held = (await host.get(SYSTEM_OWNER, LEASE_TABLE, owner)) as Lease | null;
    if (held && held.expires_at > now) {
      if (now >= give) throw new FreeholdError('conflict', `Another move of ${owner} is running; let it finish (or stop it) first`);
      if (!told) {
        told = true;
        onWait?.();
      }
      await sleep(Math.max(1, Math.min(1_000, held.expires_at - now + 50, give - now)));
      continue;
    }
    // A lapsed lease goes first; of two runs racing for it, one create wins and the other goes round again.
    if (held) await host.delete(SYSTEM_OWNER, LEASE_TABLE, owner);
    try {
      await host.create(SYSTEM_OWNER, LEASE_TABLE, { _id: owner, _date_created: now, _date_modified: now, run, expires_at: now + LEASE_MS });
      break;
    } catch (err) {
      if (err instanceof FreeholdError && err.code === 'conflict') continue;
      throw err;
    }
  }
  const renew = setInterval(() => {
    const now = Date.now();
    void host.get(SYSTEM_OWNER, LEASE_TABLE, owner)
      .then((found) => {
        const r = found as Lease | null;
        if (r?.run !== run) return undefined;
        return host.put(SYSTEM_OWNER, LEASE_TABLE, { ...r, _date_modified: Math.max(now, r._date_modified + 1), expires_at: now + LEASE_MS });
      })
      .catch(() => undefined);
  }, RENEW_MS);
  try {
    return await work();
  } finally {
    clearInterval(renew);
    const r = (await host.get(SYSTEM_OWNER, LEASE_TABLE, owner).catch(() => null)) as Lease | null;
    if (r?.run === run) await host.delete(SYSTEM_OWNER, LEASE_TABLE, owner).catch(() => undefined);
  }
}
