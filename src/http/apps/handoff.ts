import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppHostLabels } from '../../core/apps/host-labels.js';
import type { InstalledApp } from '../../core/apps/service.js';
import { FreeholdError } from '../../core/errors.js';
import type { Services } from '../../core/services.js';
import { appLocation, resolveAppHost } from '../app-origin.js';
import { cookieName, type OwnerContext } from '../auth.js';
import { APP_SESSION_COOKIE, appSessionViewer, setAppSessionCookie } from './app-session.js';
import { hostApp } from './app-host.js';
import { requireDocumentRequest } from './serve.js';

/**
 * The handoff from the main origin to an app's own origin (subdomain mode).
 *
 *  1. The signed-in owner opens `/apps/<app>[/<page>]` on the main origin. That mints
 *     a one-time code (60 s, stored hashed, bound to owner + app + the main session)
 *     and redirects to `<app origin>/_freehold/enter?code=…&next=/<page>`.
 *  2. The app origin burns the code (deleted before use), checks it was made for the
 *     app this host names and that the main session still stands, and sets its own
 *     app-session cookie (app-session.ts), then redirects to `next`, a path on itself.
 *
 * Only navigations get a code: a script of another origin fetching `/apps/<app>`
 * with the owner's cookies gets a 403, never a code (and could not read the redirect).
 */

export const ENTER_PATH = '/_freehold/enter';

/** The installed app a name means, ignoring case (host names have none); two that differ only in case are refused. */
export async function findInstalledApp(services: Services, ownerId: string, name: string): Promise<InstalledApp> {
  const exact = await services.apps.get(ownerId, name);
  const all = (await services.apps.list(ownerId)).filter((a) => a.appName.toLowerCase() === name.toLowerCase());
  if (all.length > 1) {
    throw new FreeholdError('conflict', `Apps ${all.map((a) => a.appName).join(' and ')} differ only in case, so they cannot have origins of their own; remove one`);
  }
  const found = exact ?? all[0];
  if (!found) throw new FreeholdError('not_found', `App ${name} is not installed`);
  return found;
}

/** A path on the app's origin to land on: anything else (another origin, `//host`, `/\host`) lands on the root. */
export function safeAppPath(next: string | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  if (/[\u0000-\u001f\u007f\\]/.test(next) || next.length > 1000) return '/';
  return next;
}

/** Step 1, on the main origin: mint the code and send the browser to the app's origin. */
export async function startHandoff(services: Services, request: FastifyRequest, reply: FastifyReply, owner: OwnerContext,
  appName: string, next: string): Promise<FastifyReply> {
  requireDocumentRequest(request, 'App entries');
  const ownerId = owner.user.userId;
  const installed = await findInstalledApp(services, ownerId, appName);
  const loc = appLocation(services.config, ownerId, installed.appName);
  if (loc.hashedLabel) await new AppHostLabels(services.stores.host).remember(loc.hashedLabel, ownerId, installed.appName);
  const code = await services.tokens.issueAppEntry(owner.session.hash, ownerId, installed.appName);
  const target = `${loc.origin}${ENTER_PATH}?code=${encodeURIComponent(code)}&next=${encodeURIComponent(safeAppPath(next))}`;
  return reply.header('Cache-Control', 'no-store').redirect(target);
}

const EnterQuery = Type.Object({
  code: Type.Optional(Type.String({ maxLength: 200 })),
  next: Type.Optional(Type.String({ maxLength: 1000 })),
});

/** Step 2, on the app's origin. */
export async function enterRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  const labels = new AppHostLabels(services.stores.host);

  app.get(ENTER_PATH, {
    schema: { hide: true, querystring: EnterQuery },
  }, async (request, reply) => {
    const parsed = resolveAppHost(services.config, request.host);
    const target = parsed && (await hostApp(labels, parsed));
    // The main origin has no app to enter: this path exists only on app hosts.
    if (!target) throw new FreeholdError('not_found', `No route for GET ${ENTER_PATH}`);
    requireDocumentRequest(request, 'App entries');
    const next = safeAppPath(request.query.next);
    reply.header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer');

    let claims;
    try {
      claims = await services.tokens.redeemAppEntry(request.query.code, target.owner, target.app);
    } catch (err) {
      // A reload of this address (its code already spent) while already in: just go on.
      if (await appSessionViewer(services, request, target.owner, target.app)) return reply.redirect(next);
      throw err;
    }
    const main = await services.sessions.byHash(claims.session!);
    if (!main || main.userId !== claims.userId) throw new FreeholdError('unauthorized', 'The sign-in this entry came from has ended');

    // One app session per browser and app origin: a previous one is ended, not piled up.
    const previous = request.cookies[cookieName(services, request, APP_SESSION_COOKIE)];
    if (previous && (await services.tokens.check(previous, 'app_session')).ok) await services.tokens.revoke(previous);
    const token = await services.tokens.issue({
      kind: 'app_session', userId: claims.userId, ownerId: claims.ownerId, appName: claims.appName,
      expiresAt: main.expiresAt, session: main.hash,
    });
    setAppSessionCookie(services, request, reply, token, main.expiresAt);
    return reply.redirect(next);
  });
}
