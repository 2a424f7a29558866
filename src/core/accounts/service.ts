import type { RecordStore, StoredRecord } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { assertUserId } from '../names.js';
import { hashPassword, verifyPassword, dummyVerify, MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH } from './passwords.js';
import { SYSTEM_OWNER, SystemTable } from '../system-tables.js';
import { hashSecret, newSecret } from '../ids.js';

export interface User {
  userId: string;
  isAdmin: boolean;
  createdAt: number;
}

interface UserRecord extends StoredRecord {
  password_hash: string;
  is_admin: boolean;
}

const SETUP_ID = 'first-admin';
const SETUP_TTL_MS = 60 * 60 * 1000;

function toUser(r: UserRecord): User {
  return { userId: r._id, isAdmin: r.is_admin === true, createdAt: r._date_created };
}

export function assertPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
    throw new FreeholdError('bad_request', `Password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new FreeholdError('bad_request', `Password must be at most ${MAX_PASSWORD_LENGTH} characters`);
  }
  // Spaces alone pass the length rule but are no secret (and a form may have filled them in).
  if (password.trim().length < MIN_PASSWORD_LENGTH) {
    throw new FreeholdError('bad_request', `Password must have at least ${MIN_PASSWORD_LENGTH} characters other than spaces around them`);
  }
  return password;
}

/** Accounts on this host: creation, sign-in checks and the one-time first-run setup. */
export class AccountService {
  constructor(private readonly store: RecordStore) {}

  async get(userId: string): Promise<User | null> {
    const r = (await this.store.get(SYSTEM_OWNER, SystemTable.users, userId)) as UserRecord | null;
    return r ? toUser(r) : null;
  }

  async list(): Promise<User[]> {
    const rows = await this.store.query(SYSTEM_OWNER, SystemTable.users, { op: 'true' }, {
      sort: [{ path: ['_id'], direction: 1 }], skip: 0, limit: 100000,
    });
    return (rows as UserRecord[]).map(toUser);
  }

  async hasAdmin(): Promise<boolean> {
    const n = await this.store.count(SYSTEM_OWNER, SystemTable.users, { op: 'eq', path: ['is_admin'], value: true });
    return n > 0;
  }

  async create(userId: unknown, password: unknown, isAdmin: boolean): Promise<User> {
    const id = assertUserId(userId, true);
    const pw = assertPassword(password);
    const now = Date.now();
    const record: UserRecord = {
      _id: id, _date_created: now, _date_modified: now,
      password_hash: await hashPassword(pw), is_admin: isAdmin,
    };
    try {
      await this.store.create(SYSTEM_OWNER, SystemTable.users, record);
    } catch (err) {
      if (err instanceof FreeholdError && err.code === 'conflict') {
        throw new FreeholdError('conflict', `User ${id} already exists`);
      }
      throw err;
    }
    return toUser(record);
  }

  async setPassword(userId: string, password: unknown): Promise<void> {
    const pw = assertPassword(password);
    const r = (await this.store.get(SYSTEM_OWNER, SystemTable.users, userId)) as UserRecord | null;
    if (!r) throw new FreeholdError('not_found', 'No such user');
    const updated: UserRecord = { ...r, password_hash: await hashPassword(pw), _date_modified: Math.max(Date.now(), r._date_modified + 1) };
    await this.store.replace(SYSTEM_OWNER, SystemTable.users, updated);
  }

  async remove(userId: string): Promise<boolean> {
    return (await this.store.delete(SYSTEM_OWNER, SystemTable.users, userId)) !== null;
  }

  /** Checks a password; returns the user only when it matches. Same cost whether or not the user exists. */
  async verify(userId: unknown, password: unknown): Promise<User | null> {
    if (typeof password !== 'string' || password.length > MAX_PASSWORD_LENGTH) return null;
    let r: UserRecord | null = null;
    if (typeof userId === 'string' && /^[a-z0-9-]{2,34}$/.test(userId)) {
      r = (await this.store.get(SYSTEM_OWNER, SystemTable.users, userId)) as UserRecord | null;
    }
    if (!r) {
      await dummyVerify(password);
      return null;
    }
    return (await verifyPassword(r.password_hash, password)) ? toUser(r) : null;
  }

  /**
   * Makes a new one-time setup token for creating the first admin, replacing any
   * earlier one. Returns null once an admin exists.
   */
  async issueSetupToken(): Promise<string | null> {
    if (await this.hasAdmin()) return null;
    const token = newSecret(24);
    const now = Date.now();
    await this.store.put(SYSTEM_OWNER, SystemTable.setup, {
      _id: SETUP_ID, _date_created: now, _date_modified: now,
      token_hash: hashSecret(token), expires_at: now + SETUP_TTL_MS,
    });
    return token;
  }

  async checkSetupToken(token: unknown): Promise<boolean> {
    if (typeof token !== 'string' || token.length > 200) return false;
    const r = await this.store.get(SYSTEM_OWNER, SystemTable.setup, SETUP_ID);
    return !!r && r.token_hash === hashSecret(token) && Number(r.expires_at) > Date.now();
  }

  /** Creates the first admin with a valid setup token, then burns the token. */
  async completeSetup(token: unknown, userId: unknown, password: unknown): Promise<User> {
    if (await this.hasAdmin()) throw new FreeholdError('conflict', 'This server is already set up');
    // Refuse bad input before the token is burned, so a typo does not cost the link.
    assertUserId(userId, true);
    assertPassword(password);
    if (!(await this.checkSetupToken(token))) {
      throw new FreeholdError('forbidden', 'The setup link is invalid or has expired; restart the server for a new one');
    }
    // Burn the token first so that two racing requests cannot both create an admin.
    const burned = await this.store.delete(SYSTEM_OWNER, SystemTable.setup, SETUP_ID);
    if (!burned) throw new FreeholdError('forbidden', 'The setup link was already used');
    return this.create(userId, password, true);
  }
}
