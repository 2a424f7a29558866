import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { accessFrom } from '../ceps/routes.js';
import { AnyObject, AppNameParam, AppTableParam, MultiSegmentRecordParams, RecordIdParam, WriteReply, bearer, multiSegmentId } from '../schemas.js';
import { validateWhere } from '../../query/validate.js';
import { FreeholdError } from '../../core/errors.js';
import { apiRateLimit } from '../rate-limits.js';
import { bearerToken, requireAccount, requireAppToken } from '../auth.js';
import { FILE_TOKEN_PREFIX } from '../../core/auth/tokens.js';
import { normaliseUserFilePath } from '../../core/files/paths.js';
import { assertAppName, assertUserId } from '../../core/names.js';
import type { Access } from '../../core/records/access.js';
import { parseRange, sendBlob } from '../send-blob.js';
import { resolveAppHost } from '../app-origin.js';
import { cookieValues } from '../cookie-values.js';
import type { Services } from '../../core/services.js';
import type { StagedUpload } from '../../core/files/service.js';
import { parseStrictJson } from '../json-body.js';

const TableParams = Type.Object({ app_table: AppTableParam });
const RecordParams = Type.Object({ app_table: AppTableParam, id: RecordIdParam });
const FlagQuery = Type.Object({
  upsert: Type.Optional(Type.String({ maxLength: 5 })),
  replaceAllFields: Type.Optional(Type.String({ maxLength: 5 })),
}, { additionalProperties: true });

const truthy = (v: unknown) => v === true || v === 'true' || v === '1';

/** A FEPS flag: freezrApiV2 sends it beside `_entity` in the body, older clients in the query string. */
function fepsFlag(query: Record<string, unknown>, body: Record<string, unknown>, name: 'upsert' | 'replaceAllFields'): boolean {
  return truthy(query[name]) || (body._entity !== undefined && truthy(body[name]));
}

/** A body that is a query (`{ q, keys }` for updates, `{ q }` for deletes) rather than a record. */
function isQueryBody(body: unknown): body is { q: unknown; keys?: unknown } {
  return !!body && typeof body === 'object' && 'q' in body && typeof (body as { q: unknown }).q === 'object';
}

/**
 * Who reads a file: the app token as a Bearer header, as `?token=` / `?fileToken=`
 * (images and links cannot send headers), or, as freezr does it, the token cookie the
 * server sets with each app page (apps/serve.ts), so that plain file addresses work in
 * `<img>`, `new Image()`, CSS and download links and no app stores a token in a URL.
 * The cookie counts only on the app's own origin (subdomain mode: there the page's own is
 * host-only, SameSite=Strict, and namesakes tossed in by sibling hosts are sorted out by
 * pageTokenCookie; in path mode its path leaves out /feps), only for a request the browser marks same-origin or user-typed (a sibling
 * app's origin is same-site, and Strict cookies go along there), and such an answer
 * may be used by its own origin only (Cross-Origin-Resource-Policy).
 */
async function fileAccess(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<Access> {
  if (!request.headers.authorization) {
    const q = request.query as Record<string, unknown>;
    const token = q.token ?? q.fileToken;
    if (typeof token === 'string' && token.startsWith(FILE_TOKEN_PREFIX)) return fileTokenAccess(services, request, token);
    if (typeof token === 'string') request.headers.authorization = `Bearer ${token}`;
    else {
      const cookie = await pageTokenCookie(services, request);
      if (cookie !== null) {
        request.headers.authorization = `Bearer ${cookie}`;
        reply.header('Cross-Origin-Resource-Policy', 'same-origin');
      }
    }
  }
  return accessFrom(services, request);
}

/** A file token (getuserfiletoken) reads the one file it was made for, as the app token it was made with. */
async function fileTokenAccess(services: Services, request: FastifyRequest, token: string): Promise<Access> {
  const params = request.params as { app_name: string; user_id: string; '*': string };
  const check = await services.tokens.checkFileToken(token, params.user_id, params.app_name, normaliseUserFilePath(params['*']));
  if (!check.ok) {
    throw check.reason === 'expired'
      ? new FreeholdError('token_expired', 'The file token has expired')
      : new FreeholdError('unauthorized', 'Invalid file token');
  }
  return { userId: check.claims.userId, ownerId: check.claims.ownerId, appName: check.claims.appName };
}

/**
 * The app page's token cookie, when it may stand for the app token (fileAccess says when).
 * A sibling app host can toss cookies named `app_token_<user>` for the parent domain
 * (cookie-values.ts), so every value sent is a candidate and the one used is a live app
 * token for the app (and, first choice, the owner) whose file is asked for: a decoy can
 * neither lock the page out of its own files nor stand in for the page (a tosser holds
 * only its own apps' tokens). With none such, the first value, refused as it would be alone.
 */
async function pageTokenCookie(services: Services, request: FastifyRequest): Promise<string | null> {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return null;
  const host = resolveAppHost(services.config, request.headers.host);
  if (host === null) return null;
  const { app_name, user_id } = request.params as { app_name: string; user_id: string };
  // The page's cookie is named after its owner (the host's, and the file's): other names
  // are not it, so a tosser cannot crowd it out with names of its own invention.
  const names = new Set([`app_token_${user_id}`, ...(host.kind === 'named' ? [`app_token_${host.owner}`] : [])]);
  const values = cookieValues(request.headers.cookie, (name) => names.has(name));
  if (values.length <= 1) return values[0] ?? null;
  let sameApp: string | null = null;
  for (const value of values) {
    const check = await services.tokens.check(value, 'app');
    if (!check.ok || check.claims.appName.toLowerCase() !== app_name.toLowerCase()) continue;
    if (check.claims.ownerId === user_id) return value;
    sameApp ??= value;
  }
  return sameApp ?? values[0]!;
}

/** Sec-Fetch-Dest values of requests that would run the response as code. */
const CODE_DESTINATIONS = new Set(['script', 'worker', 'sharedworker', 'serviceworker', 'audioworklet', 'paintworklet', 'xslt']);

/** freezr's extension endpoints that freezr apps rely on (CEPS.md §7). */
export async function fepsRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  const rateLimit = apiRateLimit(services);

  const write = async (request: FastifyRequest<{ Params: { app_table: string; id?: string }; Querystring: { upsert?: string; replaceAllFields?: string } }>) => {
    const access = await accessFrom(services, request);
    const { app_table, id } = request.params as { app_table: string; id?: string };
    const body = request.body as Record<string, unknown>;
    const wrapped = body._entity !== undefined;
    const flag = (name: 'upsert' | 'replaceAllFields') => fepsFlag(request.query, body, name);
    const entity = (wrapped ? body._entity : body) as Record<string, unknown> | undefined;
    const idOf = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);
    const recordId = id ?? (wrapped ? idOf(body.data_object_id) : undefined) ?? idOf(entity?._id);
    if (flag('upsert')) {
      if (!recordId) throw new FreeholdError('bad_request', 'upsert needs a record id');
      return services.records.upsert(access, app_table, recordId, body, flag('replaceAllFields'));
    }
    return services.records.create(access, app_table, body, recordId);
  };

  const writeSchema = <P extends typeof TableParams | typeof RecordParams>(params: P) => ({
    tags: ['feps'], security: bearer, params, querystring: FlagQuery, body: AnyObject, response: { 200: WriteReply },
  });
  app.post('/feps/write/:app_table', { config: { rateLimit }, schema: { summary: 'Create (optionally with _id, or upsert)', ...writeSchema(TableParams) } }, write);
  app.post('/feps/write/:app_table/:id', { config: { rateLimit }, schema: { summary: 'Create with an id, or upsert', ...writeSchema(RecordParams) } }, write);
  app.post('/feps/upsert/:app_table/:id', { config: { rateLimit }, schema: { summary: 'Upsert by id', ...writeSchema(RecordParams) } },
    async (request) => {
      const access = await accessFrom(services, request);
      return services.records.upsert(access, request.params.app_table, request.params.id, request.body, truthy(request.query.replaceAllFields));
    });

  const updateOne = async (request: FastifyRequest, app_table: string, id: string) => {
    const access = await accessFrom(services, request);
    return fepsFlag(request.query as Record<string, unknown>, request.body as Record<string, unknown>, 'replaceAllFields')
      ? services.records.replace(access, app_table, id, request.body)
      : services.records.updateFields(access, app_table, id, request.body);
  };
  const updateSchema = { tags: ['feps'], summary: 'Update some fields (or all with replaceAllFields=true)', security: bearer, querystring: FlagQuery, body: AnyObject };
  app.put('/feps/update/:app_table/:id', { config: { rateLimit }, schema: { ...updateSchema, params: RecordParams } },
    (request) => updateOne(request, request.params.app_table, request.params.id));
  // freezr also takes an id of several segments, unencoded (a file's path, `a/b.gif`), as freezrApiV2 sends it.
  app.put('/feps/update/:app_table/:id/*', { config: { rateLimit }, schema: { ...updateSchema, params: MultiSegmentRecordParams } },
    (request) => updateOne(request, request.params.app_table, multiSegmentId(request.params)));

  app.put('/feps/update/:app_table', {
    config: { rateLimit },
    schema: {
      tags: ['feps'], summary: 'Update every record matching q with keys', security: bearer, params: TableParams,
      body: Type.Object({ q: Type.Object({}, { additionalProperties: true }), keys: Type.Object({}, { additionalProperties: true }) }, { additionalProperties: true }),
    },
  }, async (request) => {
    const access = await accessFrom(services, request);
    return services.records.updateWhere(access, request.params.app_table, validateWhere(request.body.q), request.body.keys);
  });

  app.delete('/feps/delete/:app_table/:id', {
    config: { rateLimit },
    schema: { tags: ['feps'], summary: 'Delete one record', security: bearer, params: RecordParams },
  }, async (request) => {
    const access = await accessFrom(services, request);
    return services.records.delete(access, request.params.app_table, request.params.id);
  });
  app.delete('/feps/delete/:app_table/:id/*', {
    config: { rateLimit },
    schema: { tags: ['feps'], summary: 'Delete one record whose id has several segments (a file path)', security: bearer, params: MultiSegmentRecordParams },
  }, async (request) => {
    const access = await accessFrom(services, request);
    return services.records.delete(access, request.params.app_table, multiSegmentId(request.params));
  });

  app.delete('/feps/delete/:app_table', {
    config: { rateLimit },
    schema: {
      tags: ['feps'], summary: 'Delete every record matching q (q must be given; {} deletes all)', security: bearer, params: TableParams,
      body: Type.Object({ q: Type.Object({}, { additionalProperties: true }) }, { additionalProperties: true }),
    },
  }, async (request) => {
    const access = await accessFrom(services, request);
    if (!isQueryBody(request.body)) throw new FreeholdError('bad_request', 'Give q, the query of the records to delete');
    return services.records.deleteWhere(access, request.params.app_table, validateWhere(request.body.q));
  });

  app.post('/feps/restore/:app_table', {
    config: { rateLimit },
    schema: { tags: ['feps'], summary: 'Write back a record with its own id and dates', security: bearer, params: TableParams, body: AnyObject, response: { 200: WriteReply } },
  }, async (request) => {
    const access = await accessFrom(services, request);
    return services.records.restore(access, request.params.app_table, request.body);
  });

  app.put('/feps/upload/:app_name', {
    config: { rateLimit },
    schema: { tags: ['feps'], summary: 'Upload a file (multipart: file, options)', security: bearer, params: Type.Object({ app_name: AppNameParam }), consumes: ['multipart/form-data'] },
  }, async (request) => {
    const access = await accessFrom(services, request);
    if (assertAppName(request.params.app_name) !== access.appName) throw new FreeholdError('forbidden', "This app's token cannot upload for another app");
    if (!request.isMultipart()) throw new FreeholdError('bad_request', 'Expected a multipart/form-data body with a file');
    let options: Record<string, unknown> | undefined;
    let staged: { upload: StagedUpload; filename: string } | undefined;
    try {
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (part.fieldname === 'options' && typeof part.value === 'string' && part.value !== '') {
            options = parseOptions(part.value);
            // As for every write: an upload into another owner's files is not done in the caller's own instead.
            const owner = options.owner_id;
            if (owner !== undefined && owner !== null && owner !== '' && owner !== access.ownerId) {
              throw new FreeholdError('forbidden', 'owner_id selects another owner only for reads; this upload goes to your own files only');
            }
          }
          continue;
        }
        if (part.fieldname !== 'file' || staged) {
          part.file.resume();
          continue;
        }
        if (options) return await services.files.upload(access, part.file, part.filename, part.mimetype, options);
        staged = { upload: await services.files.stage(access, part.file, part.mimetype), filename: part.filename };
      }
    } catch (err) {
      if (staged) await services.files.discardStaged(access, staged.upload);
      throw err;
    }
    if (staged) return services.files.commitStaged(access, staged.upload, staged.filename, options ?? {});
    throw new FreeholdError('bad_request', 'No file part named "file" in the upload');
  });

  const userFile = async (request: FastifyRequest<{ Params: { app_name: string; user_id: string; '*': string } }>, reply: FastifyReply) => {
    const access = await fileAccess(services, request, reply);
    // An uploaded file is never code a page runs: not as a script, module, worker or worklet.
    if (CODE_DESTINATIONS.has(String(request.headers['sec-fetch-dest']))) {
      throw new FreeholdError('forbidden', 'Uploaded files are not served as scripts');
    }
    const appName = assertAppName(request.params.app_name);
    if (appName !== access.appName) throw new FreeholdError('forbidden', "This app's token cannot read another app's files");
    const ownerId = assertUserId(request.params.user_id);
    const head = await services.files.head(access, ownerId, request.params['*']);
    if (!head) throw new FreeholdError('not_found', 'No such file');
    const range = parseRange(request.headers.range, head.size);
    const opened = request.method === 'HEAD' ? null : await services.files.open(access, ownerId, request.params['*'], range ?? undefined);
    // Uploaded files never run as pages on our origin: attachment unless plainly safe to show inline.
    return sendBlob(request, reply, head, opened?.stream ?? null, range, { download: request.params['*'].split('/').pop() ?? 'file' });
  };
  const userFileSchema = {
    tags: ['feps'], summary: 'Read an uploaded file (Range supported)', security: bearer,
    params: Type.Object({ app_name: AppNameParam, user_id: Type.String({ maxLength: 34 }), '*': Type.String({ maxLength: 1000 }) }),
    querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 200 })), fileToken: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: true }),
  };
  // GET and HEAD share one handler; Fastify's generated HEAD route would reset Content-Length to 0.
  // freezr also serves files to a Bearer token at /feps/fetchuserfiles/…: the same here.
  for (const url of ['/feps/userfiles/:app_name/:user_id/*', '/feps/fetchuserfiles/:app_name/:user_id/*']) {
    app.route({ method: ['GET', 'HEAD'], url, exposeHeadRoute: false, config: { rateLimit }, schema: userFileSchema, handler: userFile });
  }

  // freezr's library (freezr.utils.getFileToken, which apps shipping their own copy of it call)
  // asks this for the `?fileToken=` of a file address; an app token is what that parameter takes.
  app.get('/feps/getuserfiletoken/:permission_name/:app_name/:user_id/*', {
    config: { rateLimit },
    schema: {
      tags: ['feps'], summary: "The token for an uploaded file's address (?fileToken=), as freezr's library asks for it", security: bearer,
      params: Type.Object({ permission_name: Type.String({ minLength: 1, maxLength: 100 }), ...userFileSchema.params.properties }),
      response: { 200: Type.Object({ fileToken: Type.String() }) },
    },
  }, async (request) => {
    const claims = await requireAppToken(services, request);
    const access: Access = { userId: claims.userId, ownerId: claims.ownerId, appName: claims.appName };
    if (assertAppName(request.params.app_name) !== access.appName) throw new FreeholdError('forbidden', "This app's token cannot read another app's files");
    const owner = assertUserId(request.params.user_id);
    const head = await services.files.head(access, owner, request.params['*']);
    if (!head) throw new FreeholdError('not_found', 'No such file');
    // That file's own token, not the app's: apps keep it in links and records (freezr's are per file too).
    return { fileToken: services.tokens.fileToken(bearerToken(request)!, claims, normaliseUserFilePath(request.params['*'])) };
  });

  app.delete('/feps/userfiles/:app_name/:user_id/*', {
    config: { rateLimit },
    schema: { tags: ['feps'], summary: 'Delete an uploaded file', security: bearer, params: userFileSchema.params },
  }, async (request) => {
    const access = await accessFrom(services, request);
    if (request.params.app_name !== access.appName || request.params.user_id !== access.ownerId) {
      throw new FreeholdError('forbidden', 'This token cannot delete that file');
    }
    return services.files.remove(access, request.params['*']);
  });

  app.get('/feps/manifest/:app', {
    config: { rateLimit },
    schema: { tags: ['feps'], summary: "An installed app's manifest", security: bearer, params: Type.Object({ app: AppNameParam }) },
  }, async (request) => {
    const access = await accessFrom(services, request);
    const appName = assertAppName(request.params.app);
    if (appName !== access.appName) throw new FreeholdError('forbidden', "This app's token cannot read another app's manifest");
    // freezr clients read the manifest in the app's own words (snake_case keys), not our normalised form,
    // and beside it the app tables that hold data.
    const [manifest, tables] = await Promise.all([services.apps.rawManifest(access.ownerId, appName), services.apps.usedTables(access.ownerId, appName)]);
    return { manifest, app_name: appName, app_tables: tables };
  });

  app.get('/feps/permissions/getall/:app', {
    config: { rateLimit },
    schema: { tags: ['feps'], summary: "An app's permissions", security: bearer, params: Type.Object({ app: AppNameParam }) },
  }, async (request) => {
    const access = await accessFrom(services, request);
    const appName = assertAppName(request.params.app);
    if (appName !== access.appName) throw new FreeholdError('forbidden', "This app's token cannot read another app's permissions");
    return services.permissions.list(access.ownerId, appName);
  });

  app.put('/feps/permissions/change', {
    schema: {
      tags: ['feps'], summary: 'Accept or deny a permission (account token or signed-in owner)',
      body: Type.Object({
        change: Type.Object({
          name: Type.String({ maxLength: 100 }),
          table_id: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 100 }), Type.Array(Type.String({ maxLength: 100 }), { maxItems: 50 })])),
          requestor_app: Type.String({ maxLength: 35 }),
          action: Type.Union([Type.Literal('Accept'), Type.Literal('Deny')]),
        }, { additionalProperties: true }),
        targetApp: Type.Optional(Type.String({ maxLength: 35 })),
      }, { additionalProperties: true }),
    },
  }, async (request) => {
    const { userId } = await requireAccount(services, request);
    const { change } = request.body;
    const result = await services.permissions.change(userId, {
      name: change.name, requestor_app: change.requestor_app, action: change.action,
      ...(change.table_id !== undefined ? { table_id: change.table_id } : {}),
    });
    return { success: true, name: result.name, requestor_app: result.requestor_app, granted: result.granted };
  });
}

/** The upload's `options` field: its bytes (the multipart parser hands fields over as latin1, byte for byte: server.ts), as JSON. */
function parseOptions(raw: string): Record<string, unknown> {
  try {
    const v = parseStrictJson(Buffer.from(raw, 'latin1'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch (err) {
    if (err instanceof FreeholdError) throw err;
  }
  throw new FreeholdError('bad_request', 'options must be a JSON object');
}
