import type { FastifyInstance } from 'fastify';

/** Methods whose requests say nothing with a body: an empty one is no body, whatever the Content-Type. */
const BODYLESS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS']);

/**
 * Fastify refuses an empty body sent as `application/json` (400). freezr's client
 * library sends `DELETE /ceps/delete/…` exactly so (Content-Type set, no body), and
 * other CEPS clients copy it; on methods that carry no data an empty JSON body now means
 * no body. Anything else goes to Fastify's own parser (prototype-poisoning checks,
 * limits, the same errors), so POST and PUT with an empty JSON body are still 400.
 */
export function acceptEmptyJsonOnBodylessMethods(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' && BODYLESS.has(request.method)) {
      done(null, undefined);
      return;
    }
    // parseAs 'string' hands over a string; the union type is Fastify's for both parseAs kinds.
    json(request, body as string, done);
  });
}
