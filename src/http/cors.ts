import type { FastifyInstance } from 'fastify';

const API_PREFIXES = ['/ceps/', '/feps/', '/oauth/token', '/oauth/revoke', '/public/'];

/**
 * Reply headers a page on another origin may read besides the CORS-safelisted ones: the
 * rate limit's (so an app can wait as told rather than guess) and a file's.
 */
const EXPOSED = 'Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Content-Disposition, Content-Range, Accept-Ranges';

/**
 * CORS for the bearer APIs only: apps served elsewhere call CEPS with a token, never
 * with cookies, so any origin may call, and credentials are never allowed.
 * Account and owner routes get no CORS headers at all.
 */
export function registerCors(app: FastifyInstance): void {
  const isApi = (url: string) => API_PREFIXES.some((p) => url.startsWith(p));
  // Callback style, not async: it runs on every request (a promise each is measurable on CEPS reads).
  app.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin;
    if (!origin || !isApi(request.url)) return done();
    reply.header('Access-Control-Allow-Origin', '*');
    reply.header('Vary', 'Origin');
    if (request.method !== 'OPTIONS') {
      reply.header('Access-Control-Expose-Headers', EXPOSED);
      return done();
    }
    reply.header('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE, OPTIONS');
    reply.header('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    reply.header('Access-Control-Max-Age', '600');
    // Answered here: a hook that replies does not call done().
    reply.code(200).send();
  });
}
