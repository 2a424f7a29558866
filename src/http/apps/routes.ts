import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FreeholdError } from '../../core/errors.js';
import { assertAppName } from '../../core/names.js';
import type { KeptData as KeptAppData } from '../../core/apps/service.js';
import { effectiveMode } from '../app-origin.js';
import { currentOwner, requireOwner, signInAddress, type OwnerContext } from '../auth.js';
import { AppNameParam, ErrorReply } from '../schemas.js';
import { withUploadedFile } from '../upload-to-temp.js';
import { startHandoff } from './handoff.js';
import { AppServing, appFilesTarget, checkRawPath, checkRest, decodePathPart, looksLikePage, type Viewer } from './serve.js';

/**
 * Installed apps on the main origin (`/apps/<app>/…`) and the owner's app management
 * (`/acctapi/apps…`). In path mode the main origin serves the app's pages and files
 * itself; in subdomain mode `/apps/<app>[/<page>]` is only the door to the app's own
 * origin (handoff.ts). Which origin serves an app is decided only by app-origin.ts.
 */

const AppParams = Type.Object({ app: AppNameParam });
const AppFileParams = Type.Object({ app: AppNameParam, '*': Type.String({ maxLength: 600, description: 'Page name or file path inside the app' }) });
const AppSummary = Type.Object({
  app_name: Type.String(), display_name: Type.String(), version: Type.String(), installed_at: Type.Number(), updated_at: Type.Number(),
});
const InstallReply = Type.Object({
  app_name: Type.String(), version: Type.String(), installed: Type.Boolean(), updated: Type.Boolean(),
  warnings: Type.Optional(Type.Array(Type.String(), { description: 'What the manifest asked for that was left out' })),
  to_decide: Type.Array(Type.String(), { description: 'Permissions the app declares that are not granted: new ones, and granted ones an update changed' }),
  lapsed: Type.Array(Type.String(), { description: 'Of to_decide, those allowed before that this update changed: off until allowed again' }),
});
const RemoveQuery = Type.Object({ delete_data: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) });
const KeptData = Type.Object({
  app_name: Type.String(), tables: Type.Integer({ description: 'Its own tables left' }), records: Type.Integer({ description: 'Records in them, file records included' }),
  files: Type.Integer({ description: 'Files it stored (their records are among `records`)' }),
});
const keptReply = (k: KeptAppData) => ({ app_name: k.appName, tables: k.tables, records: k.records, files: k.files });

/** The signed-in owner as the viewer of their apps' pages and files. */
function viewerOf(owner: OwnerContext): Viewer {
  return { userId: owner.user.userId, isAdmin: owner.user.isAdmin, sessionHash: owner.session.hash, expiresAt: owner.session.expiresAt };
}

interface AppTarget {
  app: string;
  '*'?: string;
}

export async function appRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  const { config } = services;
  const serving = new AppServing(services);

  async function serve(request: FastifyRequest, params: AppTarget, reply: FastifyReply) {
    checkRawPath(request.url);
    const appName = assertAppName(params.app);
    const rest = checkRest(params['*'] ?? '');
    const owner = await currentOwner(services, request);
    const subdomain = effectiveMode(config) === 'subdomain';
    if (!owner) {
      if (subdomain || looksLikePage(rest)) return reply.redirect(signInAddress(services, request, request.url));
      throw new FreeholdError('unauthorized', 'Sign in first');
    }
    if (subdomain) {
      // The path after /apps/<app>, as sent (still encoded), with its query: where to land on the app's origin.
      const q = request.url.indexOf('?');
      const [rawPath, search] = q < 0 ? [request.url, ''] : [request.url.slice(0, q), request.url.slice(q)];
      const slash = rawPath.indexOf('/', '/apps/'.length);
      return startHandoff(services, request, reply, owner, appName, (slash < 0 ? '/' : rawPath.slice(slash)) + search);
    }
    const installed = await services.apps.get(owner.user.userId, appName);
    if (!installed) throw new FreeholdError('not_found', `App ${appName} is not installed`);
    return serving.serve(request, reply, viewerOf(owner), installed, rest);
  }

  const servingSchema = {
    tags: ['apps'],
    description: 'Needs a signed-in owner (session cookie). Path mode: pages are wrapped html, other paths the app\'s files (ETag, Range). '
      + 'Subdomain mode: redirects to the app\'s own origin through a one-time entry code.',
  };

  // HEAD is handled here rather than by Fastify's generated HEAD route, which would
  // replace the file's Content-Length with 0.
  app.route({
    method: ['GET', 'HEAD'], url: '/apps/:app', exposeHeadRoute: false,
    schema: { ...servingSchema, summary: "Redirects to the app's index page", params: AppParams },
    handler: (request, reply) => serve(request, request.params, reply),
  });

  app.route({
    method: ['GET', 'HEAD'], url: '/apps/:app/*', exposeHeadRoute: false,
    schema: {
      ...servingSchema, summary: 'An app page (by name or html_file) or file', params: AppFileParams,
      response: { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 416: ErrorReply },
    },
    handler: (request, reply) => serve(request, request.params, reply),
  });

  // freezr's other address for an app's files (never its pages): path mode only, since in
  // subdomain mode an app's files are on its own origin, which takes this address too.
  for (const [url, address] of [['/app_files/*', '/app_files/[<owner>/]<app>/<path>'], ['/app/*', '/app/[@<owner>/]<app>/<path>']] as const) app.route({
    method: ['GET', 'HEAD'], url, exposeHeadRoute: false,
    schema: {
      ...servingSchema, summary: `An app's file at freezr's address: ${address}`, params: Type.Object({ '*': Type.String({ maxLength: 2000 }) }),
      response: { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 416: ErrorReply },
    },
    handler: async (request, reply) => {
      checkRawPath(request.url);
      const target = appFilesTarget(request.url.split('?')[0]!);
      if (!target) throw new FreeholdError('not_found', 'No such file');
      const rest = checkRest(decodePathPart(target.rest));
      const owner = await currentOwner(services, request);
      if (!owner) throw new FreeholdError('unauthorized', 'Sign in first');
      if (effectiveMode(config) === 'subdomain') throw new FreeholdError('not_found', "An app's files are served on its own origin");
      const installed = target.owner === null || target.owner === owner.user.userId ? await services.apps.get(owner.user.userId, target.app) : null;
      if (!installed) throw new FreeholdError('not_found', `App ${target.app} is not installed`);
      return serving.serveFile(request, reply, viewerOf(owner), installed, rest);
    },
  });

  app.get('/acctapi/apps', {
    schema: { tags: ['account'], summary: "The signed-in owner's installed apps", response: { 200: Type.Object({ apps: Type.Array(AppSummary) }) } },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    const apps = await services.apps.list(owner.user.userId);
    return {
      apps: apps.map((a) => ({
        app_name: a.appName, display_name: a.displayName, version: a.version, installed_at: a.installedAt, updated_at: a.updatedAt,
      })),
    };
  });

  app.post('/acctapi/apps/install', {
    schema: {
      tags: ['account'], summary: 'Install or update an app from a zip (multipart field `file`)', consumes: ['multipart/form-data'],
      response: { 200: InstallReply, 400: ErrorReply, 413: ErrorReply },
    },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    return withUploadedFile(request, 'the app package', config.maxAppBytes, async (zipPath) => {
      const result = await services.apps.install(owner.user.userId, { zipPath });
      const declared = await services.permissions.list(owner.user.userId, result.appName);
      return {
        app_name: result.appName, version: result.version, installed: true, updated: result.updated,
        ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}),
        to_decide: declared.filter((p) => !p.granted).map((p) => p.name),
        lapsed: declared.filter((p) => p.lapsed).map((p) => p.name),
      };
    });
  });

  app.delete('/acctapi/apps/:app', {
    schema: {
      tags: ['account'], summary: "Remove an app (its data too with delete_data=true)", params: AppParams, querystring: RemoveQuery,
      response: { 200: Type.Object({ app_name: Type.String(), removed: Type.Boolean() }), 404: ErrorReply },
    },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    const appName = assertAppName(request.params.app);
    await services.apps.remove(owner.user.userId, appName, { deleteData: request.query.delete_data === 'true' });
    return { app_name: appName, removed: true };
  });

  app.get('/acctapi/apps/:app/permissions', {
    schema: {
      tags: ['account'], summary: "An installed app's declared permissions and whether each is granted (change them with PUT /feps/permissions/change)",
      params: AppParams, response: { 200: Type.Object({ app_name: Type.String(), permissions: Type.Array(Type.Object({}, { additionalProperties: true })) }), 404: ErrorReply },
    },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    const appName = assertAppName(request.params.app);
    if (!(await services.apps.get(owner.user.userId, appName))) throw new FreeholdError('not_found', `App ${appName} is not installed`);
    return { app_name: appName, permissions: await services.permissions.list(owner.user.userId, appName) };
  });

  app.get('/acctapi/kept-data', {
    schema: {
      tags: ['account'], summary: 'Data left by apps that are not installed (removed with their data kept, or used from elsewhere)',
      response: { 200: Type.Object({ apps: Type.Array(KeptData) }) },
    },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    const kept = await services.apps.keptData(owner.user.userId);
    return { apps: kept.map(keptReply) };
  });

  app.delete('/acctapi/kept-data/:app', {
    schema: {
      tags: ['account'], summary: 'Delete the data an app that is not installed left here', params: AppParams,
      response: { 200: Type.Object({ ...KeptData.properties, deleted: Type.Boolean() }), 404: ErrorReply, 409: ErrorReply },
    },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    const k = await services.apps.deleteKeptData(owner.user.userId, assertAppName(request.params.app));
    return { ...keptReply(k), deleted: true };
  });
}
