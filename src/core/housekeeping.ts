import type { Services } from './services.js';

/** What one housekeeping pass removed. */
export interface Swept {
  tokens: number;
  sessions: number;
}

/** Temp files younger than this may belong to a write still under way. */
const LEFTOVER_AGE_MS = 3600_000;

/**
 * Removes what nothing will ask for again: staged uploads no record refers to, the
 * package files of installs that never went live (or no longer are), and
 * tokens, entry codes, app passwords and sign-ins whose time is up (each already
 * refused once expired; this frees the rows). `freehold serve` runs it at start and
 * hourly.
 */
export async function housekeeping(services: Services, now = Date.now()): Promise<Swept> {
  const moving = new Set(services.stores.ownersMoving());
  // Each part on its own: one owner's failure (a store that stopped answering) leaves
  // the others', and the token and session sweep, to be done.
  const attempt = async (what: string, sweep: () => Promise<unknown>) => {
    try {
      await sweep();
    } catch (err) {
      services.log.warn({ err, what }, 'housekeeping: a sweep failed (tried again within the hour)');
    }
  };
  for (const u of await services.accounts.list()) {
    // An owner being moved is read-only: nothing of theirs is removed until the move ends.
    if (moving.has(u.userId)) continue;
    await attempt(`unreferenced files of ${u.userId}`, () => services.files.sweepUnreferenced(u.userId));
    await attempt(`app installs of ${u.userId}`, () => services.apps.sweepOrphanedInstalls(u.userId));
  }
  for (const store of services.stores.openedBlobStores()) await attempt(`temp files of a ${store.kind} store`, async () => store.sweepLeftovers?.(LEFTOVER_AGE_MS));
  await attempt('temp files of the backup store', async () => services.backups?.sweepLeftovers(LEFTOVER_AGE_MS));
  return { tokens: await services.tokens.sweepExpired(now), sessions: await services.sessions.sweepExpired(now) };
}
