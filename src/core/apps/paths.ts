/**
 * The one rule for paths inside an app: relative, `/`-separated, no way out.
 * Package entries, manifest file references and request paths all pass through
 * it, so a path that installs is a path that can be served and nothing else can.
 */

const MAX_PATH = 500;

/** Why `p` is not a safe path inside an app, or null when it is. */
export function relPathProblem(p: string): string | null {
  if (p.length === 0) return 'empty path';
  if (p.length > MAX_PATH) return `path longer than ${MAX_PATH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) return 'control character in path';
  if (p.includes('\\')) return 'backslash in path';
  if (p.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(p)) return 'drive letter in path';
  const segments = p.split('/');
  if (segments.includes('..')) return 'path escapes the app (..)';
  if (segments.some((s) => s === '' || s === '.')) return 'empty or "." segment in path';
  // Storage backends keep each segment as a file name, which most file systems cap at 255 bytes.
  if (segments.some((s) => Buffer.byteLength(s) > 255)) return 'path segment longer than 255 bytes';
  return null;
}

export function isSafeRelPath(p: string): boolean {
  return relPathProblem(p) === null;
}
