// Calls to the account API from the owner's pages. Same-origin fetch sends the
// session cookie and the Origin header the server checks on state changes.

/** A refused call, carrying the server's `{error, message, details}` body. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{error?: string, message?: string, details?: unknown}} body
   */
  constructor(status, body) {
    super(body.message || defaultMessage(status));
    this.name = 'ApiError';
    this.status = status;
    this.code = body.error || 'error';
    /** @type {string[]} */
    this.details = Array.isArray(body.details) ? body.details.map(String) : [];
  }
}

/** A message for people when the server sent none (a proxy error page, say). */
export function defaultMessage(status) {
  if (status === 0) return 'Could not reach the server. Check your connection and try again.';
  if (status === 413) return 'That is too large for this server.';
  if (status === 429) return 'Too many attempts. Wait a minute and try again.';
  if (status >= 500) return 'The server had a problem. Try again in a moment.';
  return `The request failed (${status}).`;
}

/** Parses a reply body as JSON, or gives an empty object when it is not JSON. */
export function parseBody(text) {
  try {
    const value = JSON.parse(text);
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

/**
 * @param {string} path
 * @param {{method?: string, body?: unknown}} [options]
 * @returns {Promise<any>} the JSON reply
 */
export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, {});
  }
  const data = parseBody(await res.text());
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/**
 * When a call failed because the session ended (expired, or signed out in
 * another tab), goes to the sign-in page and returns true.
 */
export function redirectIfSignedOut(err) {
  if (!(err instanceof ApiError) || err.status !== 401) return false;
  // The owner is signing out here: calls still under way end with 401, and the sign-out
  // goes to the sign-in page itself, without "your session ended".
  if (!signingOut) location.assign(`/signin?next=${encodeURIComponent(location.pathname)}&reason=ended`);
  return true;
}

let signingOut = false;

/** Marks the page as signing out (true) or not (false: the sign-out failed). */
export function setSigningOut(on) {
  signingOut = on;
}
