import type { FastifyInstance } from 'fastify';

/**
 * Paths other origins may use as resources: the bearer APIs (apps served elsewhere),
 * public records and the client library. Everything else (owner pages, the account
 * API, app pages and files) is for its own origin only (Cross-Origin-Resource-Policy).
 */
const SHARED_PREFIXES = ['/ceps/', '/feps/', '/oauth/token', '/oauth/revoke', '/public/', '/lib/', '/@', '/.well-known/', '/openapi.json'];

/** Headers every reply carries. App pages set their own CSP and opener policy (see apps/serve.ts). */
export function registerSecurityHeaders(app: FastifyInstance): void {
  const secure = app.services.config.publicUrl.startsWith('https:');
  // Callback style, not async: this runs on every reply, and a promise per reply is measurable on CEPS reads.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    if (!reply.hasHeader('Referrer-Policy')) reply.header('Referrer-Policy', 'same-origin');
    if (!reply.hasHeader('X-Frame-Options')) reply.header('X-Frame-Options', 'DENY');
    // No page of ours is ever framed; a reply that set a CSP without saying so gets it added.
    const csp = reply.getHeader('Content-Security-Policy');
    if (csp === undefined) reply.header('Content-Security-Policy', "frame-ancestors 'none'");
    else if (!String(csp).includes('frame-ancestors')) reply.header('Content-Security-Policy', `${String(csp)}; frame-ancestors 'none'`);
    // A window this page opens, or that opens it, gets no handle on it unless it is
    // one of our own pages on the same origin with the same policy: in path mode that
    // keeps app pages (`same-origin-allow-popups`) from scripting the owner's pages.
    if (!reply.hasHeader('Cross-Origin-Opener-Policy')) reply.header('Cross-Origin-Opener-Policy', 'same-origin');
    if (!reply.hasHeader('Cross-Origin-Resource-Policy') && !SHARED_PREFIXES.some((p) => request.url.startsWith(p))) {
      reply.header('Cross-Origin-Resource-Policy', 'same-origin');
    }
    if (secure || request.protocol === 'https') reply.header('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    done(null, payload);
  });
}
