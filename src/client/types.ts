/** Wire types of the CEPS/FEPS API as the SDK sees them (CEPS.md §3, §7). */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Fields the server sets on every stored record. */
export interface RecordMeta {
  _id: string;
  _date_created: number;
  _date_modified: number;
}

/** A record as read back: the app's fields plus the reserved ones. */
export type StoredRecord<T extends object = JsonObject> = T & RecordMeta & { [reserved: `_${string}`]: unknown };

export type WriteResult = RecordMeta;

export interface DeleteResult extends RecordMeta {
  success: true;
}

export interface PingResult {
  logged_in: boolean;
  user_id?: string;
  server_type: string;
  server_version: string;
  ceps_version: string;
}

/** Query language of CEPS.md §3: equality, comparison and logic operators, dotted paths. */
export type Condition = JsonValue | {
  $eq?: JsonValue; $ne?: JsonValue; $lt?: JsonValue; $lte?: JsonValue; $gt?: JsonValue; $gte?: JsonValue;
  $in?: JsonValue[]; $nin?: JsonValue[]; $exists?: boolean; $regex?: string; $not?: Condition;
};
export interface Filter {
  $and?: Filter[];
  $or?: Filter[];
  [field: string]: Condition | Filter[] | undefined;
}

export type Sort = Record<string, 1 | -1>;

/** The GET form: each parameter is an equality filter, plus the reserved ones. */
export interface QueryParams {
  [field: string]: string | number | boolean | undefined;
  _modified_after?: number;
  _modified_before?: number;
  _count?: number;
  _skip?: number;
}

/** The POST form. */
export interface PostQuery {
  q?: Filter;
  sort?: Sort;
  count?: number;
  skip?: number;
  /** Read records another user shared with this app's user. */
  ownerId?: string;
  permissionName?: string;
}

export type QueryOptions = { params: QueryParams } | PostQuery;

export interface Permission {
  name: string;
  type: string;
  table_id: string[];
  description?: string;
  requestor_app: string;
  granted: boolean;
  grantees?: string[];
  return_fields?: string[];
  search_fields?: string[];
}

export interface UploadOptions {
  /** Defaults to the Blob's own name (a File), else required. */
  fileName?: string;
  targetFolder?: string;
  doNotOverWrite?: boolean;
  /** The app's own fields, merged onto the `<app>.files` record. */
  data?: JsonObject;
  /** MIME type when uploading bytes rather than a typed Blob. */
  contentType?: string;
}

/**
 * The `<app>.files` record of an upload: `_id` is the file's path; the app's own `data`
 * fields beside the ones the server sets (named as freezr names them, plus where the
 * bytes are).
 */
export type UploadResult = RecordMeta & {
  _mime_type: string;
  /** Lower case, without the dot; '' when the name has none. */
  _file_extension: string;
  _file_size: number;
  _UploadStatus: 'complete';
  _blob_id: string;
  [field: string]: unknown;
};

export interface TokenResponse {
  access_token: string;
  token_type: string;
  user_id: string;
  app_name: string;
  expires_in: number;
}
