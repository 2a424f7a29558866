import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenClaims } from '../../core/auth/tokens.js';
import type { Services } from '../../core/services.js';
import { cookieName, isSecureRequest } from '../auth.js';
import type { Viewer } from './serve.js';
import { cookieValues } from '../cookie-values.js';

/**
 * The session of one app origin (subdomain mode). The main origin's session cookie is
 * host-only and never reaches an app host; instead the handoff (handoff.ts) gives the
 * app host a cookie of its own, holding an `app_session` token bound to the owner, the
 * app and the main session. It is worth nothing anywhere else: CEPS wants an `app`
 * token as Bearer, the main origin wants its own cookie, and another app's host checks
 * that the token names its app.
 */
export const APP_SESSION_COOKIE = 'freehold_app_session';

/** The viewer of an app host and the app's exact name, when its cookie is live, names this (owner, app) and its main session still stands. */
export async function appSessionViewer(services: Services, request: FastifyRequest, ownerId: string, appName: string): Promise<{ viewer: Viewer; appName: string } | null> {
  let c: TokenClaims | undefined;
  // Every value sent under the name: a sibling app host can toss decoys of the same name
  // (cookie-values.ts); a value counts only as a live token for this very (owner, app).
  const name = cookieName(services, request, APP_SESSION_COOKIE);
  for (const value of cookieValues(request.headers.cookie, (n) => n === name)) {
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
