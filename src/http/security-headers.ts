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
  // Names in lower case, as Fastify and Node keep them: each lookup lower-cases the name
  // it is given, which for a name already in lower case returns that same (interned) string
  // instead of making a new one to look up (measured per reply on CEPS reads).
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff');
    if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'same-origin');
    if (!reply.hasHeader('x-frame-options')) reply.header('x-frame-options', 'DENY');
    // No page of ours is ever framed; a reply that set a CSP without saying so gets it added.
    const csp = reply.getHeader('content-security-policy');
    if (csp === undefined) reply.header('content-security-policy', "frame-ancestors 'none'");
    else if (!String(csp).includes('frame-ancestors')) reply.header('content-security-policy', `${String(csp)}; frame-ancestors 'none'`);
    // A window this page opens, or that opens it, gets no handle on it unless it is
    // one of our own pages on the same origin with the same policy: in path mode that
    // keeps app pages (`same-origin-allow-popups`) from scripting the owner's pages.
    if (!reply.hasHeader('cross-origin-opener-policy')) reply.header('cross-origin-opener-policy', 'same-origin');
    if (!reply.hasHeader('cross-origin-resource-policy') && !SHARED_PREFIXES.some((p) => request.url.startsWith(p))) {
      reply.header('cross-origin-resource-policy', 'same-origin');
    }
    if (secure || request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
    done(null, payload);
  });
}
