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
 * would take the browser to another site.
 */
export function safeNext(next) {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/home';
  return next;
}
