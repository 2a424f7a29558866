import type { FastifyInstance } from 'fastify';
import { FreeholdError } from '../core/errors.js';

/**
 * Requests that arrive while the server stops (after `close()` began, before the last
 * connection ends) are refused as every other refusal is: a JSON `{ error, message }`
 * with 503, `Retry-After` and `Connection: close`, so a client retries elsewhere or
 * later. (Fastify's own answer, which this replaces, had a shape of its own.) Nothing
 * of such a request is done.
 */
export function registerStopping(app: FastifyInstance): void {
  let stopping = false;
  app.addHook('preClose', (done) => {
    stopping = true;
    done();
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!stopping) return done();
    reply.header('Connection', 'close');
    done(new FreeholdError('unavailable', 'The server is stopping; try again in a moment'));
  });
}
