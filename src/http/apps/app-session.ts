import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenClaims } from '../../core/auth/tokens.js';
import type { Services } from '../../core/services.js';
import { cookieName, isSecureRequest } from '../auth.js';
import type { Viewer } from './serve.js';

/**
 * The session of one app origin (subdomain mode). The main origin's session cookie is
 * host-only and never reaches an app host; instead the handoff (handoff.ts) gives the
 * app host a cookie of its own, holding an `app_session` token bound to the owner, the
 * app and the main session. It is worth nothing anywhere else: CEPS wants an `app`
 * token as Bearer, the main origin wants its own cookie, and another app's host checks
 * that the token names its app.
 */
export const APP_SESSION_COOKIE = 'freehold_app_session';

/**
 * Every value sent under a cookie name. A sibling app host can set a cookie of the same
 * name for the parent domain ("cookie tossing"); the browser then sends both, in an
 * order the page does not control. Trying each keeps a tossed decoy from locking the
 * owner out of an app (it can never let anyone in: a value must be a live token for this
 * very app).
 */
function cookieValues(request: FastifyRequest, name: string): string[] {
  const header = request.headers.cookie;
  if (!header) return [];
  const out: string[] = [];
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) out.push(part.slice(at + 1).trim());
  }
  return out.slice(0, 5);
}

/** The viewer of an app host and the app's exact name, when its cookie is live, names this (owner, app) and its main session still stands. */
export async function appSessionViewer(services: Services, request: FastifyRequest, ownerId: string, appName: string): Promise<{ viewer: Viewer; appName: string } | null> {
  let c: TokenClaims | undefined;
  for (const value of cookieValues(request, cookieName(services, request, APP_SESSION_COOKIE))) {
    const check = await services.tokens.check(value, 'app_session');
    if (check.ok && check.claims.ownerId === ownerId && check.claims.appName.toLowerCase() === appName.toLowerCase() && check.claims.session) {
      c = check.claims;
      break;
    }
  }
  if (!c?.session) return null;
  // Sign-out revokes this token with the session; a session ended some other way
  // (expiry, `user` CLI) must end this one too, so the main session is asked each time.
  const main = await services.sessions.byHash(c.session);
  if (!main || main.userId !== c.userId) return null;
  const user = await services.accounts.get(c.userId);
  if (!user) return null;
  return {
    viewer: { userId: user.userId, isAdmin: user.isAdmin, sessionHash: main.hash, expiresAt: Math.min(c.expiresAt, main.expiresAt) },
    // The installed app's exact name (the host has it in lowercase only).
    appName: c.appName,
  };
}

/**
 * Host-only (no Domain attribute: no other app host ever sees it), httpOnly (page
 * scripts never need it), SameSite=Lax (sent when the owner follows a link to the app).
 */
export function setAppSessionCookie(services: Services, request: FastifyRequest, reply: FastifyReply, token: string, expiresAt: number): void {
  reply.setCookie(cookieName(services, request, APP_SESSION_COOKIE), token, {
    httpOnly: true, sameSite: 'lax', secure: isSecureRequest(services, request), path: '/', expires: new Date(expiresAt),
  });
}
