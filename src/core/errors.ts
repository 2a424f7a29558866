/**
 * Domain errors are named values: core code throws them, and the HTTP layer maps
 * each code to a status in one place (src/http/errors.ts). Messages are for people;
 * codes are for programs and never change meaning.
 */
export const ErrorStatus = {
  bad_request: 400,
  invalid_name: 400,
  invalid_query: 400,
  invalid_record: 400,
  invalid_manifest: 400,
  invalid_package: 400,
  unauthorized: 401,
  token_expired: 401,
  /** The password was right; the account also needs a TOTP or recovery code. */
  totp_required: 401,
  /** OAuth 2 token endpoint (RFC 6749 §5.2): a code or other grant that is invalid, used, expired or does not match. */
  invalid_grant: 400,
  /** OAuth 2 token endpoint: a parameter missing, repeated or malformed. */
  invalid_request: 400,
  /** OAuth 2 token endpoint: a grant_type the server does not offer. */
  unsupported_grant_type: 400,
  forbidden: 403,
  csrf: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  rate_limited: 429,
  quota_exceeded: 507,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ErrorStatus;

export class FreeholdError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable detail, e.g. the list of problems in a refused app package. */
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'FreeholdError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ErrorStatus[this.code];
  }
}

export const badRequest = (message: string, details?: unknown) => new FreeholdError('bad_request', message, details);
export const notFound = (message = 'Not found') => new FreeholdError('not_found', message);
export const forbidden = (message = 'Not allowed') => new FreeholdError('forbidden', message);
export const unauthorized = (message = 'Missing or invalid credentials') => new FreeholdError('unauthorized', message);
export const conflict = (message: string) => new FreeholdError('conflict', message);
export const tooLarge = (message: string) => new FreeholdError('too_large', message);
