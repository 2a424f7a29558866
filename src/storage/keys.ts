import { FreeholdError } from '../core/errors.js';

/**
 * Blob keys, the same rules for every BlobStore: `/`-separated segments, none empty,
 * `.` or `..`, none with NUL or backslash, none starting with the temp prefix that
 * stores use for partial writes.
 */
export const TMP_PREFIX = '.tmp-';
const MAX_KEY_LENGTH = 1024;
const MAX_SEGMENT_BYTES = 255;

function badKey(message: string): FreeholdError {
  return new FreeholdError('bad_request', message);
}

/** Splits and checks a key (or, with `allowEmpty`, a prefix) into safe path segments. */
export function keySegments(key: unknown, allowEmpty = false): string[] {
  if (typeof key !== 'string' || key.length > MAX_KEY_LENGTH) throw badKey('Invalid blob key');
  if (allowEmpty && key === '') return [];
  // A prefix may end with one '/'; a bare '/' is refused rather than read as "everything".
  const trimmed = allowEmpty && key.endsWith('/') ? key.slice(0, -1) : key;
  if (trimmed === '') throw badKey('Invalid blob key: empty');
  const segs = trimmed.split('/');
  for (const s of segs) {
    if (s === '' || s === '.' || s === '..') throw badKey('Invalid blob key: empty, "." or ".." segment');
    if (s.includes('\0') || s.includes('\\')) throw badKey('Invalid blob key: NUL or backslash');
    if (s.startsWith(TMP_PREFIX)) throw badKey(`Invalid blob key: segments may not start with ${TMP_PREFIX}`);
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) throw badKey('Invalid blob key: segment too long');
  }
  return segs;
}
