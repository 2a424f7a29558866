import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FreeholdError, ErrorStatus } from '../core/errors.js';
import { mainOrigin } from './app-origin.js';
import { sendErrorPage, wantsErrorPage } from './error-page.js';

export interface ErrorBody {
  error: string;
  message: string;
  details?: unknown;
  /** OAuth's name for the message, on the token endpoint only (RFC 6749 §5.2). */
  error_description?: string;
}

/**
 * The token endpoint speaks OAuth (RFC 6749 §5.2) also where the request never reached
 * its handler (a malformed body): `invalid_request` for our `bad_request`, and the
 * message again as `error_description`, which OAuth client libraries show.
 */
function asOAuthError(request: FastifyRequest, status: number, body: ErrorBody): void {
  if (request.routeOptions.url !== '/oauth/token' || status >= 500) return;
  if (body.error === 'bad_request' || body.error === 'unsupported_media_type') body.error = 'invalid_request';
  body.error_description = body.message;
}

/** Fastify's own error codes mapped to ours, so clients see one vocabulary. */
const FASTIFY_CODES: Record<string, { code: string; status: number; message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'too_large', status: 413, message: 'Request body is too large' },
  FST_REQ_FILE_TOO_LARGE: { code: 'too_large', status: 413, message: 'File is too large' },
  FST_FILES_LIMIT: { code: 'too_large', status: 413, message: 'Too many files' },
  FST_PARTS_LIMIT: { code: 'too_large', status: 413, message: 'Too many parts' },
  FST_FIELDS_LIMIT: { code: 'too_large', status: 413, message: 'Too many fields' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type', status: 415, message: 'Unsupported content type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'bad_request', status: 400, message: 'Invalid Content-Length' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'bad_request', status: 400, message: 'Body must not be empty when Content-Type is application/json' },
  // The parser also refuses valid JSON using these keys (prototype pollution), and does not say which it was.
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'bad_request', status: 400, message: 'Malformed JSON body (the keys __proto__ and constructor.prototype are refused too)' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { code: 'bad_request', status: 400, message: 'Expected a multipart/form-data body' },
};

/**
 * The multipart parser (busboy, under @fastify/multipart) reports a malformed body
 * (no boundary in the Content-Type, a body cut short) as a plain Error with no code or
 * status; unmapped, a client's broken upload became a 500. Its messages are the only
 * handle, so they are matched here, in the one place that maps library errors.
 */
const MALFORMED_MULTIPART = /^(Multipart: Boundary not found|Unsupported Content-Type\.|Unexpected end of (multipart data|form)|Malformed part header|.* terminated early due to unexpected end of multipart data)$/;

export function toErrorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof FreeholdError) {
    const body: ErrorBody = { error: err.code, message: err.message };
    if (err.details !== undefined) body.details = err.details;
    return { status: ErrorStatus[err.code], body };
  }
  const fe = err as Partial<FastifyError> & { validation?: unknown; validationContext?: string };
  if (fe && fe.validation) {
    return { status: 400, body: { error: 'bad_request', message: `Invalid ${fe.validationContext ?? 'input'}: ${fe.message ?? ''}`.trim() } };
  }
  if (fe && typeof fe.code === 'string' && FASTIFY_CODES[fe.code]) {
    const m = FASTIFY_CODES[fe.code]!;
    return { status: m.status, body: { error: m.code, message: m.message ?? fe.message ?? m.code } };
  }
  if (err instanceof Error && fe.statusCode === undefined && MALFORMED_MULTIPART.test(err.message)) {
    return { status: 400, body: { error: 'bad_request', message: 'Malformed multipart/form-data body' } };
  }
  if (fe && fe instanceof SyntaxError) {
    return { status: 400, body: { error: 'bad_request', message: 'Malformed JSON body' } };
  }
  const status = typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
  if (status === 429) return { status, body: { error: 'rate_limited', message: 'Too many requests; try again later' } };
  if (status < 500) {
    return { status, body: { error: status === 404 ? 'not_found' : status === 413 ? 'too_large' : 'bad_request', message: safeMessage(fe?.message) } };
  }
  return { status: 500, body: { error: 'internal', message: 'Internal server error' } };
}

/** Client-error messages from libraries are kept, but never with file paths in them. */
function safeMessage(message: string | undefined): string {
  if (!message) return 'Bad request';
  return message.replace(/(\/[\w.-]+){2,}/g, '<path>').slice(0, 300);
}

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body } = toErrorBody(err);
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/** Node reports a request body cut off by the client as `aborted` (ECONNRESET) on the request. */
function clientWentAway(err: unknown, request: FastifyRequest): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  const gone = request.raw.aborted || request.raw.socket?.destroyed === true;
  return gone && err instanceof Error && (err.message === 'aborted' || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE');
}

export function registerErrorHandling(app: FastifyInstance): void {
  // Read when needed: a server started on port 0 learns its address only once listening.
  const homeUrl = () => `${mainOrigin(app.services.config)}/home`;
  app.setErrorHandler((err, request: FastifyRequest, reply) => {
    const { status, body } = toErrorBody(err);
    // Only the server's own failures are errors: a full quota (507) is the owner's
    // state, and a client that hung up mid-body has no one left to answer.
    if (status >= 500 && body.error !== 'quota_exceeded' && !clientWentAway(err, request)) request.log.error({ err }, 'request failed');
    else request.log.info({ code: body.error, status }, 'request refused');
    if (reply.sent) return;
    if (status === 503) reply.header('Retry-After', '30');
    const size = (err instanceof FreeholdError && err.code === 'range_not_satisfiable') ? (err.details as { size?: number })?.size : undefined;
    if (typeof size === 'number') {
      reply.header('Content-Range', `bytes */${size}`);
      delete body.details;
    }
    asOAuthError(request, status, body);
    if (wantsErrorPage(request)) void sendErrorPage(reply, status, body, homeUrl());
    else void reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body = { error: 'not_found', message: `No route for ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` };
    if (wantsErrorPage(request)) void sendErrorPage(reply, 404, { ...body, message: 'There is no page at this address.' }, homeUrl());
    else void reply.code(404).type('application/json; charset=utf-8').send(body);
  });
}
