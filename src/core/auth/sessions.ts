import type { Condition } from '../../query/types.js';
import type { RecordStore, StoredRecord } from '../../storage/types.js';
import { hashSecret, newSecret } from '../ids.js';
import { SYSTEM_OWNER, SystemTable } from '../system-tables.js';

export interface Session {
  /** sha256 of the cookie value: what is stored, and what tokens refer to. */
  hash: string;
  userId: string;
  expiresAt: number;
}

interface SessionRecord extends StoredRecord {
  user_id: string;
  expires_at: number;
}

/** Sign-in sessions, stored (hashed) in the host store so that any process can check them. */
export class SessionService {
  constructor(private readonly store: RecordStore, private readonly ttlMs: number) {}

  async create(userId: string): Promise<{ cookie: string; session: Session }> {
    const cookie = newSecret();
    const now = Date.now();
    const record: SessionRecord = {
      _id: hashSecret(cookie), _date_created: now, _date_modified: now, user_id: userId, expires_at: now + this.ttlMs,
    };
    await this.store.create(SYSTEM_OWNER, SystemTable.sessions, record);
    return { cookie, session: { hash: record._id, userId, expiresAt: record.expires_at } };
  }

  async get(cookie: unknown): Promise<Session | null> {
    if (typeof cookie !== 'string' || cookie.length < 20 || cookie.length > 200) return null;
    const r = (await this.store.get(SYSTEM_OWNER, SystemTable.sessions, hashSecret(cookie))) as SessionRecord | null;
    if (!r) return null;
    if (r.expires_at <= Date.now()) {
      await this.store.delete(SYSTEM_OWNER, SystemTable.sessions, r._id);
      return null;
    }
    return { hash: r._id, userId: r.user_id, expiresAt: r.expires_at };
  }

  /** A live session by its hash (what tokens refer to), without the cookie. */
  async byHash(hash: string): Promise<Session | null> {
    const r = (await this.store.get(SYSTEM_OWNER, SystemTable.sessions, hash)) as SessionRecord | null;
    if (!r || r.expires_at <= Date.now()) return null;
    return { hash: r._id, userId: r.user_id, expiresAt: r.expires_at };
  }

  async destroy(hash: string): Promise<void> {
    await this.store.delete(SYSTEM_OWNER, SystemTable.sessions, hash);
  }

  /** Deletes the sessions whose time is up (each is refused once expired; this frees the rows). */
  async sweepExpired(now = Date.now()): Promise<number> {
    return this.destroyWhere({ op: 'lte', path: ['expires_at'], value: now });
  }

  /** The hashes of a user's sessions, but `keep`'s. */
  async hashesOf(userId: string, keep?: string): Promise<string[]> {
    const rows = await this.store.query(SYSTEM_OWNER, SystemTable.sessions, { op: 'eq', path: ['user_id'], value: userId }, { sort: [], skip: 0, limit: 100000 });
    return rows.map((r) => r._id).filter((hash) => hash !== keep);
  }

  /** Ends these sessions (by hash). Tokens minted under them outlive them unless revoked too: see endSignIns(). */
  async destroyMany(hashes: string[]): Promise<void> {
    if (hashes.length) await this.store.batch(SYSTEM_OWNER, hashes.map((id) => ({ kind: 'delete' as const, table: SystemTable.sessions, id })));
  }

  private async destroyWhere(where: Condition): Promise<number> {
    const rows = await this.store.query(SYSTEM_OWNER, SystemTable.sessions, where, { sort: [], skip: 0, limit: 100000 });
    await this.destroyMany(rows.map((r) => r._id));
    return rows.length;
  }
}
