import type { FastifyInstance } from 'fastify';

/** Headers every reply carries. App pages add their own CSP (see apps/page.ts). */
export function registerSecurityHeaders(app: FastifyInstance): void {
  const secure = app.services.config.publicUrl.startsWith('https:');
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'same-origin');
    if (!reply.hasHeader('X-Frame-Options')) reply.header('X-Frame-Options', 'DENY');
    if (secure || request.protocol === 'https') reply.header('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    return payload;
  });
}
