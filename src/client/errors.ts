/**
 * The one error type the SDK throws. `code` is the server's machine code from its
 * `{ error, message }` body (CEPS.md §1), or one of the SDK's own: `network` when
 * the server could not be reached (status 0), `bad_response` when a 200 reply is not
 * JSON, `http_<status>` when an error reply carries no code.
 */
export class CepsError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CepsError';
    this.code = code;
    this.status = status;
  }
}

/** Reads an error reply into a CepsError, tolerating bodies that are not JSON. */
export async function errorFromResponse(res: Response): Promise<CepsError> {
  const text = await res.text().catch(() => '');
  let code = `http_${res.status}`;
  let message = res.statusText || code;
  try {
    const body: unknown = JSON.parse(text);
    if (body && typeof body === 'object') {
      const { error, message: msg } = body as { error?: unknown; message?: unknown };
      if (typeof error === 'string') code = error;
      if (typeof msg === 'string') message = msg;
      else if (typeof error === 'string') message = error;
    }
  } catch {
    // Not JSON (a proxy's HTML page, say): keep the status-derived code.
  }
  return new CepsError(code, res.status, message);
}
