import { FreeholdError } from '../errors.js';

const SEGMENT = /^[^/\\\u0000-\u001f\u007f]{1,200}$/;

/**
 * A user file's path inside an app's file space, from client input (folder + name,
 * or the path part of a userfiles URL). Refuses traversal in any spelling: `..`
 * segments, encoded dots that decode to them, backslashes, NUL and control chars.
 */
export function normaliseUserFilePath(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 1000) {
    throw new FreeholdError('invalid_name', 'Invalid file path');
  }
  if (/%2e|%2f|%5c|%00/i.test(raw)) throw new FreeholdError('invalid_name', 'Invalid file path: encoded separators or dots');
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.length > 20) throw new FreeholdError('invalid_name', 'Invalid file path');
  for (const s of segments) {
    if (s === '..' || !SEGMENT.test(s) || s.trim() !== s) {
      throw new FreeholdError('invalid_name', 'Invalid file path segment');
    }
  }
  return segments.join('/');
}

export function joinUserFilePath(folder: unknown, name: unknown): string {
  const f = typeof folder === 'string' && folder.trim() !== '' ? folder : '';
  return normaliseUserFilePath(f ? `${f}/${String(name)}` : String(name));
}

/** BlobStore key of a user file. */
export function userFileKey(ownerId: string, appName: string, path: string): string {
  return `${ownerId}/files/${appName}/${path}`;
}
