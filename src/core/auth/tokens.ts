import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { RecordStore, StoredRecord } from '../../storage/types.js';
import { FreeholdError } from '../errors.js';
import { hashSecret, newSecret } from '../ids.js';
import { SYSTEM_OWNER, SystemTable } from '../system-tables.js';
import { TokenCache } from './token-cache.js';

/**
 * Kinds of bearer secret:
 * - `app`: reaches CEPS/FEPS for one (owner, app). What app pages and OAuth clients hold.
 * - `account`: account actions only (generateAppPassword, permission changes), never app data.
 * - `app_password`: single-use; traded at /oauth/token for an `app` token.
 * - `app_entry`: the one-time code of the handoff from the main origin to an app's own
 *   origin (60 s, single use); bound to (owner, app) and the main session.
 * - `app_session`: what the app origin's session cookie holds: lets that one origin
 *   serve that one app's pages and files. Bound to the main session, so signing out
 *   there ends it (revokeSession). Never accepted by CEPS, which takes `app` only.
 * - `oauth_code`: an authorization code (OAuth 2 with PKCE, 60 s, single use), bound to
 *   the redirect URI and code challenge it was made for; traded at /oauth/token.
 */
export type TokenKind = 'app' | 'account' | 'app_password' | 'app_entry' | 'app_session' | 'oauth_code';

export interface TokenClaims {
  kind: TokenKind;
  /** The user acting. */
  userId: string;
  /** The user whose data the token reaches (the same as userId until sharing). */
  ownerId: string;
  /** The app the token is scoped to; empty for account tokens. */
  appName: string;
  expiresAt: number;
  /** Hash of the sign-in session this token belongs to, so sign-out revokes it. */
  session?: string;
}

interface TokenRecord extends StoredRecord {
  kind: TokenKind;
  user_id: string;
  owner_id: string;
  app_name: string;
  expires_at: number;
  session?: string;
  one_device?: boolean;
  /** oauth_code: where the code was sent, and the PKCE challenge (S256) the verifier must meet. */
  redirect_uri?: string;
  code_challenge?: string;
}

export const MAX_TOKEN_TTL_MS = 365 * 24 * 3600 * 1000;
export const DEFAULT_APP_PASSWORD_TTL_MS = 30 * 24 * 3600 * 1000;
export const DEFAULT_OAUTH_TOKEN_TTL_MS = 30 * 24 * 3600 * 1000;
/** Long enough for one redirect, short enough that a leaked code is useless. */
export const APP_ENTRY_TTL_MS = 60 * 1000;
/** An authorization code's life: one redirect and one token request (RFC 6749 §4.1.2 advises at most 10 minutes). */
export const OAUTH_CODE_TTL_MS = 60 * 1000;

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: 'invalid' | 'expired' };

/** How a file token (TokenService.fileToken) begins; no other token does (they are base64url without dots). */
export const FILE_TOKEN_PREFIX = 'ft1.';

/** Kinds whose checks may be answered from the cache: the ones every API call and app file request presents. */
const CACHED_KINDS: ReadonlySet<TokenKind> = new Set(['app', 'app_session']);

/** Default for FREEHOLD_TOKEN_CACHE_MS: the longest an entry is kept (revocations are seen at once regardless). */
export const DEFAULT_TOKEN_CACHE_MS = 1000;

/**
 * Stores only hashes of tokens; a leaked database gives no usable token.
 * Checks of app and app-session tokens go through a cache on stores that can tell
 * when another process wrote (token-cache.ts says how a revocation stays immediate);
 * every deletion here takes the deleted rows out of it.
 */
export class TokenService {
  private readonly cache: TokenCache<TokenRecord>;
  /** Bumped by every deletion: a lookup that overlapped one is not cached, since it may have read the row just deleted. */
  private deletions = 0;

  constructor(private readonly store: RecordStore, private readonly secret: string, cacheMs = DEFAULT_TOKEN_CACHE_MS) {
    this.cache = new TokenCache(cacheMs);
  }

  private async save(token: string, c: TokenClaims, extra: Partial<TokenRecord> = {}): Promise<void> {
    const now = Date.now();
    const record: TokenRecord = {
      _id: hashSecret(token), _date_created: now, _date_modified: now,
      kind: c.kind, user_id: c.userId, owner_id: c.ownerId, app_name: c.appName, expires_at: c.expiresAt,
      ...(c.session ? { session: c.session } : {}), ...extra,
    };
    await this.store.put(SYSTEM_OWNER, SystemTable.tokens, record);
    this.cache.forget(record._id); // a rewritten row is looked up afresh
  }

  async issue(claims: TokenClaims): Promise<string> {
    const token = newSecret();
    await this.save(token, claims);
    return token;
  }

  /**
   * The app token an app page gets. It is derived from the session and the app, so
   * every page load of one app in one session reuses one token instead of minting
   * a new row each time; it dies with the session.
   */
  async pageToken(sessionHash: string, userId: string, appName: string, expiresAt: number): Promise<string> {
    const token = createHmac('sha256', this.secret).update(`page|${sessionHash}|${userId}|${appName}`).digest('base64url');
    const existing = await this.store.get(SYSTEM_OWNER, SystemTable.tokens, hashSecret(token));
    if (!existing) await this.save(token, { kind: 'app', userId, ownerId: userId, appName, expiresAt, session: sessionHash });
    return token;
  }

  /** `tokenHash`, when the caller has it already, must be `hashSecret(token)`. */
  async check(token: unknown, kind: TokenKind, tokenHash?: string): Promise<TokenCheck> {
    if (typeof token !== 'string' || token.length < 20 || token.length > 200) return { ok: false, reason: 'invalid' };
    return this.checkHash(tokenHash ?? hashSecret(token), kind);
  }

  /**
   * A token for reading one uploaded file by its address (`?fileToken=`), for an app to
   * put in a link or keep in a record instead of its own token: it reads that file of
   * that owner and app and nothing else. It names the app token it was made with (by
   * that token's stored hash, which is no credential) and lives as long as that token
   * does: revoking the app token, or the sign-out that ends a page token, ends it too.
   * Stateless otherwise: `ft1.<expiry>.<issuer hash>.<HMAC of all that and the file>`.
   */
  fileToken(issuer: string, claims: TokenClaims, path: string): string {
    const exp = claims.expiresAt.toString(36);
    const issuerHash = hashSecret(issuer);
    return `${FILE_TOKEN_PREFIX}${exp}.${issuerHash}.${this.fileTokenMac(claims.ownerId, claims.appName, path, exp, issuerHash)}`;
  }

  /** The claims of the app token a file token was made with, when it reads exactly this file. */
  async checkFileToken(token: string, ownerId: string, appName: string, path: string): Promise<TokenCheck> {
    const parts = token.startsWith(FILE_TOKEN_PREFIX) ? token.slice(FILE_TOKEN_PREFIX.length).split('.') : [];
    if (parts.length !== 3) return { ok: false, reason: 'invalid' };
    const [exp, issuerHash, mac] = parts as [string, string, string];
    const expected = Buffer.from(this.fileTokenMac(ownerId, appName, path, exp, issuerHash));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'invalid' };
    if (parseInt(exp, 36) <= Date.now()) return { ok: false, reason: 'expired' };
    const issuer = await this.checkHash(issuerHash, 'app');
    if (!issuer.ok) return issuer;
    return issuer.claims.ownerId === ownerId && issuer.claims.appName === appName ? issuer : { ok: false, reason: 'invalid' };
  }

  private fileTokenMac(ownerId: string, appName: string, path: string, exp: string, issuerHash: string): string {
    return createHmac('sha256', this.secret).update(`file|${ownerId}|${appName}|${exp}|${issuerHash}|${path}`).digest('base64url');
  }

  private async checkHash(hash: string, kind: TokenKind): Promise<TokenCheck> {
    const now = Date.now();
    // Read before the lookup: a commit elsewhere after this point makes the entry stale at once.
    const stamp = this.cache.enabled && CACHED_KINDS.has(kind) ? this.store.changeStamp?.() : undefined;
    let r = stamp === undefined ? undefined : this.cache.get(hash, stamp, now);
    if (r === undefined) {
      const deletionsBefore = this.deletions;
      const found = (await this.store.get(SYSTEM_OWNER, SystemTable.tokens, hash)) as TokenRecord | null;
      if (!found) return { ok: false, reason: 'invalid' };
      r = found;
      if (stamp !== undefined && r.kind === kind && r.expires_at > now && this.deletions === deletionsBefore) this.cache.set(hash, r, stamp, now);
    }
    if (r.kind !== kind) return { ok: false, reason: 'invalid' };
    if (r.expires_at <= now) {
      await this.deleteToken(r._id);
      return { ok: false, reason: 'expired' };
    }
    return {
      ok: true,
      claims: {
        kind: r.kind, userId: r.user_id, ownerId: r.owner_id, appName: r.app_name, expiresAt: r.expires_at,
        ...(r.session ? { session: r.session } : {}),
      },
    };
  }

  /** The owner's live app tokens and app passwords, by id (the stored hash: useless as a credential). */
  /** `sessionBound`: a page token, made for the app's pages while the owner is signed in, which ends with that sign-in. */
  async listFor(userId: string): Promise<Array<{ id: string; kind: TokenKind; appName: string; createdAt: number; expiresAt: number; sessionBound: boolean }>> {
    const rows = (await this.store.query(SYSTEM_OWNER, SystemTable.tokens, { op: 'eq', path: ['owner_id'], value: userId },
      { sort: [{ path: ['_date_created'], direction: -1 }], skip: 0, limit: 10000 })) as TokenRecord[];
    const now = Date.now();
    // Credentials an owner hands out or apps hold; handoff codes and app-origin sessions die with the sign-in session.
    return rows.filter((r) => (r.kind === 'app' || r.kind === 'app_password') && r.expires_at > now)
      .map((r) => ({ id: r._id, kind: r.kind, appName: r.app_name, createdAt: r._date_created, expiresAt: r.expires_at, sessionBound: typeof r.session === 'string' && r.session !== '' }));
  }

  /**
   * Apps that can reach the owner's data now or soon: those with a live app token, app
   * password or authorization code for this owner (page tokens and app-origin sessions
   * are app tokens and sessions of installed apps).
   */
  async appsWithAccess(ownerId: string): Promise<Set<string>> {
    const rows = (await this.store.query(SYSTEM_OWNER, SystemTable.tokens, { op: 'eq', path: ['owner_id'], value: ownerId },
      { sort: [], skip: 0, limit: 100_000 })) as TokenRecord[];
    const now = Date.now();
    return new Set(rows.filter((r) => r.kind !== 'account' && r.expires_at > now && typeof r.app_name === 'string' && r.app_name !== '')
      .map((r) => r.app_name));
  }

  /** Revokes one of the owner's tokens by id; false when it is not theirs or not there. */
  async revokeById(userId: string, id: string): Promise<boolean> {
    const r = (await this.store.get(SYSTEM_OWNER, SystemTable.tokens, id)) as TokenRecord | null;
    if (!r || r.owner_id !== userId) return false;
    return (await this.deleteToken(id)) !== null;
  }

  async revoke(token: string): Promise<boolean> {
    return (await this.deleteToken(hashSecret(token))) !== null;
  }

  /** Every single deletion goes through here; the cache forgets the row once the store has the delete. */
  private async deleteToken(id: string): Promise<TokenRecord | null> {
    this.deletions++;
    try {
      return (await this.store.delete(SYSTEM_OWNER, SystemTable.tokens, id)) as TokenRecord | null;
    } finally {
      this.deletions++;
      this.cache.forget(id);
    }
  }

  /** Revokes every token minted under a sign-in session (sign-out). */
  async revokeSession(sessionHash: string): Promise<number> {
    return this.revokeWhere({ op: 'eq', path: ['session'], value: sessionHash });
  }

  /** Revokes every token of one user for one app (app removal), or all of the user's tokens. */
  async revokeFor(userId: string, appName?: string): Promise<number> {
    const byUser = { op: 'eq', path: ['owner_id'], value: userId } as const;
    return this.revokeWhere(appName === undefined ? byUser
      : { op: 'and', items: [byUser, { op: 'eq', path: ['app_name'], value: appName }] });
  }

  /**
   * Deletes the tokens, entry codes and app passwords whose time is up. Each is refused
   * once expired anyway; without this, those never presented again (an unused entry
   * code, a token of an app no longer opened) would stay in the store for good.
   */
  async sweepExpired(now = Date.now()): Promise<number> {
    return this.revokeWhere({ op: 'lte', path: ['expires_at'], value: now });
  }

  private async revokeWhere(where: Parameters<RecordStore['query']>[2]): Promise<number> {
    const rows = await this.store.query(SYSTEM_OWNER, SystemTable.tokens, where, { sort: [], skip: 0, limit: 100000 });
    if (rows.length === 0) return 0;
    this.deletions++;
    try {
      await this.store.batch(SYSTEM_OWNER, rows.map((r) => ({ kind: 'delete' as const, table: SystemTable.tokens, id: r._id })));
    } finally {
      this.deletions++;
      for (const r of rows) this.cache.forget(r._id);
    }
    return rows.length;
  }

  /** A one-time code for entering an app's origin from the signed-in main origin. */
  async issueAppEntry(sessionHash: string, userId: string, appName: string): Promise<string> {
    return this.issue({ kind: 'app_entry', userId, ownerId: userId, appName, expiresAt: Date.now() + APP_ENTRY_TTL_MS, session: sessionHash });
  }

  /**
   * Burns a handoff code and returns what it was for. The row is deleted before it is
   * looked at, so a code works once even when two requests race, and a code tried on
   * the wrong host is spent too. `appName` is compared ignoring case (host names have none).
   */
  async redeemAppEntry(code: unknown, ownerId: string, appName: string): Promise<TokenClaims> {
    if (typeof code !== 'string' || code.length < 20 || code.length > 200) throw new FreeholdError('unauthorized', 'Invalid entry code');
    const r = await this.deleteToken(hashSecret(code));
    if (!r || r.kind !== 'app_entry' || r.expires_at <= Date.now() || !r.session
      || r.owner_id !== ownerId || r.app_name.toLowerCase() !== appName.toLowerCase()) {
      throw new FreeholdError('unauthorized', 'This entry code is invalid, used or expired');
    }
    return { kind: r.kind, userId: r.user_id, ownerId: r.owner_id, appName: r.app_name, expiresAt: r.expires_at, session: r.session };
  }

  async issueAppPassword(userId: string, appName: string, ttlMs: number, oneDevice: boolean): Promise<{ password: string; expiresAt: number }> {
    const password = newSecret(24);
    const expiresAt = Date.now() + Math.min(ttlMs, MAX_TOKEN_TTL_MS);
    await this.save(password, { kind: 'app_password', userId, ownerId: userId, appName, expiresAt }, { one_device: oneDevice });
    return { password, expiresAt };
  }

  /** An authorization code for (owner, app), to be sent to `redirectUri` (OAuth 2, PKCE S256). */
  async issueAuthCode(userId: string, appName: string, redirectUri: string, codeChallenge: string): Promise<string> {
    const code = newSecret();
    await this.save(code, { kind: 'oauth_code', userId, ownerId: userId, appName, expiresAt: Date.now() + OAUTH_CODE_TTL_MS },
      { redirect_uri: redirectUri, code_challenge: codeChallenge });
    return code;
  }

  /**
   * Trades an authorization code for an app token (RFC 6749 §4.1.3, RFC 7636 §4.6). The
   * code is deleted before anything is checked, so it works once whatever the outcome:
   * a wrong verifier burns it too (RFC 6749 §10.5, a code tried twice is treated as
   * stolen). Refusals are `invalid_grant` without saying which check failed.
   */
  async redeemAuthCode(code: string, clientId: string, redirectUri: string, codeVerifier: string): Promise<{ token: string; claims: TokenClaims }> {
    const refused = () => new FreeholdError('invalid_grant', 'The authorization code is invalid, used or expired, or does not match this request');
    if (code.length < 20 || code.length > 200) throw refused();
    const r = await this.deleteToken(hashSecret(code));
    if (!r || r.kind !== 'oauth_code' || r.expires_at <= Date.now() || r.app_name !== clientId || r.redirect_uri !== redirectUri
      || !r.code_challenge || !sameText(pkceChallenge(codeVerifier), r.code_challenge)) {
      throw refused();
    }
    const claims: TokenClaims = { kind: 'app', userId: r.user_id, ownerId: r.owner_id, appName: r.app_name, expiresAt: Date.now() + DEFAULT_OAUTH_TOKEN_TTL_MS };
    return { token: await this.issue(claims), claims };
  }

  /**
   * Trades a one-time app password for an app token. The password row is deleted
   * before the token is issued, so two racing requests cannot both succeed. The token
   * lasts until the password's expiry: the owner chose that span for the app's access
   * when making the password (the home page says "expires in"; freezr's `expiry`), and
   * there is no refresh token to extend a shorter one.
   */
  async exchangeAppPassword(userId: unknown, password: unknown, appName: unknown): Promise<{ token: string; claims: TokenClaims }> {
    const check = await this.check(password, 'app_password');
    if (!check.ok || check.claims.userId !== userId || check.claims.appName !== appName) {
      throw new FreeholdError('unauthorized', 'Invalid app password, user or app');
    }
    const burned = await this.deleteToken(hashSecret(password as string));
    if (!burned) throw new FreeholdError('unauthorized', 'This app password was already used');
    const claims: TokenClaims = {
      kind: 'app', userId: check.claims.userId, ownerId: check.claims.ownerId, appName: check.claims.appName,
      expiresAt: check.claims.expiresAt,
    };
    return { token: await this.issue(claims), claims };
  }
}

/** The S256 code challenge of a PKCE verifier (RFC 7636 §4.2): base64url of its SHA-256, unpadded. */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** String equality in time that does not depend on where they first differ. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
