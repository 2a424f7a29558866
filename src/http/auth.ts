import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../core/services.js';
import type { TokenClaims } from '../core/auth/tokens.js';
import type { Session } from '../core/auth/sessions.js';
import type { User } from '../core/accounts/service.js';
import { FreeholdError } from '../core/errors.js';
import { hashSecret } from '../core/ids.js';

export const SESSION_COOKIE = 'freehold_session';

/**
 * A cookie's name as this request's origin uses it. Over HTTPS it carries the
 * `__Host-` prefix: browsers then accept it only when set Secure, with Path=/ and no
 * Domain, by this very host, so another host of the same site (an app's origin in
 * subdomain mode, `*.apps.example.com`) cannot plant or overwrite it (cookie tossing,
 * session fixation). Plain HTTP (local use) cannot have the prefix.
 */
export function cookieName(services: Services, request: FastifyRequest, base: string): string {
  return isSecureRequest(services, request) ? `__Host-${base}` : base;
}
export const accountCookieName = (userId: string) => `app_token_${userId}`;

/**
 * Where to send a visitor who is not signed in, back to `next` afterwards. A visitor who
 * still holds a session cookie had a session that ended (signed out elsewhere, expired):
 * the sign-in page then says so.
 */
export function signInAddress(services: Services, request: FastifyRequest, next: string): string {
  const ended = request.cookies[cookieName(services, request, SESSION_COOKIE)] !== undefined;
  return `/signin?next=${encodeURIComponent(next)}${ended ? '&reason=ended' : ''}`;
}

export interface OwnerContext {
  session: Session;
  user: User;
}

/** The bearer token of a request, from `Authorization: Bearer …` only (never cookies: CEPS.md §1). */
export function bearerToken(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

/**
 * Each request's bearer token hash: the rate limiter keys on it, then the token check
 * looks it up. Kept on the request itself: a WeakMap keyed by requests costs the
 * garbage collector an ephemeron for every request (measured on CEPS reads).
 */
const TOKEN_HASH = Symbol('bearerTokenHash');
type WithTokenHash = FastifyRequest & { [TOKEN_HASH]?: string };

/** hashSecret of `token`, the request's bearer token (bearerToken), computed once per request. */
export function bearerTokenHash(request: FastifyRequest, token: string): string {
  return ((request as WithTokenHash)[TOKEN_HASH] ??= hashSecret(token));
}

/** Resolved once per request and memoised, since several hooks may ask. */
const ownerCache = new WeakMap<FastifyRequest, Promise<OwnerContext | null>>();

export function currentOwner(services: Services, request: FastifyRequest): Promise<OwnerContext | null> {
  let p = ownerCache.get(request);
  if (!p) {
    p = (async () => {
      const session = await services.sessions.get(request.cookies[cookieName(services, request, SESSION_COOKIE)]);
      if (!session) return null;
      const user = await services.accounts.get(session.userId);
      return user ? { session, user } : null;
    })();
    ownerCache.set(request, p);
  }
  return p;
}

/**
 * A signed-in owner (cookie session). Reads too must come from our own pages (fetch
 * metadata); state-changing calls also pass the Origin check.
 */
export async function requireOwner(services: Services, request: FastifyRequest): Promise<OwnerContext> {
  const owner = await currentOwner(services, request);
  if (!owner) throw new FreeholdError('unauthorized', 'Sign in first');
  checkFetchSite(request);
  checkSameOrigin(services, request);
  return owner;
}

export async function requireAdmin(services: Services, request: FastifyRequest): Promise<OwnerContext> {
  const owner = await requireOwner(services, request);
  if (!owner.user.isAdmin) throw new FreeholdError('forbidden', 'Only the admin may do this');
  return owner;
}

/** Requests whose bearer token passed the check (the API rate limit counts such tokens on their own). */
const verified = new WeakSet<FastifyRequest>();

export function tokenVerified(request: FastifyRequest): boolean {
  return verified.has(request);
}

/** An app-scoped bearer token (CEPS/FEPS). */
export async function requireAppToken(services: Services, request: FastifyRequest): Promise<TokenClaims> {
  const token = bearerToken(request);
  if (!token) throw new FreeholdError('unauthorized', 'Missing Authorization: Bearer token');
  const check = await services.tokens.check(token, 'app', bearerTokenHash(request, token));
  if (!check.ok) {
    throw check.reason === 'expired'
      ? new FreeholdError('token_expired', 'The token has expired')
      : new FreeholdError('unauthorized', 'Invalid token');
  }
  verified.add(request);
  return check.claims;
}

/**
 * Account actions (generateAppPassword, permission changes): the signed-in owner's
 * session, or freezr's account token as Bearer.
 */
export async function requireAccount(services: Services, request: FastifyRequest): Promise<{ userId: string; session?: string }> {
  const token = bearerToken(request);
  if (token) {
    const check = await services.tokens.check(token, 'account', bearerTokenHash(request, token));
    if (!check.ok) throw new FreeholdError(check.reason === 'expired' ? 'token_expired' : 'unauthorized', 'Invalid account token');
    return { userId: check.claims.userId, ...(check.claims.session ? { session: check.claims.session } : {}) };
  }
  const owner = await requireOwner(services, request);
  return { userId: owner.user.userId, session: owner.session.hash };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cookie-authenticated calls must come from our own pages. SameSite=Lax already
 * stops cross-site form posts in current browsers; the Origin check covers older
 * ones and same-site attackers. It applies to reads that carry an Origin too
 * (`generateAppPassword` is a GET that makes something): browsers send none on
 * same-origin reads or navigations. Requests without Origin (non-browser clients) pass.
 */
export function checkSameOrigin(services: Services, request: FastifyRequest): void {
  if (!SAFE_METHODS.has(request.method)) checkFetchSite(request);
  const origin = request.headers.origin;
  if (origin === undefined) return;
  const allowed = new Set([new URL(services.config.publicUrl).origin, `${request.protocol}://${request.headers.host ?? ''}`]);
  if (!allowed.has(origin)) throw new FreeholdError('csrf', 'Cross-origin request refused');
}

/**
 * Browsers say where a request comes from (Sec-Fetch-Site). The account API is only
 * ever called by the owner's own pages, or typed into the address bar (`none`); an app
 * origin under the same registrable domain (`same-site`, e.g. `*.apps.example.com`
 * next to `freehold.example.com`) gets the owner's SameSite=Lax cookie sent along,
 * so it is refused here, even for reads (`generateAppPassword` is a GET).
 * Clients that send no Sec-Fetch-Site (not browsers) pass.
 */
export function checkFetchSite(request: FastifyRequest): void {
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') throw new FreeholdError('csrf', 'Cross-site request refused');
}

export function isSecureRequest(services: Services, request: FastifyRequest): boolean {
  return request.protocol === 'https' || services.config.publicUrl.startsWith('https:');
}

export function setSessionCookie(services: Services, request: FastifyRequest, reply: FastifyReply, cookie: string, expiresAt: number): void {
  reply.setCookie(cookieName(services, request, SESSION_COOKIE), cookie, {
    httpOnly: true, sameSite: 'lax', secure: isSecureRequest(services, request), path: '/', expires: new Date(expiresAt),
  });
}
