import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken, requireAppToken } from '../auth.js';
import { queryFromParams, NEWEST_FIRST } from './query-params.js';
import { validateQuery } from '../../query/validate.js';
import { AnyObject, AppTableParam, MultiSegmentRecordParams, RecordIdParam, WriteReply, bearer, multiSegmentId } from '../schemas.js';
import { SERVER_VERSION } from '../version.js';
import type { Access } from '../../core/records/access.js';
import type { Services } from '../../core/services.js';
import { FreeholdError } from '../../core/errors.js';
import { apiRateLimit } from '../rate-limits.js';

const TableParams = Type.Object({ app_table: AppTableParam });
const RecordParams = Type.Object({ app_table: AppTableParam, id: RecordIdParam });

export async function accessFrom(services: Services, request: FastifyRequest): Promise<Access> {
  const claims = await requireAppToken(services, request);
  const access = { userId: claims.userId, ownerId: claims.ownerId, appName: claims.appName };
  // `owner_id` selects another owner's store for reads only. On a write it was ignored,
  // so a delete meant for another owner's records removed the caller's own: refused.
  // By the route matched, not request.url: that is the raw path, and `/%66eps/…` routes as `/feps/…`.
  const route = request.routeOptions.url ?? '';
  if (request.method !== 'GET' && request.method !== 'HEAD' && !route.startsWith('/ceps/query/') && !route.startsWith('/feps/query/')) {
    const refuse = () => new FreeholdError('forbidden', 'owner_id selects another owner only for reads; this request acts on your own store only');
    const other = (v: unknown) => (Array.isArray(v) ? v : [v]).some((o) => o !== undefined && o !== null && o !== '' && o !== access.ownerId);
    // Any spelling in the query string (`owner_id`, `owner_id[]`, repeated).
    for (const [key, value] of Object.entries((request.query as Record<string, unknown> | undefined) ?? {})) {
      if ((key === 'owner_id' || key.startsWith('owner_id[')) && other(value)) throw refuse();
    }
    // FEPS bodies wrap the record (`_entity`) or the query (`q`) and carry their options
    // beside it, as freezr's client sends them; a CEPS body is the record itself.
    const body = request.body;
    if (route.startsWith('/feps/') && body !== null && typeof body === 'object' && !Array.isArray(body) && other((body as Record<string, unknown>).owner_id)) {
      throw refuse();
    }
  }
  return access;
}

/** The owner whose store a read addresses: `owner_id` may name another user (sharing). */
function ownerParam(access: Access, v: unknown): string {
  if (v === undefined || v === '' || v === access.ownerId) return access.ownerId;
  if (typeof v !== 'string' || v.length > 200) throw new FreeholdError('bad_request', 'owner_id must be a user id');
  return v;
}

/** Sends JSON text that is already serialised (records as the store keeps them). */
function sendJson(reply: FastifyReply, json: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}

/** CEPS 2.0 record endpoints (CEPS.md §3). Bearer tokens only, never cookies. */
export async function cepsRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  const rateLimit = apiRateLimit(services);

  // Also under /feps, as freezr serves it.
  for (const api of ['ceps', 'feps'] as const) app.get(`/${api}/ping`, {
    schema: {
      tags: [api], summary: 'Server identity, and whether the token is valid',
      response: { 200: Type.Object({
        logged_in: Type.Boolean(), user_id: Type.Optional(Type.String()), app_name: Type.Optional(Type.String()),
        server_type: Type.String(), server_version: Type.String(), ceps_version: Type.String(),
      }) },
    },
  }, async (request, reply) => {
    const base = { server_type: 'freehold', server_version: SERVER_VERSION, ceps_version: '2.0' };
    // Serialised here, byte for byte as the schema's serializer writes it (required fields
    // first; a test compares the two), rather than by a serializer compiled from the schema
    // (which describes the answer): that would load fast-json-stringify and all of Ajv with
    // it (lazy-compilers.ts), two megabytes for a server that has only been pinged.
    const answer = async () => {
      const token = bearerToken(request);
      if (!token) return { logged_in: false, ...base };
      const check = await services.tokens.check(token, 'app');
      if (!check.ok) return { logged_in: false, ...base };
      return { logged_in: true, ...base, user_id: check.claims.userId, app_name: check.claims.appName };
    };
    return sendJson(reply, JSON.stringify(await answer()));
  });

  app.post('/ceps/write/:app_table', {
    config: { rateLimit },
    schema: { tags: ['ceps'], summary: 'Create a record', security: bearer, params: TableParams, body: AnyObject, response: { 200: WriteReply } },
  }, async (request) => {
    const access = await accessFrom(services, request);
    return services.records.create(access, request.params.app_table, request.body);
  });

  // Reads, also under /feps: freezr serves them there too, and apps that ship their own
  // copy of freezr's older client library call /feps/read and /feps/query.
  for (const api of ['ceps', 'feps'] as const) {
    app.get(`/${api}/read/:app_table/:id`, {
      config: { rateLimit },
      schema: {
        tags: [api], summary: 'Read one record', security: bearer, params: RecordParams,
        querystring: Type.Object({ owner_id: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: true }),
      },
    }, async (request, reply) => {
      const access = await accessFrom(services, request);
      const { app_table, id } = request.params;
      return sendJson(reply, await services.records.readJson(access, app_table, id, ownerParam(access, (request.query as Record<string, unknown>).owner_id)));
    });

    app.get(`/${api}/query/:app_table`, {
      config: { rateLimit },
      schema: {
        tags: [api], summary: 'Query by equality parameters', security: bearer, params: TableParams,
        querystring: Type.Object({}, { additionalProperties: true, description: 'field=value equality filters; _count, _skip, _modified_after, _modified_before' }),
      },
    }, async (request, reply) => {
      const access = await accessFrom(services, request);
      // The query-string parser keeps a broken escape (`%ZZ`) as written: a filter on text nobody meant.
      const q = request.url.indexOf('?');
      if (q >= 0 && /%(?![0-9A-Fa-f]{2})/.test(request.url.slice(q + 1))) {
        throw new FreeholdError('invalid_query', 'The query string has a malformed %-escape');
      }
      const params = { ...(request.query as Record<string, unknown>) };
      const ownerId = ownerParam(access, params.owner_id);
      delete params.owner_id;
      return sendJson(reply, await services.records.queryJson(access, request.params.app_table, queryFromParams(params), ownerId));
    });

    app.post(`/${api}/query/:app_table`, {
      config: { rateLimit },
      schema: {
        tags: [api], summary: 'Query with the query language', security: bearer, params: TableParams,
        body: Type.Object({
          q: Type.Optional(Type.Unknown()), sort: Type.Optional(Type.Unknown()), count: Type.Optional(Type.Unknown()),
          skip: Type.Optional(Type.Unknown()), owner_id: Type.Optional(Type.Unknown()), permission_name: Type.Optional(Type.Unknown()),
        }, { additionalProperties: true }),
      },
    }, async (request, reply) => {
      const access = await accessFrom(services, request);
      const body = request.body;
      const query = validateQuery(body.q, { sort: body.sort, skip: body.skip, count: body.count });
      // Stable pages: the client's sort, then CEPS's default order as tie-breakers.
      const seen = new Set(query.options.sort.map((s) => s.path.join('.')));
      const sort = query.options.sort.length === 0 ? NEWEST_FIRST
        : [...query.options.sort, ...NEWEST_FIRST.filter((s) => !seen.has(s.path.join('.')))];
      // freezr's /feps/query names the owner `user_id` ("requestee"); CEPS, `owner_id`.
      const owner = body.owner_id ?? (api === 'feps' ? (body as Record<string, unknown>).user_id : undefined);
      return sendJson(reply, await services.records.queryJson(access, request.params.app_table, { where: query.where, options: { ...query.options, sort } },
        ownerParam(access, owner)));
    });
  }

  app.put('/ceps/update/:app_table/:id', {
    config: { rateLimit },
    schema: { tags: ['ceps'], summary: 'Replace a record', security: bearer, params: RecordParams, body: AnyObject, response: { 200: WriteReply } },
  }, async (request) => {
    const access = await accessFrom(services, request);
    return services.records.replace(access, request.params.app_table, request.params.id, request.body);
  });

  const deleteOne = async (request: FastifyRequest, app_table: string, id: string) => {
    const access = await accessFrom(services, request);
    // freezr deletes a file through its record in `<app>.files`: the bytes go with it.
    if (app_table === services.files.filesTable(access.appName)) {
      const record = await services.records.read(access, app_table, id);
      await services.files.remove(access, id);
      return { _id: record._id, _date_created: record._date_created, _date_modified: record._date_modified, success: true };
    }
    return services.records.delete(access, app_table, id);
  };
  const deleteReply = { 200: Type.Object({ _id: Type.String(), _date_created: Type.Number(), _date_modified: Type.Number(), success: Type.Boolean() }) };
  app.delete('/ceps/delete/:app_table/:id', {
    config: { rateLimit },
    schema: { tags: ['ceps'], summary: 'Delete a record', security: bearer, params: RecordParams, response: deleteReply },
  }, (request) => deleteOne(request, request.params.app_table, request.params.id));
  // freezrApiV2's delete('files', 'a/b.gif') sends a file's path unencoded: an id of several segments.
  app.delete('/ceps/delete/:app_table/:id/*', {
    config: { rateLimit },
    schema: {
      tags: ['ceps'], summary: 'Delete a record whose id has several segments (a file path)', security: bearer, response: deleteReply,
      params: MultiSegmentRecordParams,
    },
  }, (request) => deleteOne(request, request.params.app_table, multiSegmentId(request.params)));

  app.get('/ceps/perms/get', {
    config: { rateLimit },
    schema: {
      tags: ['ceps'], summary: "The calling app's permissions", security: bearer,
      querystring: Type.Object({ table_id: Type.Optional(Type.String({ maxLength: 100 })), name: Type.Optional(Type.String({ maxLength: 100 })) }),
    },
  }, async (request) => {
    const access = await accessFrom(services, request);
    const { table_id, name } = request.query;
    const perms = await services.permissions.list(access.ownerId, access.appName);
    return perms.filter((p) => (name === undefined || p.name === name) && (table_id === undefined || p.table_id.includes(table_id)));
  });
}
