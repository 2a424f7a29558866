import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { FreeholdError } from '../../core/errors.js';
import { loginRateLimit } from '../rate-limits.js';

/**
 * OAuth 2 token endpoint for apps served elsewhere: a one-time app password (made by
 * the owner) is traded for an app-scoped bearer token. JSON or form bodies.
 */
export async function oauthRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  app.post('/oauth/token', {
    config: { rateLimit: loginRateLimit(services) },
    schema: {
      tags: ['oauth'], summary: 'Trade an app password for an access token (grant_type=password)',
      consumes: ['application/json', 'application/x-www-form-urlencoded'],
      body: Type.Object({
        grant_type: Type.String({ maxLength: 50 }),
        username: Type.String({ maxLength: 100 }),
        password: Type.String({ maxLength: 300 }),
        client_id: Type.String({ maxLength: 35 }),
      }, { additionalProperties: true }),
      response: { 200: Type.Object({
        access_token: Type.String(), token_type: Type.String(), user_id: Type.String(), app_name: Type.String(), expires_in: Type.Number(),
      }) },
    },
  }, async (request, reply) => {
    const { grant_type, username, password, client_id } = request.body;
    if (grant_type !== 'password') throw new FreeholdError('bad_request', 'grant_type must be "password"');
    const { token, claims } = await services.tokens.exchangeAppPassword(username, password, client_id);
    reply.header('Cache-Control', 'no-store');
    return {
      access_token: token, token_type: 'Bearer', user_id: claims.userId, app_name: claims.appName,
      expires_in: Math.max(0, Math.floor((claims.expiresAt - Date.now()) / 1000)),
    };
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
