// @ts-check
/**
 * freehold's own implementation of freezr's page-side client: the global `freezr`
 * object (the freezrApiV2 shape), its legacy `freezr.ceps.*` / `freezr.feps.*`
 * callback forms and the promise-returning `freepr.*` form, so that apps written
 * for freezr run unmodified. Served at /lib/freezr.js as a classic script, after
 * the page wrapper has defined `freezrMeta` (CEPS.md §7).
 *
 * Conventions kept from freezr:
 *  - names: `collectionOrAppTable` with a dot is a full app table, otherwise a
 *    collection of the current app; an empty name is the app's default table;
 *  - every call sends `Authorization: Bearer <app token>` and JSON bodies; success
 *    is status 200 with JSON;
 *  - errors are Error objects; freehold adds `.code` (the server's machine code) and
 *    `.status` (HTTP status, 0 when the server could not be reached);
 *  - every method returns a Promise and also accepts a trailing `(err, result)`
 *    callback, in which case it returns nothing.
 */
(function () {
  'use strict';

  /**
   * @typedef {{ appName: string, appVersion?: string, appDisplayName?: string, appToken?: string,
   *   userId: string, adminUser?: boolean, serverVersion?: string, serverAddress?: string, homeUrl?: string, type?: string }} FreezrMeta
   * @typedef {Record<string, any>} Json   any: records are arbitrary app JSON
   * @typedef {Record<string, any>} Options any: freezr's option bags are open-ended
   * @typedef {Error & { code?: string, status?: number }} FreezrError
   * @typedef {(err: FreezrError | null, result?: any) => void} Callback
   * @typedef {{ appToken?: string | null, form?: boolean, text?: boolean }} RequestOptions
   */

  /** @type {any} */
  const win = window;

  // ---------------------------------------------------------------------------
  // Page context. freezrMeta may be a lexical global (`const freezrMeta = …` in the
  // wrapper), which is not a window property, so look it up by name first. It is
  // read on every call because freezr apps (and the stand-alone login flow) mutate it.
  // ---------------------------------------------------------------------------

  /** @returns {FreezrMeta} */
  function meta() {
    // @ts-ignore -- declared by the page wrapper, not by this file
    if (typeof freezrMeta !== 'undefined' && freezrMeta) return freezrMeta; // eslint-disable-line no-undef
    if (!win.freezrMeta) win.freezrMeta = { appName: '', userId: '' };
    return win.freezrMeta;
  }

  /** @param {string} name */
  function getCookie(name) {
    const prefix = name + '=';
    for (const part of document.cookie.split(';')) {
      const c = part.trim();
      if (!c.startsWith(prefix)) continue;
      // As freezr's: the value as the cookie holds it, not URL-decoded.
      return c.slice(prefix.length);
    }
    return '';
  }

  /**
   * The app token: an explicit option, then freezrMeta (what freehold's wrapper
   * sets), then the cookie freezr's own pages use.
   * @param {string | null | undefined} [explicit]
   */
  function appToken(explicit) {
    if (explicit) return explicit;
    const m = meta();
    if (m.appToken) return m.appToken;
    return m.userId ? getCookie('app_token_' + m.userId) : '';
  }

  // ---------------------------------------------------------------------------
  // Transport: one place that talks HTTP, so every method gets the same auth,
  // body encoding and error shape.
  // ---------------------------------------------------------------------------

  const PATHS_WITHOUT_TOKEN = ['/ceps/ping', '/public/query', '/oauth/token', '/acctapi/login'];

  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @returns {FreezrError}
   */
  function makeError(status, code, message) {
    /** @type {FreezrError} */
    const err = new Error(message || code);
    err.code = code;
    err.status = status;
    return err;
  }

  /** @param {string} path */
  function absoluteUrl(path) {
    if (/^https?:\/\//i.test(path)) return path;
    // Apps served from elsewhere (freezr's "not web based" mode) name their server here.
    const m = meta();
    if (freezr.app.isWebBased === false && m.serverAddress) return m.serverAddress.replace(/\/$/, '') + path;
    return path;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {any} [body]  JSON-able value, or FormData when opts.form
   * @param {RequestOptions} [opts]
   * @returns {Promise<any>}
   */
  async function apiRequest(method, path, body, opts = {}) {
    const url = absoluteUrl(path);
    const pathOnly = new URL(url, window.location.href).pathname;
    const token = appToken(opts.appToken);
    if (!token && !PATHS_WITHOUT_TOKEN.some((p) => pathOnly === p || pathOnly.startsWith(p + '/'))) {
      throw makeError(401, 'no_token', 'Need an app token before calling ' + pathOnly);
    }
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    /** @type {BodyInit | undefined} */
    let payload;
    if (body !== undefined && body !== null) {
      if (opts.form) {
        payload = body; // the browser sets the multipart boundary itself
      } else {
        headers['Content-Type'] = 'application/json';
        payload = JSON.stringify(body);
      }
    }
    /** @type {Response} */
    let res;
    try {
      res = await fetch(url, { method, headers, body: payload, credentials: 'same-origin' });
    } catch (e) {
      throw makeError(0, 'noComms', 'Could not reach the server: ' + (e instanceof Error ? e.message : String(e)));
    }
    if (res.status === 200) {
      if (opts.text) return res.text();
      try {
        return await res.json();
      } catch (_e) {
        throw makeError(200, 'bad_response', 'The server sent a reply that is not JSON');
      }
    }
    /** @type {any} */
    let data = null;
    try { data = await res.json(); } catch (_e) { /* not JSON: fall back to the status */ }
    const code = data && typeof data.error === 'string' ? data.error : 'http_' + res.status;
    const message = data && typeof data.message === 'string' ? data.message : code;
    throw makeError(res.status, code, message);
  }

  /**
   * Wraps a promise-returning function so it also takes freezr's trailing
   * `(err, result)` callback. With a callback it returns nothing: errors go only
   * to the callback, never to an unhandled rejection. The callback is the last
   * function among the arguments (freezr's stand-alone pages call
   * `ping(options, callback, appName)`); anything after it is ignored.
   * @param {(...args: any[]) => Promise<any>} fn
   * @returns {(...args: any[]) => any}
   */
  function withCallback(fn) {
    return function (/** @type {any[]} */ ...args) {
      let at = args.length - 1;
      while (at >= 0 && typeof args[at] !== 'function') at--;
      if (at < 0) return fn(...args);
      /** @type {Callback} */
      const cb = args[at];
      const params = args.slice(0, at);
      let promise;
      try { promise = fn(...params); } catch (e) { promise = Promise.reject(e); }
      promise.then((r) => cb(null, r), (e) => cb(e instanceof Error ? e : makeError(0, 'unknown', String(e))));
      return undefined;
    };
  }

  /**
   * A freezr call freehold does not offer: rejects (or calls back) with `not_supported`.
   * @param {string} name @param {string} why
   */
  function notOffered(name, why) {
    return withCallback(async () => { throw makeError(501, 'not_supported', 'freezr.' + name + ' is not available on freehold: ' + why); });
  }

  // ---------------------------------------------------------------------------
  // Names and URLs
  // ---------------------------------------------------------------------------

  /**
   * @param {string | null | undefined} collectionOrAppTable
   * @param {string} [requesteeApp]  another app whose table is meant
   */
  function appTable(collectionOrAppTable, requesteeApp) {
    const app = requesteeApp || meta().appName;
    if (!collectionOrAppTable) return app;
    if (collectionOrAppTable.includes('.')) return collectionOrAppTable;
    return app + '.' + collectionOrAppTable;
  }

  /** The table named by freezr's legacy `{ app_table | collection }` options. @param {Options} options */
  function legacyTable(options) {
    if (options.app_table) return options.app_table;
    const app = options.requestee_app || options.appName || meta().appName;
    return options.collection ? app + '.' + options.collection : app;
  }

  const USERFILES = '/feps/userfiles/';

  /** @param {string} id */
  const seg = (id) => encodeURIComponent(String(id));

  /** A file path keeps its slashes; each segment is encoded. @param {string} fileId */
  const filePath = (fileId) => String(fileId).replace(/^\/+/, '').split('/').map(seg).join('/');

  /**
   * @param {string} path
   * @param {Record<string, unknown>} params  undefined, null and '' are left out
   */
  function withQuery(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') q.append(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    const s = q.toString();
    return s ? path + (path.includes('?') ? '&' : '?') + s : path;
  }

  /** @param {Options} options @param {string[]} keys */
  function pick(options, keys) {
    /** @type {Options} */
    const out = {};
    for (const k of keys) if (options && options[k] !== undefined && options[k] !== null) out[k] = options[k];
    return out;
  }

  /** @param {Options} options @param {string[]} keys */
  const hasAny = (options, keys) => keys.some((k) => options && options[k] !== undefined && options[k] !== null && options[k] !== false);

  /** @param {unknown} v @returns {v is Json} */
  const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

  const OTHER_OWNER_KEYS = ['permission_name', 'owner_id'];

  // ---------------------------------------------------------------------------
  // Records (freezrApiV2). Each method also accepts freezr's older call shape where
  // the record/options object comes first and names the table with
  // `{ app_table | collection }`, e.g. freezr.create(record, { collection: 'notes' }).
  // ---------------------------------------------------------------------------

  /** @type {any} */
  const freezr = {
    API_VERSION: '2.0.0',
    app: { isWebBased: true, offlineCredentialsExpired: false, loginCallback: null, logoutCallback: null, server: null },
    /** Apps assign this; it runs once the page has loaded. @type {null | (() => unknown)} */
    initPageScripts: null,
    /** Called with `hasChanged` when the freezr menu closes. @param {boolean} _hasChanged */
    onFreezrMenuClose(_hasChanged) {},
    apiRequest,
  };

  /** @param {any} a @param {any} b @param {Options} [c] */
  async function create(a, b, c) {
    const [table, data, options] = isObject(a) ? [legacyTable(b || {}), a, b || {}] : [appTable(a, (c || {}).requestee_app), b, c || {}];
    if (!isObject(data)) throw makeError(400, 'bad_request', 'No data to write');
    const tok = options.appToken || null;
    const host = options.host || '';
    const fepsKeys = ['data_object_id', 'upsert', 'permission_name', 'owner_id', 'requestee_app'];
    if (hasAny(options, fepsKeys)) {
      const id = options.data_object_id;
      // freezrApiV2 sends the flags in the body; freezr_core sent ?upsert=true. Send both.
      const body = { _entity: data, ...pick(options, fepsKeys) };
      const url = host + '/feps/write/' + seg(table) + (id ? '/' + seg(id) : '') + (options.upsert ? '?upsert=true' : '');
      return apiRequest('POST', url, body, { appToken: tok });
    }
    return apiRequest('POST', host + '/ceps/write/' + seg(table), data, { appToken: tok });
  }

  /** @param {any} a @param {any} b @param {Options} [c] */
  async function read(a, b, c) {
    const [table, id, options] = isObject(b) && typeof a === 'string' && c === undefined && (b.app_table || b.collection)
      ? [legacyTable(b), a, b] // legacy read(id, { collection })
      : [appTable(a, (c || {}).requestee_app), b, c || {}];
    if (!id) throw makeError(400, 'bad_request', 'No id provided');
    const m = meta();
    const requestee = options.requestee_app;
    const url = withQuery((options.host || '') + '/ceps/read/' + seg(table) + '/' + seg(id), {
      owner_id: options.owner_id,
      permission_name: options.permission_name,
      requestor_app: requestee && requestee !== m.appName ? m.appName : undefined,
    });
    return apiRequest('GET', url, null, { appToken: options.appToken || null });
  }

  const QUERY_KEYS = ['permission_name', 'owner_id', 'count', 'skip', 'sort', 'requestee_app'];

  /** @param {any} [a] @param {Json} [b] @param {Options} [c] */
  async function query(a, b, c) {
    let table, q, options;
    if (isObject(a)) { // legacy query({ collection, q, count, ... })
      options = a; table = legacyTable(a); q = a.q || {};
    } else {
      options = c || {}; table = appTable(a, options.requestee_app); q = b || {};
    }
    const body = { ...pick(options, QUERY_KEYS), q };
    return apiRequest('POST', (options.host || '') + '/ceps/query/' + seg(table), body, { appToken: options.appToken || null });
  }

  /** @param {any} a @param {any} [b] @param {any} [c] @param {Options} [d] */
  async function update(a, b, c, d) {
    let table, id, data, options;
    if (isObject(a)) { // legacy update(record_with_id, { collection })
      data = a; options = b || {}; table = legacyTable(options); id = a._id;
    } else {
      table = appTable(a); id = b; data = c; options = d || {};
    }
    if (!id) throw makeError(400, 'bad_request', 'No id provided for update');
    if (!isObject(data)) throw makeError(400, 'bad_request', 'No data to update');
    const host = options.host || '';
    const tok = { appToken: options.appToken || null };
    if (hasAny(options, OTHER_OWNER_KEYS)) {
      const body = { _entity: data, replaceAllFields: true, ...pick(options, OTHER_OWNER_KEYS) };
      return apiRequest('PUT', host + '/feps/update/' + seg(table) + '/' + seg(id) + '?replaceAllFields=true', body, tok);
    }
    return apiRequest('PUT', host + '/ceps/update/' + seg(table) + '/' + seg(id), data, tok);
  }

  /** Partial update by id, or of every record matching a query. @param {string | null} a @param {string | Json} idOrQuery @param {Json} fields @param {Options} [options] */
  async function updateFields(a, idOrQuery, fields, options = {}) {
    const id = typeof idOrQuery === 'string' ? idOrQuery : null;
    if (!id && !isObject(idOrQuery)) throw makeError(400, 'bad_request', 'No id or query provided for updateFields');
    if (!isObject(fields)) throw makeError(400, 'bad_request', 'No fields provided for updateFields');
    const table = appTable(a);
    const body = { ...(id ? { _entity: fields } : { q: idOrQuery, keys: fields }), ...pick(options, OTHER_OWNER_KEYS) };
    return apiRequest('PUT', (options.host || '') + '/feps/update/' + seg(table) + (id ? '/' + seg(id) : ''), body, { appToken: options.appToken || null });
  }

  /** Delete by id (CEPS), or by query (FEPS). @param {any} a @param {any} b @param {Options} [c] */
  async function del(a, b, c) {
    const [table, idOrQuery, options] = isObject(b) && typeof a === 'string' && c === undefined && (b.app_table || b.collection)
      ? [legacyTable(b), a, b] // legacy delete(id, { collection })
      : [appTable(a), b, c || {}];
    if (!idOrQuery) throw makeError(400, 'bad_request', 'No id or query provided for delete');
    const host = options.host || '';
    const tok = { appToken: options.appToken || null };
    const id = typeof idOrQuery === 'string' ? idOrQuery : null;
    if (id && !hasAny(options, OTHER_OWNER_KEYS)) {
      return apiRequest('DELETE', host + '/ceps/delete/' + seg(table) + '/' + seg(id), null, tok);
    }
    const body = { ...(id ? {} : { q: idOrQuery }), ...pick(options, OTHER_OWNER_KEYS) };
    return apiRequest('DELETE', host + '/feps/delete/' + seg(table) + (id ? '/' + seg(id) : ''), body, tok);
  }

  /** Public records of everyone, or of one owner. No token needed. @param {Options} [options] */
  async function publicquery(options = {}) {
    const { host = '', owner, appToken: tok, ...rest } = options;
    const path = host + '/public/query' + (owner ? '/@' + seg(owner) : '');
    return apiRequest('POST', path, rest, { appToken: tok || null });
  }

  Object.assign(freezr, {
    create: withCallback(create),
    read: withCallback(read),
    query: withCallback(query),
    update: withCallback(update),
    updateFields: withCallback(updateFields),
    delete: withCallback(del),
    publicquery: withCallback(publicquery),
    /** A table-bound view of the API. @param {string} name */
    collection(name) {
      return {
        name: appTable(name),
        create: (/** @type {Json} */ data, /** @type {any[]} */ ...rest) => freezr.create(name, data, ...rest),
        read: (/** @type {string} */ id, /** @type {any[]} */ ...rest) => freezr.read(name, id, ...rest),
        query: (/** @type {Json} */ q, /** @type {any[]} */ ...rest) => freezr.query(name, q || {}, ...rest),
        update: (/** @type {string} */ id, /** @type {Json} */ data, /** @type {any[]} */ ...rest) => freezr.update(name, id, data, ...rest),
        updateFields: (/** @type {any} */ idOrQuery, /** @type {Json} */ fields, /** @type {any[]} */ ...rest) => freezr.updateFields(name, idOrQuery, fields, ...rest),
        delete: (/** @type {any} */ idOrQuery, /** @type {any[]} */ ...rest) => freezr.delete(name, idOrQuery, ...rest),
      };
    },
  });

  // ---------------------------------------------------------------------------
  // Files. An upload is stored under the app's files and recorded in `<app>.files`
  // with `_id` = its path. An <img> cannot send an Authorization header, so file URLs
  // carry the app token as `?fileToken=` (the name freezr's tokenised URLs use).
  // ---------------------------------------------------------------------------

  /** @param {Blob} file @param {Options} [options] */
  async function upload(file, options = {}) {
    if (!file) throw makeError(400, 'bad_request', 'No file to upload');
    const { host = '', appToken: tok, ...rest } = options;
    const fileOptions = { ...rest, overwrite: !rest.doNotOverWrite };
    // Options before the file, so a streaming server knows the target path before the bytes arrive.
    const form = new FormData();
    form.append('options', JSON.stringify(fileOptions));
    form.append('file', file);
    return apiRequest('PUT', host + '/feps/upload/' + seg(meta().appName), form, { appToken: tok || null, form: true });
  }

  /**
   * A URL for an uploaded file, usable directly in <img src>.
   * @param {string} fileId @param {Options} [options] { requestee_app, requestee_user_id, permission_name }
   */
  function getFileUrl(fileId, options = {}) {
    if (!fileId) return null;
    const m = meta();
    const app = options.requestee_app || m.appName;
    const user = options.requestee_user_id || m.userId;
    const base = USERFILES + seg(app) + '/' + seg(user) + '/' + filePath(fileId);
    // On the app's own origin the page's token cookie goes along: a plain address, as
    // freezr gives, which an app may keep in its records without keeping a token there.
    const fileToken = filesByCookie() && !options.appToken ? undefined : appToken(options.appToken);
    return withQuery(base, { fileToken, permission_name: options.permission_name });
  }

  /** Whether the server reads this page's token cookie for file addresses (set by the page wrapper). */
  function filesByCookie() {
    return /** @type {any} */ (win).__freeholdFilesByCookie === true;
  }

  /**
   * Removes a file and its `<app>.files` record. freezr deletes the record through
   * CEPS; freehold's userfiles DELETE removes bytes and record together.
   * @param {string} fileId @param {Options} [options]
   */
  async function deleteFile(fileId, options = {}) {
    if (!fileId) throw makeError(400, 'bad_request', 'No file id provided');
    const m = meta();
    const url = (options.host || '') + USERFILES + seg(m.appName) + '/' + seg(m.userId) + '/' + filePath(fileId);
    return apiRequest('DELETE', url, null, { appToken: options.appToken || null });
  }

  Object.assign(freezr, { upload: withCallback(upload), getFileUrl, deleteFile: withCallback(deleteFile) });

  // ---------------------------------------------------------------------------
  // Permissions
  // ---------------------------------------------------------------------------

  /** @param {Options} [options] */
  async function getAppPermissions(options = {}) {
    return apiRequest('GET', withQuery('/ceps/perms/get', pick(options, ['owner', 'table_id', 'name'])));
  }

  /** @param {string} permissionName */
  async function isGranted(permissionName) {
    const perms = await getAppPermissions();
    return Array.isArray(perms) && perms.some((p) => p && p.name === permissionName && p.granted === true);
  }

  /** @param {string | string[] | Json} idOrQuery @param {Options} [options] */
  async function shareRecords(idOrQuery, options = {}) {
    const body = { ...options };
    if (!body.grantees && body.grantee) body.grantees = [body.grantee];
    delete body.grantee;
    if (!Array.isArray(body.grantees) || body.grantees.length === 0 || !body.name) {
      throw makeError(400, 'bad_request', 'Must include permission name and grantees');
    }
    if (!body.table_id) body.table_id = meta().appName;
    body.grant = body.action === 'grant';
    if (typeof idOrQuery === 'string') body.record_id = idOrQuery;
    else if (Array.isArray(idOrQuery)) body.object_id_list = idOrQuery;
    else if (isObject(idOrQuery)) body.query_criteria = idOrQuery;
    return apiRequest('POST', '/ceps/perms/share_records', body);
  }

  /** Publishes (or unpublishes) one uploaded file. @param {string} fileId @param {Options} [options] */
  async function shareFilePublicly(fileId, options = {}) {
    if (!fileId) throw makeError(400, 'bad_request', 'Must include file id');
    const grant = options.action !== 'deny' && options.grant !== false;
    /** @type {Options} */
    const body = { ...options, table_id: meta().appName + '.files', grantees: ['_public'], action: grant ? 'grant' : 'deny', grant };
    if (!grant && body.byPublicId) body.query_criteria = { publicid: fileId };
    else body.record_id = fileId;
    delete body.byPublicId;
    return apiRequest('POST', '/ceps/perms/share_records', body);
  }

  /** @param {string} publicid @param {Options} [options] */
  async function unshareByPublicId(publicid, options = {}) {
    if (!publicid || !options.name) throw makeError(400, 'bad_request', 'Must include publicid and permission name');
    const grantees = options.grantees || (options.grantee ? [options.grantee] : ['_public']);
    /** @type {Options} */
    const body = { ...options, grantees, action: 'deny', grant: false, query_criteria: { publicid } };
    delete body.grantee;
    return apiRequest('POST', '/ceps/perms/share_records', body);
  }

  /**
   * Gets an access token for another owner's data: a validation token from our
   * server, then the owner's server checks it with ours (CEPS.md §4).
   * @param {Options} [options] { data_owner_user, data_owner_host, table_id, permission, app_id }
   */
  async function validateDataOwner(options = {}) {
    const m = meta();
    /** @type {Options} */
    const params = { ...options, requestor_user: m.userId, app_id: options.app_id || m.appName };
    if (options.data_owner_host) params.requestor_host = m.serverAddress || window.location.origin;
    const set = await apiRequest('POST', '/ceps/perms/validationtoken/set', params);
    if (!set || !set.validation_token) throw makeError(500, 'no_validation_token', 'Failed to get a validation token');
    const url = withQuery((options.data_owner_host || '') + '/ceps/perms/validationtoken/validate', { ...params, validation_token: set.validation_token });
    return apiRequest('GET', url);
  }

  /** All permissions of an app, freezr's FEPS form. @param {string} [appName] */
  async function getAllAppPermissions(appName) {
    return apiRequest('GET', '/feps/permissions/getall/' + seg(appName || meta().appName));
  }

  freezr.perms = {
    getAppPermissions: withCallback(getAppPermissions),
    getAllAppPermissions: withCallback(getAllAppPermissions),
    /**
     * freezr's own `isGranted(name, callback)` calls back with the answer alone,
     * `callback(granted)`, not `(err, result)`; without a callback, a promise.
     * @param {string} permissionName @param {(granted: boolean) => void} [callback]
     */
    isGranted(permissionName, callback) {
      if (typeof callback !== 'function') return isGranted(permissionName);
      isGranted(permissionName).then((granted) => callback(granted), () => callback(false));
      return undefined;
    },
    shareRecords: withCallback(shareRecords),
    shareFilePublicly: withCallback(shareFilePublicly),
    shareServableFile: withCallback(shareFilePublicly),
    unshareByPublicId: withCallback(unshareByPublicId),
    validateDataOwner: withCallback(validateDataOwner),
  };

  // ---------------------------------------------------------------------------
  // Messages (CEPS.md §5)
  // ---------------------------------------------------------------------------

  /** @param {Json} message @param {Options} [_options] */
  async function sendMessage(message = {}, _options = {}) {
    if (!message.recipient_id && !message.recipients) throw makeError(400, 'bad_request', 'Must include recipient_id or recipients');
    if ((!message.sharing_permission && !message.messaging_permission) || !message.table_id || !message.record_id) {
      throw makeError(400, 'bad_request', 'Incomplete message fields');
    }
    const m = meta();
    const body = {
      ...message,
      type: message.sharing_permission ? 'share_records' : 'message_records',
      app_id: m.appName,
      sender_id: m.userId,
      sender_host: m.serverAddress || window.location.origin,
    };
    return apiRequest('POST', '/ceps/message/initiate', body);
  }

  /** @param {string[] | null} messageIds @param {boolean} [markAll] */
  async function markRead(messageIds, markAll = false) {
    if (markAll && messageIds) throw makeError(400, 'bad_request', 'Need either messageIds or markAll, not both');
    if (markAll) return apiRequest('POST', '/ceps/message/mark_read', { mark_all: true });
    if (!Array.isArray(messageIds) || messageIds.length === 0) throw makeError(400, 'bad_request', 'messageIds must be a non-empty array');
    return apiRequest('POST', '/ceps/message/mark_read', { message_ids: messageIds });
  }

  /** @param {Options} [options] { count, skip, unread_only } */
  async function getAppMessages(options = {}) {
    return apiRequest('GET', withQuery('/ceps/messages', pick(options, ['count', 'skip', 'unread_only'])), null, { appToken: options.appToken || null });
  }

  freezr.messages = { send: withCallback(sendMessage), markRead: withCallback(markRead), getAppMessages: withCallback(getAppMessages) };

  // ---------------------------------------------------------------------------
  // Utilities
  // ---------------------------------------------------------------------------

  const MEDIA_TAGS = ['IMG', 'VIDEO', 'AUDIO', 'SOURCE'];

  /**
   * Adds the current app token to a userfiles URL that lacks a token (path mode: no
   * cookie stands in for it there), at once, for media the page adds later.
   * @param {string} src
   */
  function tokenize(src) {
    if (filesByCookie()) return null; // plain addresses work here: no token written into the page
    const url = userFilesUrl(src);
    if (!url || url.searchParams.has('fileToken')) return null;
    url.searchParams.set('fileToken', appToken());
    return url.pathname + url.search;
  }

  /**
   * A file's own token from the server (getFileToken); null without a file id.
   * @param {string | undefined} fileId @param {Options} options { requestee_app, requestee_user_id, permission_name, appToken, host }
   * @returns {Promise<string | null>}
   */
  async function fileTokenFor(fileId, options) {
    if (!fileId) return null;
    const m = meta();
    const app = options.requestee_app || m.appName;
    const user = options.requestee_user_id || m.userId;
    const url = (options.host || '') + '/feps/getuserfiletoken/' + seg(options.permission_name || 'self') + '/' + seg(app) + '/' + seg(user) + '/' + filePath(fileId);
    const res = await apiRequest('GET', url, null, { appToken: options.appToken || null });
    return res && typeof res.fileToken === 'string' ? res.fileToken : null;
  }

  /**
   * A userfiles address on this page's origin, parsed; null for anything else.
   * @param {string} src
   */
  function userFilesUrl(src) {
    let url;
    try { url = new URL(src, window.location.href); } catch (_e) { return null; }
    return url.origin === window.location.origin && url.pathname.startsWith(USERFILES) ? url : null;
  }

  /**
   * A same-origin address of one of this app's own files, parsed; null for anything else.
   * @param {string} src
   * @returns {{ url: URL, path: string } | null}
   */
  function ownFileAddress(src) {
    const url = userFilesUrl(src);
    if (!url) return null;
    const parts = url.pathname.slice(USERFILES.length).split('/');
    if (parts.length < 3) return null;
    let app, user, path;
    try {
      [app, user] = [decodeURIComponent(parts[0] || ''), decodeURIComponent(parts[1] || '')];
      path = parts.slice(2).map(decodeURIComponent).join('/');
    } catch (_e) { return null; }
    const m = meta();
    if (app !== m.appName || user !== m.userId || !path) return null;
    return { url, path };
  }

  /** @param {Element} el */
  function tokenizeElement(el) {
    if (!MEDIA_TAGS.includes(el.tagName)) return;
    const src = el.getAttribute('src');
    const next = src && tokenize(src);
    if (next) el.setAttribute('src', next);
  }

  freezr.utils = {
    getCookie,
    parse(/** @type {unknown} */ data) {
      if (typeof data !== 'string') return data;
      try { return JSON.parse(data); } catch (_e) { return { data }; }
    },
    startsWith(/** @type {string} */ longer, /** @type {string} */ check) {
      return Boolean(longer && check && String(longer).startsWith(check));
    },
    longDateFormat(/** @type {number} */ dateNum) {
      if (!dateNum) return 'n/a';
      const d = new Date(dateNum);
      if (Number.isNaN(d.getTime())) return 'n/a - error';
      const s = d.toLocaleDateString() + ' ' + d.toLocaleTimeString();
      return s.substring(0, s.length - 3);
    },
    /** freezr's `(options?, callback)` argument splitter, kept for apps that use it. @param {any[]} args */
    getOpCbFrom(args) {
      if (!args || args.length === 0) return [null, null];
      const callback = args[args.length - 1];
      const options = args.length > 1 ? (args[0] || {}) : {};
      return [options, callback];
    },
    ping: withCallback(async (/** @type {Options | null | undefined} */ options) => {
      const opts = options || {};
      const res = await apiRequest('GET', (opts.server || '') + '/ceps/ping', null, { appToken: opts.appToken || null });
      if (!res || !res.server_type) throw makeError(500, 'bad_response', 'No server type in ping response');
      return res;
    }),
    getManifest: withCallback(async (/** @type {string | undefined} */ appName) => apiRequest('GET', '/feps/manifest/' + seg(appName || meta().appName))),
    /** An HTML file of the app, as text. @param {string} partPath @param {string} [appName] */
    getHtml: withCallback(async (/** @type {string} */ partPath, /** @type {string | undefined} */ appName) => {
      if (!/\.html?$/.test(partPath)) throw makeError(400, 'bad_request', 'Can only get HTML files');
      return apiRequest('GET', '/apps/' + seg(appName || meta().appName) + '/' + filePath(partPath), null, { text: true });
    }),
    /**
     * The token that makes one file's address work (`?fileToken=`): made by the server for
     * that file alone (it reads that file and nothing else, and ends with the app token it
     * was asked with), so an app may keep the address in a record or a link without
     * giving away its own token. freezr's shape, `(fileId, options, callback)`, calls back
     * with the token alone (or null), not `(error, token)`; without a callback, a promise of it.
     * @param {...any} args
     */
    getFileToken(...args) {
      const callback = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : null;
      const [fileId, options] = callback ? args.slice(0, -1) : args;
      const token = fileTokenFor(fileId, options || {}).catch(() => null);
      if (!callback) return token;
      token.then((t) => callback(t));
      return undefined;
    },
    tokenizedFileUrl: withCallback(async (/** @type {string} */ fileId, /** @type {Options | undefined} */ options) => getFileUrl(fileId, options || {})),
    /**
     * Renews the file tokens in the page, as freezr's does: every element showing one of
     * this app's files by an address with `?fileToken=` gets a fresh token for that file
     * (one kept in a record ends with the app token it was made with, for a page's at
     * sign-out); an address without one gets one where the page's cookie does not stand
     * in for it (path mode). freezr's `(tag, attribute)` form (`'IMG', 'src'`), or all
     * media elements' `src`.
     * @param {...any} args
     */
    refreshFileTokens: withCallback(async (...args) => {
      const byTag = typeof args[0] === 'string';
      const tags = byTag ? [String(args[0]).toUpperCase()] : MEDIA_TAGS;
      const attr = byTag && typeof args[1] === 'string' ? args[1] : 'src';
      /** @type {Map<string, Promise<string | null>>} */
      const tokens = new Map();
      const jobs = [...document.querySelectorAll(tags.join(','))].map(async (el) => {
        const src = el.getAttribute(attr);
        const file = src ? ownFileAddress(src) : null;
        if (!file) return;
        if (!file.url.searchParams.has('fileToken') && filesByCookie()) return; // the cookie reads it here
        let token = tokens.get(file.path);
        if (!token) tokens.set(file.path, (token = fileTokenFor(file.path, {}).catch(() => null)));
        const fresh = await token;
        if (!fresh) return;
        file.url.searchParams.set('fileToken', fresh);
        el.setAttribute(attr, file.url.pathname + file.url.search);
      });
      await Promise.all(jobs);
    }),
    /** Keeps media added later tokenised too. */
    observeFileTokens() {
      const obs = new MutationObserver((records) => {
        for (const r of records) {
          if (r.type === 'attributes' && r.target instanceof Element) tokenizeElement(r.target);
          r.addedNodes.forEach((n) => {
            if (!(n instanceof Element)) return;
            tokenizeElement(n);
            n.querySelectorAll(MEDIA_TAGS.join(',')).forEach((el) => tokenizeElement(el));
          });
        }
      });
      obs.observe(document.documentElement, { subtree: true, childList: true, attributes: true, attributeFilter: ['src'] });
      return obs;
    },
    /** Legacy: sets an element attribute to a file's URL. @param {any} el @param {string} attr @param {string} fileId @param {Options} [options] */
    setFilePath(el, attr, fileId, options) {
      const url = getFileUrl(fileId, options || {});
      if (el && url) el[attr] = url;
    },
    filePathFromId: (/** @type {string} */ fileId, /** @type {Options | undefined} */ options) => getFileUrl(fileId, options || {}),
    /** The bare (untokenised) userfiles path of a file, as freezr returns it. @param {string} fileId */
    userFilePath(fileId) {
      if (!fileId) return null;
      const m = meta();
      return USERFILES + seg(m.appName) + '/' + seg(m.userId) + '/' + filePath(fileId);
    },
    /** The file id (path) of a userfiles URL. @param {string} url */
    fileIdFromPath(url) {
      if (!url) return null;
      let pathname;
      try { pathname = new URL(url, window.location.href).pathname; } catch (_e) { return null; }
      if (!pathname.startsWith(USERFILES)) return null;
      return pathname.slice(USERFILES.length).split('/').slice(2).map(decodeURIComponent).join('/');
    },
    publicPathFromId(/** @type {string} */ fileId, /** @type {string} */ requesteeApp, /** @type {string} */ userId) {
      if (!fileId || !requesteeApp || !userId) return null;
      return '/@' + seg(userId) + '/' + seg(requesteeApp) + '/' + filePath(fileId);
    },
    appFilePathFrom(/** @type {string} */ relativePath) {
      return '/apps/' + seg(meta().appName) + '/' + filePath(relativePath);
    },
    // freezr hands these account views to every app; here the owner's app list, settings
    // and usage stay with the owner's pages. A clear refusal, in the callback too, instead
    // of "is not a function".
    getAllAppList: notOffered('utils.getAllAppList', "the owner's list of apps is not shown to apps"),
    getPrefs: notOffered('utils.getPrefs', "the owner's settings are not shown to apps"),
    getAppResourceUsage: notOffered('utils.getAppResourceUsage', 'storage use is shown on the owner\'s home page'),
  };

  // freezr's LLM and background-job services have no counterpart in freehold: their
  // status calls answer "none here", so an app can hide those features; the rest refuse.
  freezr.llm = {
    ping: withCallback(async () => ({ success: true, exists: false, providers: {} })),
    ask: notOffered('llm.ask', 'this server offers no language models'),
  };
  freezr.jobs = {
    ping: withCallback(async () => ({ has_compute: false, jobs: {} })),
    run: notOffered('jobs.run', 'this server runs no app jobs'),
    schedule: notOffered('jobs.schedule', 'this server runs no app jobs'),
    unschedule: notOffered('jobs.unschedule', 'this server runs no app jobs'),
  };

  // ---------------------------------------------------------------------------
  // Menu: freezr puts a small button on every app page that opens a panel with the
  // account, the app's permissions and a way home. Built with DOM calls and
  // textContent only; styled through CSSOM, which the page CSP allows.
  // ---------------------------------------------------------------------------

  /** @param {string} tag @param {string} [id] @param {string} [text] */
  function el(tag, id, text) {
    const e = document.createElement(tag);
    if (id) e.id = id;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /** @param {HTMLElement} e @param {Partial<CSSStyleDeclaration>} styles */
  const css = (e, styles) => Object.assign(e.style, styles);

  let menuChanged = false;

  freezr.menu = {
    options: { showButton: true },
    _created: false,
    _createElements() {
      if (freezr.menu._created || !document.body) return;
      freezr.menu._created = true;
      const button = el('button', 'freezer_img_button', '≡');
      button.setAttribute('aria-label', 'freezr menu');
      button.setAttribute('type', 'button');
      css(button, {
        position: 'fixed', top: '8px', right: '8px', zIndex: '2147483000', width: '28px', height: '28px',
        border: '1px solid #ccd', borderRadius: '14px', background: '#fff', color: '#445', cursor: 'pointer',
        font: '16px/1 system-ui, sans-serif', padding: '0', opacity: '0.75',
      });
      if (!freezr.menu.options.showButton) button.style.display = 'none';
      button.addEventListener('click', () => freezr.menu.open());

      const overlay = el('div', 'freezer_menu_overlay');
      css(overlay, { position: 'fixed', inset: '0', background: 'rgba(0,0,0,0.25)', display: 'none', zIndex: '2147483001' });
      overlay.addEventListener('click', () => freezr.menu.close());

      const panel = el('div', 'freezer_menu');
      css(panel, {
        position: 'absolute', top: '0', right: '0', width: '260px', maxWidth: '90vw', height: '100%', overflowY: 'auto',
        background: '#fff', boxShadow: '-2px 0 8px rgba(0,0,0,0.2)', padding: '16px', boxSizing: 'border-box',
        font: '14px/1.4 system-ui, sans-serif', color: '#222',
      });
      panel.addEventListener('click', (e) => e.stopPropagation());
      const close = el('button', 'freezer_menu_close', 'Close');
      close.setAttribute('type', 'button');
      close.addEventListener('click', () => freezr.menu.close());
      panel.append(close, el('div', 'freezer_menu_content'));
      overlay.appendChild(panel);
      document.body.append(button, overlay);
    },
    open() {
      freezr.menu._createElements();
      const overlay = document.getElementById('freezer_menu_overlay');
      if (!overlay) return;
      overlay.style.display = 'block';
      menuChanged = true;
      void freezr.menu._loadContent();
    },
    close() {
      const overlay = document.getElementById('freezer_menu_overlay');
      if (!overlay || overlay.style.display === 'none') return;
      overlay.style.display = 'none';
      const changed = menuChanged;
      menuChanged = false;
      if (typeof freezr.onFreezrMenuClose === 'function') freezr.onFreezrMenuClose(changed);
    },
    async _loadContent() {
      const box = document.getElementById('freezer_menu_content');
      if (!box) return;
      const m = meta();
      box.replaceChildren(
        el('h3', undefined, m.appDisplayName || m.appName),
        el('p', undefined, 'Signed in as ' + (m.userId || '?') + (m.adminUser ? ' (admin)' : '')),
      );
      const home = /** @type {HTMLAnchorElement} */ (el('a', undefined, 'Home'));
      // The owner's home is on the main origin, which is not this page's origin in subdomain mode.
      home.href = typeof m.homeUrl === 'string' && /^https?:\/\//.test(m.homeUrl) ? m.homeUrl : '/';
      box.appendChild(home);
      const list = el('ul');
      box.append(el('h4', undefined, 'Permissions'), list);
      try {
        const perms = await getAppPermissions();
        if (!Array.isArray(perms) || perms.length === 0) list.appendChild(el('li', undefined, 'This app asks for no permissions.'));
        else for (const p of perms) list.appendChild(el('li', undefined, (p.granted ? '✓ ' : '✗ ') + String(p.name)));
      } catch (e) {
        list.appendChild(el('li', undefined, 'Could not load permissions: ' + (e instanceof Error ? e.message : String(e))));
      }
    },
  };

  // freezr's older names for the menu functions.
  freezr.utils.addFreezerDialogueElements = () => freezr.menu._createElements();
  freezr.utils.freezrMenuOpen = () => freezr.menu.open();
  freezr.utils.freezrMenuClose = () => freezr.menu.close();

  // ---------------------------------------------------------------------------
  // Legacy callback forms: freezr.ceps.* and freezr.feps.*. Signatures follow
  // freezr_core.js: (data, [options], callback) with `{ app_table | collection }`.
  // ---------------------------------------------------------------------------

  /**
   * @param {(...args: any[]) => Promise<any>} fn  takes the arguments without the callback
   * @returns {(...args: any[]) => any}
   */
  const legacy = (fn) => withCallback(fn);

  /** Splits freezr's `(data, ...optionsAndCallback)` tail into options. @param {any[]} rest */
  const optionsOf = (rest) => (isObject(rest[0]) ? rest[0] : {});

  /**
   * freezr's legacy getquery: the CEPS GET query (equality parameters, plus
   * `_modified_before/after` taken from `q._date_modified.$lt/$gt`), as freezr sends it.
   * A query string carries only text, so where a filter is null, '' or a boolean
   * (`{ done: false }`: a task list's first query) the same filters go as a POST query
   * instead, which keeps their types; in a query string they would match nothing, or be
   * left out and match everything.
   * @param {Options} options
   */
  async function cepsGetQuery(options = {}) {
    /** @type {Record<string, unknown>} */
    const params = {};
    /** @type {Record<string, unknown>} */
    const q = {};
    let typed = false;
    for (const [k, v] of Object.entries(options.q || {})) {
      if (k === '_date_modified' && isObject(v)) {
        if (v.$lt !== undefined) params._modified_before = v.$lt;
        if (v.$gt !== undefined) params._modified_after = v.$gt;
        q._date_modified = pick(v, ['$lt', '$gt']);
      } else if (v === null || typeof v !== 'object') {
        params[k] = v;
        q[k] = v;
        if (v === null || v === '' || typeof v === 'boolean') typed = true;
      } else {
        console.warn('freezr.ceps.getquery: complex queries are not possible here; ignoring ' + k);
      }
    }
    if (typed) {
      const body = { q, ...(options.count !== undefined ? { count: options.count } : {}), ...(options.skip !== undefined ? { skip: options.skip } : {}) };
      return apiRequest('POST', (options.host || '') + '/ceps/query/' + seg(legacyTable(options)), body, { appToken: options.appToken || null });
    }
    if (options.count !== undefined) params._count = options.count;
    if (options.skip !== undefined) params._skip = options.skip;
    const url = withQuery((options.host || '') + '/ceps/query/' + seg(legacyTable(options)), params);
    return apiRequest('GET', url, null, { appToken: options.appToken || null });
  }

  freezr.ceps = {
    create: legacy(async (/** @type {Json} */ data, /** @type {any[]} */ ...rest) => {
      const options = optionsOf(rest);
      return options.updateRecord ? update(data, options) : create(legacyTable(options), data, { ...options, app_table: undefined });
    }),
    getById: legacy(async (/** @type {string} */ id, /** @type {Options} */ options = {}) => read(legacyTable(options || {}), id, options || {})),
    getquery: legacy(async (/** @type {Options} */ options = {}) => cepsGetQuery(options || {})),
    update: legacy(async (/** @type {Json} */ data, /** @type {any[]} */ ...rest) => update(data || {}, optionsOf(rest))),
    delete: legacy(async (/** @type {string} */ id, /** @type {Options} */ options = {}) => del(legacyTable(options || {}), id, options || {})),
    sendMessage: legacy(async (/** @type {Json} */ message) => sendMessage(message)),
    getAppMessages: legacy(async (/** @type {Options} */ options) => getAppMessages(options || {})),
  };

  freezr.feps = {
    create: legacy(async (/** @type {Json} */ data, /** @type {any[]} */ ...rest) => {
      const options = optionsOf(rest);
      if (options.updateRecord) return update(data, options);
      return create(legacyTable(options), data, { ...options, app_table: undefined });
    }),
    write: legacy(async (/** @type {Json} */ data, /** @type {any[]} */ ...rest) => freezr.feps.create(data, optionsOf(rest))),
    getById: legacy(async (/** @type {string} */ id, /** @type {Options} */ options = {}) => read(legacyTable(options || {}), id, options || {})),
    postquery: legacy(async (/** @type {Options} */ options = {}) => {
      const { q = {}, ...rest } = options || {};
      return query(legacyTable(rest), q, rest);
    }),
    update: legacy(async (/** @type {Json} */ data, /** @type {any[]} */ ...rest) => {
      const options = optionsOf(rest);
      const table = legacyTable(options);
      if (options.q) return updateFields(table, options.q, data || {}, options);
      if (options.setkeys) { // freezr's partial update of one record
        const { _id, ...fields } = data || {};
        return updateFields(table, _id, fields, options);
      }
      return update(data || {}, options);
    }),
    delete: legacy(async (/** @type {string | Json} */ idOrQuery, /** @type {Options} */ options = {}) => del(legacyTable(options || {}), idOrQuery, options || {})),
    upload: legacy(async (/** @type {Blob} */ file, /** @type {Options} */ options) => upload(file, options || {})),
    publicquery: legacy(async (/** @type {Options} */ options) => publicquery(options || {})),
    getByPublicId: legacy(async (/** @type {string} */ id, /** @type {Options} */ options) => publicquery({ ...(options || {}), _id: id })),
    markMessagesRead: legacy(async (/** @type {string[]} */ ids, /** @type {boolean} */ markAll) => markRead(ids, markAll)),
  };

  // freezr.promise.* (alias freepr.*): the legacy forms, promise-returning. freezr's
  // version appends its own callback, which withCallback already turns into a promise.
  freezr.promise = { ceps: {}, feps: {}, perms: {} };
  for (const group of /** @type {const} */ (['ceps', 'feps', 'perms'])) {
    for (const [name, fn] of Object.entries(freezr[group])) {
      freezr.promise[group][name] = (/** @type {any[]} */ ...args) => new Promise((resolve, reject) => {
        fn(...args, (/** @type {FreezrError | null} */ err, /** @type {any} */ result) => (err ? reject(err) : resolve(result)));
      });
    }
  }
  // isGranted's callback takes the answer alone (freezr's form), so its promise is its own.
  freezr.promise.perms.isGranted = (/** @type {string} */ permissionName) => isGranted(permissionName);

  // ---------------------------------------------------------------------------
  // Globals and start-up
  // ---------------------------------------------------------------------------

  const m0 = meta();
  freezr.adminUser = Boolean(m0.adminUser);
  // freezr's flag for accounts allowed to publish apps to others; freehold has no app publishing.
  freezr.publisherUser = false;
  freezr.serverVersion = m0.serverVersion || '';
  win.freezr = freezr;
  win.freepr = freezr.promise;
  win.freezerRestricted = restrictedApi();

  /**
   * freezr's `freezerRestricted` global: its library's internals, which it asks apps not
   * to call and some do (`connect.read/ask/write/send` to reach an endpoint, `utils`).
   * The same transport as everything here: the app token, JSON in and out, and freezr's
   * callback `(error, reply)`, where a reply carrying `error` is an error too.
   */
  function restrictedApi() {
    /**
     * @param {string} method
     * @param {string} url
     * @param {any} data  JSON-able, or (with a type other than 'jsonString') a FormData or string sent as it is
     * @param {any} callback
     * @param {{ textResponse?: boolean, appToken?: string } | undefined} options
     * @param {string | null | undefined} type
     */
    function send(method, url, data, callback, options, type) {
      const cb = typeof callback === 'function' ? callback : () => undefined;
      const raw = type !== undefined && type !== null && type !== 'jsonString';
      /** @type {RequestOptions} */
      const opts = { appToken: options && options.appToken, text: Boolean(options && options.textResponse), form: raw };
      apiRequest(method, url, data === undefined ? null : data, opts).then((reply) => {
        if (reply && typeof reply === 'object' && reply.error) cb(makeError(200, String(reply.error), String(reply.message || reply.error)));
        else cb(null, reply);
      }, (e) => cb(e));
    }
    return {
      utils: freezr.utils,
      connect: {
        /** @param {string} url @param {Record<string, any> | null} data @param {any} callback @param {any} [options] */
        read(url, data, callback, options) {
          const query = data ? Object.keys(data).map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(data[k])).join('&') : '';
          send('GET', query ? url + (url.includes('?') ? '&' : '?') + query : url, null, callback, options, null);
        },
        /** @param {string} url @param {any} data @param {any} callback @param {string} [type] */
        ask(url, data, callback, type) { send('POST', url, data === undefined || data === null ? {} : data, callback, undefined, type); },
        /** @param {string} url @param {any} data @param {any} callback @param {string} [type] */
        write(url, data, callback, type) { send('PUT', url, data, callback, undefined, type); },
        /** @param {string} url @param {any} postData @param {any} callback @param {string} method @param {string} [contentType] @param {any} [options] */
        send(url, postData, callback, method, contentType, options) {
          const json = typeof postData === 'string' && /json/i.test(contentType || '') ? JSON.parse(postData) : postData;
          send(method || 'GET', url, json, callback, options, typeof json === 'string' || (typeof FormData !== 'undefined' && json instanceof FormData) ? 'raw' : null);
        },
      },
      menu: {},
      permissions: {},
    };
  }

  function ready() {
    if (meta().type !== 'extentionPopupException') freezr.menu._createElements();
    // freezr's pages show uploaded files by their bare userfiles address, which its
    // server authorises by cookie, as freehold does on an app's own origin; in path mode
    // such addresses get a token, now and for media added later.
    freezr.utils.refreshFileTokens();
    freezr.utils.observeFileTokens();
  }

  function start() {
    // The page wrapper may also call initPageScripts (on load); this flag, shared with
    // it, makes sure the app's start-up runs exactly once.
    if (typeof freezr.initPageScripts === 'function' && !win.__freeholdInitDone) {
      win.__freeholdInitDone = true;
      try {
        const r = freezr.initPageScripts();
        if (r && typeof r.catch === 'function') r.catch((/** @type {unknown} */ e) => console.error('initPageScripts failed', e));
      } catch (e) {
        console.error('initPageScripts failed', e);
      }
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ready, { once: true });
  else setTimeout(ready, 0);
  // App scripts load after this file and define initPageScripts; as freezr's page skeleton
  // does, it runs once the whole page has loaded (images included).
  if (document.readyState === 'complete') setTimeout(start, 0);
  else win.addEventListener('load', start, { once: true });

  document.addEventListener('keydown', (evt) => { if (evt.key === 'Escape') freezr.menu.close(); });
})();
