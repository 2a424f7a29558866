// Client-side checks that mirror the server's rules, so people learn of a typo
// before a round trip. The server checks again; these only give faster feedback.

export const USER_ID = /^[a-z0-9-]{2,34}$/;
export const MIN_PASSWORD = 8;

/** The first problem with a new account's fields, or '' when they look fine. */
export function accountProblem(userId, password) {
  if (!USER_ID.test(userId)) return 'User names are 2–34 characters: lowercase letters, digits and dashes.';
  if (password.length < MIN_PASSWORD) return `Passwords need at least ${MIN_PASSWORD} characters.`;
  return '';
}

/**
 * Where to go after signing in: a path on this site only. `//host` and `/\host`
 * would take the browser to another site, and so would `/<tab>/host`, as URL parsing
 * drops tabs and newlines. So a control character or a backslash anywhere is refused,
 * and what the browser makes of the rest must still be this site.
 */
export function safeNext(next) {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.length > 3000) return '/home';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(next)) return '/home';
  try {
    if (new URL(next, location.origin).origin !== location.origin) return '/home';
  } catch {
    return '/home';
  }
  return next;
}
