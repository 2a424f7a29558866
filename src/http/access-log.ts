import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { accessWriterOf, redactUrl, type AccessLine } from '../logger.js';

/**
 * One access-log line per request, written when it completes (request id, method,
 * redacted URL, address, status, time), instead of Fastify's default two ("incoming
 * request" and "request completed"). Measured (bench/, README "Performance"): at the
 * default `info` level the lines took ~20–30% of CEPS read throughput, mostly in
 * serialisers and the redaction pass; the line is therefore built from fields that
 * are safe by construction and written without either (logger.ts, accessWriterOf).
 * Errors are still logged in full through the request's own logger (redacted).
 */
export class AccessLog extends LogController {
  private access: ((line: AccessLine) => void) | undefined;

  constructor(private readonly root: Logger | undefined) {
    super();
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (error) {
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
      return;
    }
    if (!this.root || !this.root.isLevelEnabled('info')) return;
    this.access ??= accessWriterOf(this.root);
    this.access({
      reqId: String(request.id), method: request.method, url: redactUrl(request.url), ip: request.ip,
      statusCode: reply.statusCode, responseTime: reply.elapsedTime,
    });
  }
}
