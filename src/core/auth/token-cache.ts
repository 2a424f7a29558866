/**
 * Recently checked tokens, so a burst of API calls with one token costs one store
 * lookup instead of one per request (measured: about a fifth of a CEPS read's time).
 *
 * What it may cost is bounded:
 *  - an entry is trusted for at most `ttlMs` after its lookup; expiry is still checked
 *    on every use, against the token's own `expires_at`;
 *  - every revocation made through this process's TokenService takes the token out of
 *    the cache (and a lookup that overlapped a deletion is not cached), so here a
 *    revoked token fails at once;
 *  - a revocation made by another process sharing the store (the CLI, a second server
 *    process) is seen here within `ttlMs`.
 * Entries are capped; the oldest go first. Only tokens that were found are kept, so
 * guessing cannot fill it with misses.
 */
export class TokenCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();

  constructor(private readonly ttlMs: number, private readonly maxEntries = 10_000) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  get(hash: string, now: number): T | undefined {
    const e = this.entries.get(hash);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.entries.delete(hash);
      return undefined;
    }
    return e.value;
  }

  set(hash: string, value: T, now: number): void {
    if (!this.enabled) return;
    this.entries.delete(hash); // re-inserted last: Map order is insertion order, the oldest first
    this.entries.set(hash, { value, until: now + this.ttlMs });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  forget(hash: string): void {
    this.entries.delete(hash);
  }

  get size(): number {
    return this.entries.size;
  }
}
