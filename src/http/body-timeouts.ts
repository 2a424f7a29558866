import type { FastifyInstance } from 'fastify';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How the arrival of request bodies is policed (config.ts: FREEHOLD_BODY_*). */
export interface BodyTimeouts {
  /** Longest silence while a body is coming, ms; 0: none. */
  idleMs: number;
  /** Fewest bytes a second a body must bring, judged over each window; 0: none. */
  minBytesPerSec: number;
  /** The span the rate is judged over, ms; also the grace a body gets before it is first judged. */
  rateWindowMs: number;
}

/**
 * A request body must keep coming. Node waits for the rest of a body for as long as the
 * client likes (Fastify sets the server's requestTimeout to 0), so a client that sends
 * headers and then stalls holds a socket for good, and enough of them use up the
 * server's file descriptors. A limit on the whole request would also cut off honest
 * large uploads over slow links (an import archive may be 20 GB), so two rules watch
 * how the body arrives rather than how long it takes in all:
 *
 * - Silence: while a body is being received, its socket is closed once no byte has come
 *   for `idleMs`. Once the body is in, the limit is lifted, so slow work on a received
 *   request is never cut short, and after the reply the socket is Node's keep-alive
 *   handling's again.
 * - Trickle: a client sending a byte just often enough to beat the silence rule would
 *   still hold its socket for as long as its body lasts (hours, for a large declared
 *   length). So a body must also bring at least `minBytesPerSec` on average over each
 *   window of `rateWindowMs` (the first one is its grace), or its socket is closed. The
 *   default (500 B/s) is far below any working link, a dial-up modem included.
 *
 * The rate is read from the socket's byte count by one timer for every body in progress,
 * which runs only while there are some: a request costs a set insertion, not a timer.
 * A body the server itself is slow to take (received bytes waiting in the request
 * stream when the timer looks) starts its window again: only the client's pace counts.
 */
export function registerBodyTimeouts(app: FastifyInstance, rules: BodyTimeouts): void {
  const trickles = rules.minBytesPerSec > 0 && rules.rateWindowMs > 0 ? new TrickleWatch(rules.minBytesPerSec, rules.rateWindowMs) : null;
  if (rules.idleMs <= 0 && !trickles) return;
  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    const socket = raw.socket as typeof raw.socket | undefined;
    // No socket timers on an injected request (light-my-request): nothing to hold there.
    if (!raw.complete && typeof socket?.setTimeout === 'function' && expectsBody(raw.headers)) {
      const onIdle = () => {
        request.log.info({ idleMs: rules.idleMs }, 'request body stopped coming: connection closed');
        cutOff(socket, reply.raw, `The request body stopped coming for ${Math.round(rules.idleMs / 1000)} s`);
      };
      if (rules.idleMs > 0) {
        socket.setTimeout(rules.idleMs);
        // On the request: Node's own listener on the socket destroys it unless the request (or reply, or server) listens.
        raw.once('timeout', onIdle);
      }
      const watched = trickles?.watch(raw, socket, (received, ms) => {
        request.log.info({ received, ms }, 'request body arriving too slowly: connection closed');
        cutOff(socket, reply.raw, `The request body came too slowly: ${received} bytes in ${Math.round(ms / 1000)} s`);
      });
      // A body that never ends (the client went away) is dropped by the watch with its socket.
      raw.once('end', () => {
        if (watched) trickles!.forget(watched);
        raw.off('timeout', onIdle);
        // A reply sent before the body was read (a refusal) has set the keep-alive timeout: keep it.
        if (rules.idleMs > 0 && !reply.raw.writableFinished) socket.setTimeout(0);
      });
    }
    done();
  });
}

interface Watched {
  raw: IncomingMessage;
  socket: Socket;
  /** socket.bytesRead and the time when the current window began. */
  bytes: number;
  since: number;
  tooSlow: (received: number, ms: number) => void;
}

/** The bodies in progress, judged every half window by one unref'd timer. */
class TrickleWatch {
  private readonly bodies = new Set<Watched>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly minBytesPerSec: number, private readonly windowMs: number) {}

  watch(raw: IncomingMessage, socket: Socket, tooSlow: Watched['tooSlow']): Watched {
    const w: Watched = { raw, socket, bytes: socket.bytesRead, since: performance.now(), tooSlow };
    this.bodies.add(w);
    if (!this.timer) {
      // Checked every half window, so each body is judged over a span of one to one and a half windows.
      this.timer = setInterval(() => this.judge(), Math.max(1, Math.floor(this.windowMs / 2)));
      this.timer.unref();
    }
    return w;
  }

  forget(w: Watched): void {
    this.bodies.delete(w);
  }

  private judge(): void {
    if (this.bodies.size === 0) {
      // Stopped here rather than when the last body ends: under load the set empties and
      // fills again every few requests, and one spare tick is cheaper than a timer each time.
      clearInterval(this.timer!);
      this.timer = null;
      return;
    }
    const now = performance.now();
    for (const w of this.bodies) {
      if (w.raw.complete || w.socket.destroyed) {
        this.forget(w);
        continue;
      }
      if (w.raw.readableLength > 0) {
        // Received but not yet taken: the server is the one behind (a slow disk or object
        // store holding up its reading), not the client. Its window starts again.
        w.bytes = w.socket.bytesRead;
        w.since = now;
        continue;
      }
      const ms = now - w.since;
      if (ms < this.windowMs) continue;
      // bytesRead counts the socket's every byte: for a body still coming, that is this body's.
      const received = w.socket.bytesRead - w.bytes;
      if (received < (this.minBytesPerSec * ms) / 1000) {
        this.forget(w);
        w.tooSlow(received, Math.round(ms));
      } else {
        w.bytes = w.socket.bytesRead;
        w.since = now;
      }
    }
  }
}

/**
 * Ends a connection whose request body failed to come: with a 408 and a JSON error when
 * no answer has begun (the client learns why, rather than seeing the connection reset),
 * written on the socket itself since the request is still being read; then the socket
 * goes, at once or after a second for the answer to leave, whether or not the client reads it.
 */
function cutOff(socket: Socket, res: ServerResponse, message: string): void {
  if (res.headersSent || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: 'request_timeout', message });
  socket.end(`HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
    + `Connection: close\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

function expectsBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
