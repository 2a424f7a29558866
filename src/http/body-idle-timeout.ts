import type { FastifyInstance } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * A request body must keep coming. Node waits for the rest of a body for as long as the
 * client likes (Fastify sets the server's requestTimeout to 0), so a client that sends
 * headers and then stalls holds a socket for good, and enough of them use up the
 * server's file descriptors. A limit on the whole request would also cut off honest
 * large uploads over slow links (an import archive may be 20 GB), so the limit is on
 * silence: while a body is being received, its socket is closed once no byte has come
 * for `idleMs`. Once the body is in, the limit is lifted, so slow work on a received
 * request is never cut short, and after the reply the socket is Node's keep-alive
 * handling's again.
 */
export function registerBodyIdleTimeout(app: FastifyInstance, idleMs: number): void {
  if (idleMs <= 0) return;
  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    const socket = raw.socket as typeof raw.socket | undefined;
    // No socket timers on an injected request (light-my-request): nothing to hold there.
    if (!raw.complete && typeof socket?.setTimeout === 'function' && expectsBody(raw.headers)) {
      // With no 'timeout' listener on the request, the reply or the server, Node destroys the socket.
      socket.setTimeout(idleMs);
      raw.once('end', () => {
        // A reply sent before the body was read (a refusal) has set the keep-alive timeout: keep it.
        if (!reply.raw.writableFinished) socket.setTimeout(0);
      });
    }
    done();
  });
}

function expectsBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
