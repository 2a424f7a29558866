import { CepsError, errorFromResponse } from './errors.js';
import type {
  DeleteResult, Filter, JsonObject, Permission, PingResult, QueryOptions, QueryParams, StoredRecord,
  TokenResponse, UploadOptions, UploadResult, WriteResult,
} from './types.js';

export { CepsError } from './errors.js';
export type * from './types.js';

export interface ClientOptions {
  /** The server's base URL, e.g. `https://me.example.org`. */
  baseUrl: string;
  /** An app token (Bearer) for (user, app). */
  token: string;
  /** The app the token belongs to; names its default table. */
  appName: string;
  /** The token's user; needed only for `fileUrl`. */
  userId?: string;
  /** Replaces the global fetch (tests, proxies, retries). */
  fetch?: typeof fetch;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * A typed client for one app's data on a freehold (or other CEPS) server.
 *
 * Table names follow freezr's rule so that names read the same in pages and
 * scripts: a name with a dot is a full app table (`com.example.notes.tags`), a name
 * without one is a collection of this app (`tags` → `com.example.notes.tags`), and
 * `''` is the app's default table.
 */
export class FreeholdClient {
  readonly baseUrl: string;
  readonly appName: string;
  readonly userId: string | undefined;
  readonly #token: string;
  readonly #fetch: typeof fetch;

  constructor(opts: ClientOptions) {
    if (!opts.baseUrl) throw new TypeError('baseUrl is required');
    if (!opts.token) throw new TypeError('token is required');
    if (!opts.appName) throw new TypeError('appName is required');
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.appName = opts.appName;
    this.userId = opts.userId;
    this.#token = opts.token;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /**
   * Trades a one-time app password (made by the owner in the server's UI) for an
   * app token, as apps served elsewhere do (CEPS.md §7).
   */
  static async fromAppPassword(opts: {
    baseUrl: string; userId: string; appPassword: string; appName: string; fetch?: typeof fetch;
  }): Promise<FreeholdClient> {
    const body = { grant_type: 'password', username: opts.userId, password: opts.appPassword, client_id: opts.appName };
    return FreeholdClient.#fromTokenRequest(opts, body, opts.userId);
  }

  /**
   * Step one of the authorization-code flow with PKCE (CEPS.md §7): where to send the
   * owner's browser, and the verifier and state to keep until the answer comes back to
   * `redirectUri` (https, loopback http, or the app's own reverse-domain scheme).
   * Uses Web Crypto, so it runs in browsers and in Node alike.
   */
  static async authorizationRequest(opts: { baseUrl: string; appName: string; redirectUri: string; state?: string }): Promise<{ url: string; verifier: string; state: string }> {
    const verifier = base64url(globalThis.crypto.getRandomValues(new Uint8Array(32)));
    const challenge = base64url(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
    const state = opts.state ?? base64url(globalThis.crypto.getRandomValues(new Uint8Array(16)));
    const q = new URLSearchParams({
      response_type: 'code', client_id: opts.appName, redirect_uri: opts.redirectUri,
      code_challenge: challenge, code_challenge_method: 'S256', state,
    });
    return { url: `${opts.baseUrl.replace(/\/+$/, '')}/oauth/authorize?${q}`, verifier, state };
  }

  /**
   * Step two: trades the code the answer carried (check its `state` first) for a client.
   * A code works once, within a minute.
   */
  static async fromAuthorizationCode(opts: {
    baseUrl: string; appName: string; code: string; redirectUri: string; verifier: string; fetch?: typeof fetch;
  }): Promise<FreeholdClient> {
    const body = { grant_type: 'authorization_code', code: opts.code, redirect_uri: opts.redirectUri, client_id: opts.appName, code_verifier: opts.verifier };
    return FreeholdClient.#fromTokenRequest(opts, body);
  }

  static async #fromTokenRequest(opts: { baseUrl: string; appName: string; fetch?: typeof fetch }, body: object, userId?: string): Promise<FreeholdClient> {
    const f = opts.fetch ?? globalThis.fetch.bind(globalThis);
    const baseUrl = opts.baseUrl.replace(/\/+$/, '');
    const res = await send(f, `${baseUrl}/oauth/token`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(body) });
    const token = await readJson<TokenResponse>(res);
    if (typeof token.access_token !== 'string' || !token.access_token) {
      throw new CepsError('bad_response', res.status, 'The token reply has no access_token');
    }
    return new FreeholdClient({
      baseUrl, token: token.access_token, appName: token.app_name || opts.appName, userId: token.user_id || userId,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    });
  }

  /** The full app table for a collection or table name (see the class comment). */
  table(name = ''): string {
    if (!name) return this.appName;
    return name.includes('.') ? name : `${this.appName}.${name}`;
  }

  ping(): Promise<PingResult> {
    return this.#call('GET', '/ceps/ping');
  }

  write<T extends object>(table: string, record: T): Promise<WriteResult> {
    return this.#call('POST', `/ceps/write/${this.#t(table)}`, record);
  }

  read<T extends object = JsonObject>(table: string, id: string, opts: { ownerId?: string } = {}): Promise<StoredRecord<T>> {
    return this.#call('GET', withParams(`/ceps/read/${this.#t(table)}/${enc(id)}`, { owner_id: opts.ownerId }));
  }

  /**
   * Records of a table, newest change first unless sorted otherwise.
   * `{ params }` uses the GET form (equality filters); anything else the POST form.
   */
  query<T extends object = JsonObject>(table: string, opts: QueryOptions = {}): Promise<StoredRecord<T>[]> {
    const path = `/ceps/query/${this.#t(table)}`;
    if ('params' in opts) return this.#call('GET', withParams(path, opts.params));
    const body = {
      q: opts.q ?? {},
      ...(opts.sort ? { sort: opts.sort } : {}),
      ...(opts.count !== undefined ? { count: opts.count } : {}),
      ...(opts.skip !== undefined ? { skip: opts.skip } : {}),
      ...(opts.ownerId ? { owner_id: opts.ownerId } : {}),
      ...(opts.permissionName ? { permission_name: opts.permissionName } : {}),
    };
    return this.#call('POST', path, body);
  }

  /** Replaces every non-reserved field of an existing record; never creates. */
  update<T extends object>(table: string, id: string, record: T): Promise<WriteResult> {
    return this.#call('PUT', `/ceps/update/${this.#t(table)}/${enc(id)}`, record);
  }

  delete(table: string, id: string): Promise<DeleteResult> {
    return this.#call('DELETE', `/ceps/delete/${this.#t(table)}/${enc(id)}`);
  }

  /** Writes a record under an id of the caller's choosing, replacing any record already there. */
  upsert<T extends object>(table: string, id: string, record: T): Promise<WriteResult> {
    // The flag goes in the URL (freezr_core) and the body (freezrApiV2): servers read one or the other.
    return this.#call('POST', `/feps/write/${this.#t(table)}/${enc(id)}?upsert=true`, { _entity: record, upsert: true });
  }

  /** Sets some fields of one record, or of every record matching a filter. */
  updateFields(table: string, idOrFilter: string | Filter, fields: JsonObject): Promise<WriteResult | JsonObject> {
    if (typeof idOrFilter === 'string') {
      return this.#call('PUT', `/feps/update/${this.#t(table)}/${enc(idOrFilter)}`, { _entity: fields });
    }
    return this.#call('PUT', `/feps/update/${this.#t(table)}`, { q: idOrFilter, keys: fields });
  }

  /** Deletes every record matching a filter. The reply shape is the server's (e.g. `{ success, count }`). */
  deleteWhere(table: string, filter: Filter): Promise<JsonObject> {
    return this.#call('DELETE', `/feps/delete/${this.#t(table)}`, { q: filter });
  }

  /** Uploads a file into the app's files; resolves to its `<app>.files` record (`_id` = path). */
  async upload(file: Blob | Uint8Array, opts: UploadOptions = {}): Promise<UploadResult> {
    // Copied into a fresh Uint8Array: a Buffer may sit on a shared pool or SharedArrayBuffer, which Blob refuses.
    const blob = file instanceof Blob ? file : new Blob([new Uint8Array(file)], { type: opts.contentType ?? 'application/octet-stream' });
    const fileName = opts.fileName ?? (typeof File !== 'undefined' && blob instanceof File ? blob.name : undefined);
    if (!fileName) throw new TypeError('upload needs opts.fileName for data without a name');
    const { contentType: _contentType, ...rest } = opts;
    // Options before the file, so a streaming server knows the target path before the bytes arrive.
    const form = new FormData();
    form.append('options', JSON.stringify({ ...rest, fileName, overwrite: !opts.doNotOverWrite }));
    form.append('file', blob, fileName);
    return this.#call('PUT', `/feps/upload/${enc(this.appName)}`, form);
  }

  /**
   * The absolute URL of an uploaded file. With `withToken` the URL carries the app
   * token (`?fileToken=`), as `<img src>` in app pages needs; keep such URLs private
   * (`sharedFileUrl` gives one that reads that file alone).
   */
  fileUrl(fileId: string, opts: { withToken?: boolean; userId?: string; app?: string } = {}): string {
    const userId = opts.userId ?? this.userId;
    if (!userId) throw new TypeError('fileUrl needs the userId (pass it to the constructor or to fileUrl)');
    const path = fileId.replace(/^\/+/, '').split('/').map(enc).join('/');
    const url = `${this.baseUrl}/feps/userfiles/${enc(opts.app ?? this.appName)}/${enc(userId)}/${path}`;
    return opts.withToken ? withParams(url, { fileToken: this.#token }) : url;
  }

  /**
   * The absolute URL of an uploaded file carrying that file's own token (the server's
   * `getuserfiletoken`): it reads that one file and nothing else, and ends with this
   * client's token. For links and records, where `fileUrl(…, { withToken: true })` would
   * give away the app token.
   */
  async sharedFileUrl(fileId: string, opts: { userId?: string; app?: string } = {}): Promise<string> {
    const url = new URL(this.fileUrl(fileId, opts));
    const tokenPath = url.pathname.replace(/^\/feps\/userfiles\//, '/feps/getuserfiletoken/self/');
    const { fileToken } = await this.#call<{ fileToken: string }>('GET', tokenPath);
    return withParams(url.toString(), { fileToken });
  }

  /** Downloads an uploaded file's bytes. */
  async readFile(fileId: string, opts: { userId?: string; app?: string } = {}): Promise<Uint8Array> {
    const res = await send(this.#fetch, this.fileUrl(fileId, opts), { method: 'GET', headers: this.#headers() });
    if (res.status !== 200) throw await errorFromResponse(res);
    return new Uint8Array(await res.arrayBuffer());
  }

  /** Deletes an uploaded file and its `<app>.files` record. */
  deleteFile(fileId: string): Promise<{ _id: string; success: true }> {
    const url = new URL(this.fileUrl(fileId));
    return this.#call('DELETE', url.pathname);
  }

  /** The calling app's permissions and whether each is granted. */
  permissions(): Promise<Permission[]> {
    return this.#call('GET', '/ceps/perms/get');
  }

  #t(table: string): string {
    return enc(this.table(table));
  }

  #headers(json = false): Record<string, string> {
    return { ...(json ? jsonHeaders() : { Accept: 'application/json' }), Authorization: `Bearer ${this.#token}` };
  }

  async #call<R>(method: Method, path: string, body?: object): Promise<R> {
    const init: RequestInit = { method };
    if (body instanceof FormData) {
      init.headers = this.#headers(); // fetch sets the multipart boundary
      init.body = body;
    } else if (body !== undefined) {
      init.headers = this.#headers(true);
      init.body = JSON.stringify(body);
    } else {
      init.headers = this.#headers();
    }
    return readJson<R>(await send(this.#fetch, this.baseUrl + path, init));
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function jsonHeaders(): Record<string, string> {
  return { Accept: 'application/json', 'Content-Type': 'application/json' };
}

function withParams(path: string, params: QueryParams | Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, String(v));
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function send(f: typeof fetch, url: string, init: RequestInit): Promise<Response> {
  try {
    return await f(url, init);
  } catch (cause) {
    throw new CepsError('network', 0, `Could not reach ${new URL(url).origin}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** CEPS success is status 200 with JSON, and nothing else (CEPS.md §1). */
async function readJson<R>(res: Response): Promise<R> {
  if (res.status !== 200) throw await errorFromResponse(res);
  const text = await res.text();
  try {
    return JSON.parse(text) as R;
  } catch {
    throw new CepsError('bad_response', res.status, 'The server replied 200 with a body that is not JSON');
  }
}

/** RFC 4648 §5 base64url without padding, as PKCE wants it; no Buffer, so it runs in browsers. */
function base64url(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
