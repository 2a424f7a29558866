import type { FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';

/** How long, and for how many bytes, a refused body is read and dropped before the connection closes. */
export interface Lingering {
  ms: number;
  maxBytes: number;
}

export const DEFAULT_LINGERING: Lingering = { ms: 5_000, maxBytes: 64 * 1024 * 1024 };

/**
 * A body refused before it was read (413 too large, a parser error) is answered with
 * `Connection: close`: the server will not read the rest. Node then ends the socket as
 * soon as the answer is written, and closes it; the client, still sending its body,
 * has its next bytes answered with a reset, and a reset can discard the 413 before
 * the client has read it (measured: 2 to 5 in 10 fetches of a 12 MB write got EPIPE
 * instead of the JSON 413). So, like web servers' "lingering close", such a socket
 * sends the answer and its end, then goes on reading (and dropping) what the client
 * still sends, until the client closes its side, `ms` pass, or `maxBytes` more arrive.
 */
export function registerLingeringClose(app: FastifyInstance, lingering: Lingering = DEFAULT_LINGERING): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    const socket = request.raw.socket as Socket | null;
    if (socket && !request.raw.complete && String(reply.getHeader('connection') ?? '').toLowerCase() === 'close') {
      lingerOnClose(socket, lingering);
    }
    done(null, payload);
  });
}

/** Replaces the socket's destroySoon (what Node's HTTP server calls after a closing answer) with a lingering one. */
function lingerOnClose(socket: Socket, { ms, maxBytes }: Lingering): void {
  if ((socket as LingeringSocket)[LINGERS]) return;
  (socket as LingeringSocket)[LINGERS] = true;
  socket.destroySoon = function lingeringDestroySoon(this: Socket): void {
    this.end();
    const start = this.bytesRead;
    const stop = (): void => {
      clearInterval(watch);
      this.destroy();
    };
    // The HTTP parser keeps reading the body (and Node drops it: the request was dumped);
    // the socket's byte count says how much came since.
    const watch = setInterval(() => {
      if (this.bytesRead - start > maxBytes) stop();
    }, 100);
    watch.unref();
    const timer = setTimeout(stop, ms);
    timer.unref();
    this.once('end', stop);
    this.once('close', () => {
      clearInterval(watch);
      clearTimeout(timer);
    });
    this.resume();
  };
}

const LINGERS = Symbol('lingers');
type LingeringSocket = Socket & { [LINGERS]?: boolean };
