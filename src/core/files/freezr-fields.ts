/**
 * Fields the server sets on every file record (`<app>.files`) besides its own, named as
 * freezr names them: apps written for freezr show a file's size or type from these and
 * query by them (`{ _file_extension: 'pdf' }`). Clients cannot set them (`_` names are
 * refused in client input, `options.data` included); an archive may bring them back in
 * file records only.
 */
export const FILE_RECORD_SERVER_FIELDS: ReadonlySet<string> = new Set(['_mime_type', '_file_extension', '_file_size', '_UploadStatus']);

export interface FreezrFileFields {
  _mime_type: string;
  /** Lower case, without the dot; '' when the name has no extension. */
  _file_extension: string;
  _file_size: number;
  /** freezr says 'wip' while bytes arrive; freehold writes the record only once they are all stored. */
  _UploadStatus: 'complete';
}

export function freezrFileFields(path: string, size: number, mimeType: string): FreezrFileFields {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return {
    _mime_type: mimeType,
    _file_extension: dot > 0 ? name.slice(dot + 1).toLowerCase() : '',
    _file_size: size,
    _UploadStatus: 'complete',
  };
}
