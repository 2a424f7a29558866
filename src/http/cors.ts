import type { FastifyInstance } from 'fastify';

const API_PREFIXES = ['/ceps/', '/feps/', '/oauth/token', '/oauth/revoke', '/public/'];

/**
 * CORS for the bearer APIs only: apps served elsewhere call CEPS with a token, never
 * with cookies, so any origin may call, and credentials are never allowed.
 * Account and owner routes get no CORS headers at all.
 */
export function registerCors(app: FastifyInstance): void {
  const isApi = (url: string) => API_PREFIXES.some((p) => url.startsWith(p));
  app.addHook('onRequest', async (request, reply) => {
    if (!isApi(request.url)) return;
    const origin = request.headers.origin;
    if (!origin) return;
    reply.header('Access-Control-Allow-Origin', '*');
    reply.header('Vary', 'Origin');
    if (request.method === 'OPTIONS') {
      reply.header('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE, OPTIONS');
      reply.header('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      reply.header('Access-Control-Max-Age', '600');
      await reply.code(200).send();
    }
  });
}
