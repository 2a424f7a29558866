import { FreeholdError } from '../errors.js';
import { blobIdOf } from './freezr-fields.js';

const SEGMENT = /^[^/\\\u0000-\u001f\u007f-\u009f]{1,200}$/;

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
  // Text only: a number or object would become a name nobody asked for ("[object Object]"),
  // and a folder given as a list would be dropped, putting the file somewhere else.
  if (folder !== undefined && folder !== null && typeof folder !== 'string') throw new FreeholdError('invalid_name', 'targetFolder must be text');
  if (typeof name !== 'string') throw new FreeholdError('invalid_name', 'fileName must be text');
  const f = typeof folder === 'string' && folder.trim() !== '' ? folder : '';
  return normaliseUserFilePath(f ? `${f}/${name}` : name);
}

/** BlobStore key of a user file in the first layout (bytes under their path), still read for old records. */
export function userFileKey(ownerId: string, appName: string, path: string): string {
  return `${ownerId}/files/${appName}/${path}`;
}

const BLOB_ID = /^[A-Za-z0-9_-]{16,64}$/;

/**
 * Where a file's bytes are. Each upload writes its bytes under a fresh id and then
 * commits the file record pointing at them, so the record is the one commit point:
 * a crash before it leaves unreferenced bytes (swept later), never a file whose
 * bytes and record disagree, and an overwrite keeps the old bytes until the new
 * record is in. Records from before this layout (no `_blob_id` nor `blob_id`) keep their old key.
 */
export function fileBlobKey(ownerId: string, appName: string, record: { _id: string } & Record<string, unknown>): string {
  const blobId = blobIdOf(record);
  return typeof blobId === 'string' && BLOB_ID.test(blobId)
    ? `${ownerId}/filedata/${appName}/${blobId}`
    : userFileKey(ownerId, appName, record._id);
}

/** Where all of an app's files' bytes are, in either layout (the trailing `/` keeps `com.a.b` from matching `com.a.b.c`). */
export function appFileBlobPrefixes(ownerId: string, appName: string): string[] {
  return [`${ownerId}/filedata/${appName}/`, `${ownerId}/files/${appName}/`];
}

export function newBlobKey(ownerId: string, appName: string, blobId: string): string {
  return `${ownerId}/filedata/${appName}/${blobId}`;
}
