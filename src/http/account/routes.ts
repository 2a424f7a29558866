import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  SESSION_COOKIE, accountCookieName, cookieName, bearerToken, checkSameOrigin, currentOwner, isSecureRequest, requireAccount,
  requireAdmin, requireOwner, setSessionCookie,
} from '../auth.js';
import { loginRateLimit } from '../rate-limits.js';
import { FreeholdError } from '../../core/errors.js';
import { assertAppName, assertUserId } from '../../core/names.js';
import { endSignIns } from '../../core/auth/end-sign-ins.js';
import { DEFAULT_APP_PASSWORD_TTL_MS, MAX_TOKEN_TTL_MS } from '../../core/auth/tokens.js';
import type { Services } from '../../core/services.js';
import type { User } from '../../core/accounts/service.js';

const Credentials = Type.Object({
  user_id: Type.String({ minLength: 1, maxLength: 100 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
  /** The second factor, when the account has two-factor sign-in on: one of these. */
  totp: Type.Optional(Type.String({ maxLength: 20, description: 'Code from the authenticator app' })),
  recovery_code: Type.Optional(Type.String({ maxLength: 40, description: 'One of the recovery codes' })),
}, { additionalProperties: true });

const LoginReply = Type.Object({ logged_in: Type.Boolean(), user_id: Type.String() });

/**
 * Starts a fresh session for a user (after sign-in or setup): any session the browser
 * already had is ended first, so a planted session id is never carried over.
 */
async function startSession(services: Services, request: FastifyRequest, reply: FastifyReply, user: User): Promise<void> {
  const previous = await currentOwner(services, request);
  if (previous) {
    await services.tokens.revokeSession(previous.session.hash);
    await services.sessions.destroy(previous.session.hash);
  }
  const { cookie, session } = await services.sessions.create(user.userId);
  setSessionCookie(services, request, reply, cookie, session.expiresAt);
  // freezr's account clients read this cookie's token as Bearer for account calls (CEPS.md §7).
  const accountToken = await services.tokens.issue({
    kind: 'account', userId: user.userId, ownerId: user.userId, appName: '', expiresAt: session.expiresAt, session: session.hash,
  });
  reply.setCookie(accountCookieName(user.userId), accountToken, {
    httpOnly: true, sameSite: 'strict', secure: isSecureRequest(services, request), path: '/', expires: new Date(session.expiresAt),
  });
}

function clearCookies(services: Services, reply: FastifyReply, request: FastifyRequest): void {
  reply.clearCookie(cookieName(services, request, SESSION_COOKIE), { path: '/', secure: isSecureRequest(services, request) });
  for (const name of Object.keys(request.cookies)) {
    if (name.startsWith('app_token_')) reply.clearCookie(name, { path: '/' });
  }
}

/** Sign-in, sign-out, first-run setup, users and app passwords. */
export async function accountRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;

  app.post('/acctapi/login', {
    config: { rateLimit: loginRateLimit(services) },
    schema: { tags: ['account'], summary: 'Sign in', body: Credentials, response: { 200: LoginReply } },
  }, async (request, reply) => {
    checkSameOrigin(services, request);
    const user = await services.accounts.verify(request.body.user_id, request.body.password);
    if (!user) throw new FreeholdError('unauthorized', 'Wrong user id or password');
    // Asking for the code only after a right password (as most sites do) tells a
    // password guesser when they are right, but the code still stands between them
    // and the account, and both tries count against this route's rate limit.
    await services.twoFactor.checkSignIn(user.userId, { totp: request.body.totp, recoveryCode: request.body.recovery_code });
    await startSession(services, request, reply, user);
    request.log.info({ user: user.userId }, 'signed in');
    return { logged_in: true, user_id: user.userId };
  });

  app.post('/acctapi/logout', {
    schema: { tags: ['account'], summary: 'Sign out', response: { 200: Type.Object({ logged_out: Type.Boolean() }) } },
  }, async (request, reply) => {
    checkSameOrigin(services, request);
    const owner = await currentOwner(services, request);
    if (owner) {
      await services.tokens.revokeSession(owner.session.hash);
      await services.sessions.destroy(owner.session.hash);
    }
    clearCookies(services, reply, request);
    return { logged_out: true };
  });

  app.post('/acctapi/applogout', {
    schema: { tags: ['account'], summary: "End freezr's account token", response: { 200: Type.Object({ logged_out: Type.Boolean() }) } },
  }, async (request, reply) => {
    checkSameOrigin(services, request);
    const candidates = [bearerToken(request), ...Object.entries(request.cookies)
      .filter(([name]) => name.startsWith('app_token_')).map(([, v]) => v)];
    for (const token of candidates) {
      if (!token) continue;
      const check = await services.tokens.check(token, 'account');
      if (check.ok) await services.tokens.revoke(token);
    }
    for (const name of Object.keys(request.cookies)) if (name.startsWith('app_token_')) reply.clearCookie(name, { path: '/' });
    return { logged_out: true };
  });

  app.get('/acctapi/session', {
    schema: {
      tags: ['account'], summary: 'Who is signed in',
      response: { 200: Type.Object({ logged_in: Type.Boolean(), user_id: Type.Optional(Type.String()), is_admin: Type.Optional(Type.Boolean()) }) },
    },
  }, async (request) => {
    const owner = await currentOwner(services, request);
    return owner ? { logged_in: true, user_id: owner.user.userId, is_admin: owner.user.isAdmin } : { logged_in: false };
  });

  app.get('/acctapi/setup/status', {
    schema: {
      tags: ['account'], summary: 'Whether first-run setup is pending and the token valid',
      querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 200 })) }),
      response: { 200: Type.Object({ needs_setup: Type.Boolean(), token_valid: Type.Boolean() }) },
    },
  }, async (request) => {
    const needs = !(await services.accounts.hasAdmin());
    return { needs_setup: needs, token_valid: needs && (await services.accounts.checkSetupToken(request.query.token)) };
  });

  app.post('/acctapi/setup', {
    config: { rateLimit: loginRateLimit(services) },
    schema: {
      tags: ['account'], summary: 'Create the first admin with the one-time setup token',
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }), user_id: Type.String({ maxLength: 100 }), password: Type.String({ maxLength: 1024 }) }),
      response: { 200: LoginReply },
    },
  }, async (request, reply) => {
    checkSameOrigin(services, request);
    const user = await services.accounts.completeSetup(request.body.token, request.body.user_id, request.body.password);
    await startSession(services, request, reply, user);
    request.log.info({ user: user.userId }, 'first admin created');
    return { logged_in: true, user_id: user.userId };
  });

  const UserReply = Type.Object({ user_id: Type.String(), is_admin: Type.Boolean(), created_at: Type.Number() });

  const UserListed = Type.Object({
    user_id: Type.String(), is_admin: Type.Boolean(), created_at: Type.Number(),
    two_factor: Type.Boolean({ description: 'Whether the user signs in with a second factor (an admin can turn it off for them)' }),
  });

  app.get('/acctapi/users', {
    schema: { tags: ['admin'], summary: 'List users (admin)', response: { 200: Type.Object({ users: Type.Array(UserListed) }) } },
  }, async (request) => {
    await requireAdmin(services, request);
    const users = await services.accounts.list();
    return {
      users: await Promise.all(users.map(async (u) => ({
        user_id: u.userId, is_admin: u.isAdmin, created_at: u.createdAt, two_factor: await services.twoFactor.isEnabled(u.userId),
      }))),
    };
  });

  app.post('/acctapi/users', {
    schema: {
      tags: ['admin'], summary: 'Create a user (admin)',
      body: Type.Object({ user_id: Type.String({ maxLength: 100 }), password: Type.String({ maxLength: 1024 }), is_admin: Type.Optional(Type.Boolean()) }),
      response: { 200: UserReply },
    },
  }, async (request) => {
    await requireAdmin(services, request);
    const user = await services.accounts.create(request.body.user_id, request.body.password, request.body.is_admin === true);
    return { user_id: user.userId, is_admin: user.isAdmin, created_at: user.createdAt };
  });

  app.put('/acctapi/password', {
    // A stolen session could otherwise guess at the password here without the sign-in limit.
    config: { rateLimit: loginRateLimit(services) },
    schema: {
      tags: ['account'], summary: "Change the signed-in owner's password; their other sign-ins end",
      body: Type.Object({ current_password: Type.String({ minLength: 1, maxLength: 1024 }), new_password: Type.String({ maxLength: 1024 }) }),
      response: { 200: Type.Object({ changed: Type.Boolean(), signed_out_elsewhere: Type.Integer() }) },
    },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    const userId = owner.user.userId;
    // 403, not 401: the session is fine, and a 401 would send the page to sign-in.
    if (!(await services.accounts.verify(userId, request.body.current_password))) throw new FreeholdError('forbidden', 'The current password is not right');
    await services.accounts.setPassword(userId, request.body.new_password);
    const ended = await endSignIns(services.sessions, services.tokens, userId, owner.session.hash);
    request.log.info({ user: userId, ended }, 'password changed');
    return { changed: true, signed_out_elsewhere: ended };
  });

  const OtherUser = Type.Object({ user_id: Type.String({ maxLength: 34 }) });

  /** The user an admin acts on: an existing one, and not the admin themself (who has their own forms). */
  async function otherUser(request: FastifyRequest, param: string, ownsInstead: string): Promise<string> {
    const admin = await requireAdmin(services, request);
    const userId = assertUserId(param);
    if (userId === admin.user.userId) throw new FreeholdError('bad_request', ownsInstead);
    if (!(await services.accounts.get(userId))) throw new FreeholdError('not_found', 'No such user');
    return userId;
  }

  app.put('/acctapi/users/:user_id/password', {
    schema: {
      tags: ['admin'], summary: "Set another user's password (admin); their sign-ins end",
      params: OtherUser, body: Type.Object({ password: Type.String({ maxLength: 1024 }) }),
      response: { 200: Type.Object({ user_id: Type.String(), changed: Type.Boolean(), signed_out: Type.Integer() }) },
    },
  }, async (request) => {
    const userId = await otherUser(request, request.params.user_id, 'Change your own password with your own form (current password, then the new one)');
    await services.accounts.setPassword(userId, request.body.password);
    const ended = await endSignIns(services.sessions, services.tokens, userId);
    request.log.info({ user: userId, ended }, 'password set by the admin');
    return { user_id: userId, changed: true, signed_out: ended };
  });

  app.delete('/acctapi/users/:user_id', {
    schema: {
      tags: ['admin'], summary: 'Remove another user (admin) with everything they stored here: records, files, apps, tokens',
      params: OtherUser, response: { 200: Type.Object({ user_id: Type.String(), removed: Type.Boolean(), tables: Type.Integer(), files: Type.Integer() }) },
    },
  }, async (request) => {
    const userId = await otherUser(request, request.params.user_id,
      'An admin cannot remove their own account here (the server would be left without its admin); from a shell: freehold user remove <id> --yes');
    const { removeUser } = await import('../../core/accounts/remove-user.js');
    const r = await removeUser(services, userId);
    request.log.info({ user: userId, tables: r.tables, files: r.files }, 'user removed by the admin');
    return { user_id: userId, removed: true, tables: r.tables, files: r.files };
  });

  app.post('/acctapi/users/:user_id/2fa-reset', {
    schema: {
      tags: ['admin'], summary: "Turn off another user's two-factor sign-in (admin), for a lost phone and lost recovery codes",
      params: OtherUser, response: { 200: Type.Object({ user_id: Type.String(), had_two_factor: Type.Boolean() }) },
    },
  }, async (request) => {
    const userId = await otherUser(request, request.params.user_id, 'Turn off your own two-factor sign-in with your own form (password and a code)');
    const had = await services.twoFactor.disable(userId);
    request.log.info({ user: userId, had }, 'two-factor sign-in reset by the admin');
    return { user_id: userId, had_two_factor: had };
  });

  app.get('/acctapi/generateAppPassword', {
    schema: {
      tags: ['account'], summary: 'Make a one-time app password for an app served elsewhere',
      querystring: Type.Object({
        app_name: Type.String({ maxLength: 35 }),
        expiry: Type.Optional(Type.String({ pattern: '^\\d{1,16}$', description: 'When the password expires, epoch ms (default 30 days)' })),
        one_device: Type.Optional(Type.String({ maxLength: 5 })),
      }),
      response: { 200: Type.Object({ app_password: Type.String(), app_name: Type.String(), expiry: Type.Number() }) },
    },
  }, async (request) => {
    const { userId } = await requireAccount(services, request);
    const appName = assertAppName(request.query.app_name, true);
    const now = Date.now();
    const expiry = request.query.expiry === undefined ? now + DEFAULT_APP_PASSWORD_TTL_MS : Number(request.query.expiry);
    if (expiry <= now) throw new FreeholdError('bad_request', 'expiry must be in the future (epoch ms)');
    const ttl = Math.min(expiry - now, MAX_TOKEN_TTL_MS);
    await services.apps.admitAccess(userId, appName);
    const { password, expiresAt } = await services.tokens.issueAppPassword(userId, appName, ttl, request.query.one_device !== 'false');
    return { app_password: password, app_name: appName, expiry: expiresAt };
  });

  const TokenInfo = Type.Object({
    id: Type.String(), kind: Type.String(), app_name: Type.String(), created_at: Type.Number(), expires_at: Type.Number(),
    session_bound: Type.Boolean({ description: "A page token of a signed-in owner's app pages; ends with that sign-in" }),
    display_name: Type.Optional(Type.String({ description: "The app's name for people, when it is installed here" })),
  });

  app.get('/acctapi/tokens', {
    schema: { tags: ['account'], summary: 'Live app tokens and app passwords of the signed-in owner', response: { 200: Type.Object({ tokens: Type.Array(TokenInfo) }) } },
  }, async (request) => {
    const { userId } = await requireAccount(services, request);
    const [tokens, apps] = await Promise.all([services.tokens.listFor(userId), services.apps.list(userId)]);
    const names = new Map(apps.map((a) => [a.appName, a.displayName]));
    return {
      tokens: tokens.map((t) => ({
        id: t.id, kind: t.kind, app_name: t.appName, created_at: t.createdAt, expires_at: t.expiresAt, session_bound: t.sessionBound,
        ...(names.get(t.appName) ? { display_name: names.get(t.appName) } : {}),
      })),
    };
  });

  app.delete('/acctapi/tokens/:id', {
    schema: { tags: ['account'], summary: 'Revoke one app token or app password', params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
      response: { 200: Type.Object({ id: Type.String(), revoked: Type.Boolean() }) } },
  }, async (request) => {
    const { userId } = await requireAccount(services, request);
    if (!(await services.tokens.revokeById(userId, request.params.id))) throw new FreeholdError('not_found', 'No such token');
    return { id: request.params.id, revoked: true };
  });
}
