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
  for (const u of await services.accounts.list()) {
    await services.files.sweepUnreferenced(u.userId);
    await services.apps.sweepOrphanedInstalls(u.userId);
  }
  for (const store of services.stores.openedBlobStores()) await store.sweepLeftovers?.(LEFTOVER_AGE_MS);
  await services.backups?.sweepLeftovers(LEFTOVER_AGE_MS);
  return { tokens: await services.tokens.sweepExpired(now), sessions: await services.sessions.sweepExpired(now) };
}
