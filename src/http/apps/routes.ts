import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppManifest } from '../../core/apps/manifest.js';
import { relPathProblem } from '../../core/apps/paths.js';
import { FreeholdError } from '../../core/errors.js';
import { assertAppName } from '../../core/names.js';
import { apiOrigin, appLocation } from '../app-origin.js';
import { accountCookieName, currentOwner, isSecureRequest, requireOwner, type OwnerContext } from '../auth.js';
import { AppNameParam, ErrorReply } from '../schemas.js';
import { RangeNotSatisfiable, parseRange, sendBlob } from '../send-blob.js';
import { SERVER_VERSION } from '../version.js';
import { newNonce, pageCsp, renderPage } from './page.js';
import { withUploadedFile } from '../upload-to-temp.js';

/**
 * Serving installed apps (`/apps/<app>/…`) and the owner's app management
 * (`/acctapi/apps…`). Which origin and path serve an app is decided only by
 * app-origin.ts; this file asks it and never spells `/apps/` into a URL itself.
 */

/** App files are never documents of this origin: an html or svg opened directly runs no script. */
const FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; media-src 'self'";

/**
 * Percent-encoded dots, slashes, backslashes and NULs decode into path syntax; no
 * real app file needs them spelled that way, so such a request is refused before
 * anything is looked up. (The decoded path is checked again by relPathProblem; this
 * is the second lock on the same door. A literal `%25` stays allowed: nothing
 * decodes a path twice, so it can only name a file with `%` in its name.)
 */
const ENCODED_TRAVERSAL = /%(2e|2f|5c|00)/i;

const AppParams = Type.Object({ app: AppNameParam });
const AppFileParams = Type.Object({ app: AppNameParam, '*': Type.String({ maxLength: 600, description: 'Page name or file path inside the app' }) });
const AppSummary = Type.Object({
  app_name: Type.String(), display_name: Type.String(), version: Type.String(), installed_at: Type.Number(), updated_at: Type.Number(),
});
const InstallReply = Type.Object({ app_name: Type.String(), version: Type.String(), installed: Type.Boolean(), updated: Type.Boolean() });
const RemoveQuery = Type.Object({ delete_data: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) });

interface AppTarget {
  app: string;
  '*'?: string;
}

function badPath(): FreeholdError {
  return new FreeholdError('bad_request', 'Invalid path');
}

/** Checks the raw URL and the decoded path; returns the app name and the path inside it. */
function parseTarget(request: FastifyRequest, params: AppTarget): { appName: string; rest: string } {
  const rawPath = request.url.split('?')[0]!;
  if (ENCODED_TRAVERSAL.test(rawPath) || rawPath.includes('\\')) throw badPath();
  const appName = assertAppName(params.app);
  const rest = params['*'] ?? '';
  if (rest !== '' && relPathProblem(rest) !== null) throw badPath();
  return { appName, rest };
}

/** What a browser navigates to (pages), as opposed to what a page fetches (files). */
function looksLikePage(rest: string): boolean {
  return rest === '' || !rest.includes('.') || /\.html?$/i.test(rest);
}

/** A page by its name (`index`) or by its html_file path (`index.html`, as apps reload themselves). */
function findPage(manifest: AppManifest, rest: string): string | undefined {
  if (Object.hasOwn(manifest.pages, rest)) return rest;
  return Object.keys(manifest.pages).find((name) => manifest.pages[name]!.htmlFile === rest);
}

function defaultPage(manifest: AppManifest): string | undefined {
  return Object.hasOwn(manifest.pages, 'index') ? 'index' : Object.keys(manifest.pages)[0];
}

export async function appRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  const { config } = services;

  /** URL of a page of the app, relative when the app lives on this origin. */
  function pageUrl(ownerId: string, appName: string, page: string): string {
    const loc = appLocation(config, ownerId, appName);
    return (loc.origin === apiOrigin(config) ? loc.pathPrefix : loc.baseUrl) + encodeURIComponent(page);
  }

  async function servePage(request: FastifyRequest, reply: FastifyReply, owner: OwnerContext, manifest: AppManifest, pageName: string) {
    // A wrapped page carries the app's token. Browsers say what a request is for; one app's
    // script fetching another app's page (to lift its token) is refused. Clients that send
    // no Sec-Fetch-Dest (not browsers) are not scripts of an app page.
    const dest = request.headers['sec-fetch-dest'];
    if (dest !== undefined && dest !== 'document') {
      throw new FreeholdError('forbidden', 'App pages are served only as top-level documents');
    }
    const ownerId = owner.user.userId;
    const appName = manifest.identifier;
    const page = manifest.pages[pageName]!;
    const bodyHtml = await services.apps.readText(ownerId, appName, page.htmlFile);
    const appToken = await services.tokens.pageToken(owner.session.hash, ownerId, appName, owner.session.expiresAt);
    const loc = appLocation(config, ownerId, appName);
    const nonce = newNonce();
    const html = renderPage({
      manifest, page, bodyHtml, appToken, userId: ownerId, isAdmin: owner.user.isAdmin,
      serverVersion: SERVER_VERSION, serverAddress: config.publicUrl, pathPrefix: loc.pathPrefix,
    }, nonce);
    // freezr pages also look for their token in this cookie, scoped to the app's own paths.
    // Not httpOnly on purpose: page scripts read it. CEPS never accepts cookies, so it
    // authorises nothing by itself being sent along.
    reply.setCookie(accountCookieName(ownerId), appToken, {
      path: loc.pathPrefix.replace(/\/$/, ''), sameSite: 'strict', httpOnly: false,
      secure: isSecureRequest(services, request), expires: new Date(owner.session.expiresAt),
    });
    return reply
      .header('Content-Security-Policy', pageCsp(nonce, loc.origin, apiOrigin(config)))
      .header('Cache-Control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(html);
  }

  async function serveFile(request: FastifyRequest, reply: FastifyReply, ownerId: string, appName: string, rest: string) {
    const file = await services.apps.statFile(ownerId, appName, rest);
    // A backend without content hashes still gets a strong ETag: an install never changes its files.
    const info = { ...file.info, etag: file.info.etag || `${file.installId}-${file.info.size}` };
    let range = null;
    const ifRange = request.headers['if-range'];
    if (ifRange === undefined || ifRange === `"${info.etag}"`) {
      try {
        range = parseRange(request.headers.range, info.size);
      } catch (err) {
        if (err instanceof RangeNotSatisfiable) reply.header('Content-Range', `bytes */${info.size}`);
        throw err;
      }
    }
    const stream = request.method === 'HEAD' ? null : (await services.apps.openFile(ownerId, appName, rest, range ?? undefined)).stream;
    reply.header('Content-Security-Policy', FILE_CSP);
    return sendBlob(request, reply, info, stream, range, { contentType: file.contentType, cacheControl: 'private, no-cache' });
  }

  async function serve(request: FastifyRequest, params: AppTarget, reply: FastifyReply) {
    const { appName, rest } = parseTarget(request, params);
    const owner = await currentOwner(services, request);
    if (!owner) {
      if (looksLikePage(rest)) return reply.redirect(`/signin?next=${encodeURIComponent(request.url)}`);
      throw new FreeholdError('unauthorized', 'Sign in first');
    }
    const ownerId = owner.user.userId;
    const installed = await services.apps.get(ownerId, appName);
    if (!installed) throw new FreeholdError('not_found', `App ${appName} is not installed`);
    const { manifest } = installed;
    if (rest === '') {
      const page = defaultPage(manifest);
      if (page === undefined) throw new FreeholdError('not_found', 'This app has no pages');
      return reply.redirect(pageUrl(ownerId, appName, page));
    }
    const pageName = findPage(manifest, rest);
    if (pageName !== undefined) return servePage(request, reply, owner, manifest, pageName);
    return serveFile(request, reply, ownerId, appName, rest);
  }

  const servingSchema = {
    tags: ['apps'],
    description: 'Needs a signed-in owner (session cookie). Pages are wrapped html; other paths are the app\'s files (ETag, Range).',
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
      return { app_name: result.appName, version: result.version, installed: true, updated: result.updated };
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
}
