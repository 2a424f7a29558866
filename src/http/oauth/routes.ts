import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { FreeholdError } from '../../core/errors.js';
import type { TokenClaims } from '../../core/auth/tokens.js';
import { loginRateLimit } from '../rate-limits.js';
import { requireOwner } from '../auth.js';
import { checkAuthorization, describeRedirect, isCodeVerifier, redirectWith } from './authorization.js';

/**
 * OAuth 2 for apps served elsewhere (native, extension, another origin), two ways to an
 * app-scoped bearer token:
 * - `grant_type=password`: a one-time app password the owner made in the UI;
 * - `grant_type=authorization_code` with PKCE (RFC 6749 §4.1, RFC 7636): the app sends
 *   the owner to `/oauth/authorize`, the owner allows it on their own server's page,
 *   and the app trades the code it gets back, with its code verifier.
 * JSON or form bodies. The token endpoint answers refusals in OAuth's own words
 * (RFC 6749 §5.2), which OAuth client libraries read: `invalid_request` for a missing or
 * malformed parameter, `invalid_grant` for an app password or code that is wrong, used
 * or expired, `unsupported_grant_type`; all 400.
 */
export async function oauthRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  app.post('/oauth/token', {
    config: { rateLimit: loginRateLimit(services) },
    // A body that fails the schema is an OAuth invalid_request, said below.
    attachValidation: true,
    schema: {
      tags: ['oauth'], summary: 'Trade an app password (grant_type=password) or an authorization code with its PKCE verifier (grant_type=authorization_code) for an access token',
      consumes: ['application/json', 'application/x-www-form-urlencoded'],
      body: Type.Object({
        grant_type: Type.String({ maxLength: 50 }),
        client_id: Type.String({ maxLength: 35 }),
        // grant_type=password
        username: Type.Optional(Type.String({ maxLength: 100 })),
        password: Type.Optional(Type.String({ maxLength: 300 })),
        // grant_type=authorization_code
        code: Type.Optional(Type.String({ maxLength: 300 })),
        redirect_uri: Type.Optional(Type.String({ maxLength: 1000 })),
        code_verifier: Type.Optional(Type.String({ maxLength: 128 })),
      }, { additionalProperties: true }),
      response: { 200: Type.Object({
        access_token: Type.String(), token_type: Type.String(), user_id: Type.String(), app_name: Type.String(), expires_in: Type.Number(),
      }) },
    },
  }, async (request, reply) => {
    if (request.validationError) throw new FreeholdError('invalid_request', request.validationError.message);
    const body = request.body;
    let exchanged: { token: string; claims: TokenClaims };
    if (body.grant_type === 'password') {
      if (body.username === undefined || body.password === undefined) throw new FreeholdError('invalid_request', 'grant_type=password needs username and password');
      exchanged = await services.tokens.exchangeAppPassword(body.username, body.password, body.client_id).catch((err: unknown) => {
        throw err instanceof FreeholdError && err.code === 'unauthorized' ? new FreeholdError('invalid_grant', err.message) : err;
      });
    } else if (body.grant_type === 'authorization_code') {
      if (body.code === undefined || body.redirect_uri === undefined) throw new FreeholdError('invalid_request', 'grant_type=authorization_code needs code and redirect_uri');
      if (body.code_verifier === undefined) throw new FreeholdError('invalid_request', 'code_verifier is required: the PKCE verifier (43 to 128 characters of A-Z a-z 0-9 - . _ ~)');
      if (!isCodeVerifier(body.code_verifier)) throw new FreeholdError('invalid_request', 'code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)');
      exchanged = await services.tokens.redeemAuthCode(body.code, body.client_id, body.redirect_uri, body.code_verifier);
    } else {
      throw new FreeholdError('unsupported_grant_type', 'grant_type must be "password" or "authorization_code"');
    }
    const { token, claims } = exchanged;
    reply.header('Cache-Control', 'no-store');
    return {
      access_token: token, token_type: 'Bearer', user_id: claims.userId, app_name: claims.appName,
      expires_in: Math.max(0, Math.floor((claims.expiresAt - Date.now()) / 1000)),
    };
  });

  const AuthorizationFields = Type.Object({
    response_type: Type.Optional(Type.String({ maxLength: 50 })),
    client_id: Type.Optional(Type.String({ maxLength: 100 })),
    redirect_uri: Type.Optional(Type.String({ maxLength: 2000 })),
    code_challenge: Type.Optional(Type.String({ maxLength: 200 })),
    code_challenge_method: Type.Optional(Type.String({ maxLength: 20 })),
    state: Type.Optional(Type.String({ maxLength: 1000 })),
    scope: Type.Optional(Type.String({ maxLength: 1000 })),
    approve: Type.Optional(Type.Boolean()),
  }, { additionalProperties: true });

  // What the page shows (no `approve`), then the owner's answer: where to send the browser.
  app.post('/oauth/authorize', {
    schema: {
      tags: ['oauth'], summary: "The owner's answer to an authorization request (their own page calls it)",
      body: AuthorizationFields,
      response: { 200: Type.Object({
        app_name: Type.String(), redirect_to: Type.String(), redirect: Type.Optional(Type.String()),
        display_name: Type.Optional(Type.String({ description: "The app's name for people, when it is installed here" })),
      }) },
    },
  }, async (request, reply) => {
    const owner = await requireOwner(services, request);
    const { approve, ...params } = request.body;
    const asked = checkAuthorization(params);
    const installed = await services.apps.get(owner.user.userId, asked.appName);
    const shown = {
      app_name: asked.appName, redirect_to: describeRedirect(asked.redirectUri),
      ...(installed?.displayName ? { display_name: installed.displayName } : {}),
    };
    if (approve === undefined) return shown;
    reply.header('Cache-Control', 'no-store');
    if (!approve) return { ...shown, redirect: redirectWith(asked.redirectUri, { error: 'access_denied', state: asked.state }) };
    await services.apps.admitAccess(owner.user.userId, asked.appName);
    const code = await services.tokens.issueAuthCode(owner.user.userId, asked.appName, asked.redirectUri, asked.codeChallenge);
    return { ...shown, redirect: redirectWith(asked.redirectUri, { code, state: asked.state }) };
  });

  // RFC 7009: whoever holds a token may revoke it. The reply is the same whether or not it existed.
  app.post('/oauth/revoke', {
    config: { rateLimit: loginRateLimit(services) },
    schema: {
      tags: ['oauth'], summary: 'Revoke an access token (RFC 7009)',
      consumes: ['application/json', 'application/x-www-form-urlencoded'],
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 300 }) }, { additionalProperties: true }),
      response: { 200: Type.Object({ revoked: Type.Boolean() }) },
    },
  }, async (request) => {
    const check = await services.tokens.check(request.body.token, 'app');
    if (check.ok) await services.tokens.revoke(request.body.token);
    return { revoked: true };
  });
}
