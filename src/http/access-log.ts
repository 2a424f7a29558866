import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/**
 * One access-log line per request, written when it completes (method, redacted URL,
 * address, status, time), instead of Fastify's default two ("incoming request" and
 * "request completed"). Measured (bench/, README "Performance"): at the default
 * `info` level each line costs several µs of serialising and redaction, and request
 * logging took ~25-30% of CEPS read throughput; the second line carried nothing the
 * first did not. Errors are still logged in full.
 */
export class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
