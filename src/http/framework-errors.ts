import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Errors found before a request reaches a route, in CEPS.md §1's shape
 * (`{ error, message }`, a machine code) instead of Fastify's and Node's own
 * (`{ error: "Bad Request", code, statusCode }`), which also echoed the whole URL,
 * query-string secrets included.
 */

/** The router's: a path that does not percent-decode, or a path parameter over its length cap. */
export function frameworkError(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const [error, message] = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
    ? ['invalid_name', 'A name or id in the path is too long']
    : err.code === 'FST_ERR_BAD_URL'
      ? ['bad_request', 'The path is not valid percent-encoding']
      : ['bad_request', 'The request could not be routed'];
  void reply.code(400).type('application/json; charset=utf-8').send({ error, message });
}

/** Raw HTTP the parser refused (headers too large, a malformed request line, a timeout): the connection then closes. */
export function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset or already closed connection has no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, error, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'Request Timeout', 'timeout', 'The request took too long to arrive']
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'too_large', 'The request headers are too large']
      : [400, 'Bad Request', 'bad_request', 'Malformed HTTP request'];
  const body = JSON.stringify({ error, message });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}
