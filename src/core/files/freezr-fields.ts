/**
 * Fields the server sets on every file record (`<app>.files`), `_`-named so that every
 * plain name belongs to the app: an upload's `options.data` is stored as the app sent
 * it (`size`, `path`, `fileName`… included). The first four are named as freezr names
 * them (apps written for freezr show a file's size or type from these and query by
 * them: `{ _file_extension: 'pdf' }`); `_blob_id` says where the bytes are.
 *
 * Clients cannot set them: in `options.data` they are ignored (freezr: "cannot
 * overwrite them"), and other `_` names are refused as in any record. An archive may
 * bring them back in file records only.
 */
export const FILE_RECORD_SERVER_FIELDS: ReadonlySet<string> = new Set(['_mime_type', '_file_extension', '_file_size', '_UploadStatus', '_blob_id']);

export interface FileRecordServerFields {
  _mime_type: string;
  /** Lower case, without the dot; '' when the name has no extension. */
  _file_extension: string;
  _file_size: number;
  /** freezr says 'wip' while bytes arrive; freehold writes the record only once they are all stored. */
  _UploadStatus: 'complete';
  _blob_id: string;
}

export function fileRecordServerFields(path: string, size: number, mimeType: string, blobId: string): FileRecordServerFields {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return {
    _mime_type: mimeType,
    _file_extension: dot > 0 ? name.slice(dot + 1).toLowerCase() : '',
    _file_size: size,
    _UploadStatus: 'complete',
    _blob_id: blobId,
  };
}

/** An upload's `options.data` without the fields the server sets (anything else goes on to the record checks). */
export function withoutServerFileFields(data: unknown): unknown {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return data;
  return Object.fromEntries(Object.entries(data).filter(([key]) => !FILE_RECORD_SERVER_FIELDS.has(key)));
}

/**
 * A file record's bytes' id: `_blob_id`; records written before it was named so carry
 * `blob_id` (which the server then set over any app field of that name).
 */
export function blobIdOf(record: Record<string, unknown>): unknown {
  return record._blob_id !== undefined ? record._blob_id : record.blob_id;
}

/** A file record's media type: `_mime_type`, or `content_type` in records from before it. */
export function mimeTypeOf(record: Record<string, unknown>): unknown {
  return record._mime_type !== undefined ? record._mime_type : record.content_type;
}
