import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppHostLabels } from '../../core/apps/host-labels.js';
import { FreeholdError } from '../../core/errors.js';
import { classifyHost, mainOrigin, type HostKind, type ParsedAppHost } from '../app-origin.js';
import { findWebRoot } from '../web/static.js';
import { appSessionViewer } from './app-session.js';
import { AppServing, appFilesTarget, checkRawPath, checkRest, decodePathPart, looksLikePage } from './serve.js';

/**
 * What an app host (subdomain mode) serves, decided before any route runs:
 *  - the server's bearer APIs, `/ceps/*` and `/feps/*` (an app's pages call them on
 *    their own origin: no CORS, no cookies), `/public/query`, the client library
 *    `/lib/<file>`, and the handoff's `/_freehold/enter`;
 *  - everything else is the app's own pages and files, from the root: `/index`,
 *    `/static/app.css` (and, for apps that spell freezr's paths, `/apps/<this app>/…`, and its
 *    files only at `/app_files/[<owner>/]<this app>/…`).
 * So the owner's pages and the account API (`/`, `/home`, `/signin`, `/acctapi/*`,
 * admin, export) do not exist on an app host: those paths are the app's, and an app
 * has no file there, so they answer 404. Another app's files cannot be asked for at
 * all: the host names the app. A host under the apps domain that names no app serves
 * nothing.
 */

/** Path prefixes the server keeps on app hosts (an app's own folder of that name is shadowed). */
const SERVICE_PREFIXES = ['/ceps/', '/feps/', '/_freehold/', '/public/query'];

/** The (owner, app) a parsed host names; hashed labels are looked up. */
export async function hostApp(labels: AppHostLabels, host: ParsedAppHost): Promise<{ owner: string; app: string } | null> {
  if (host.kind === 'named') return { owner: host.owner, app: host.app };
  return labels.find(host.label);
}

export function registerAppHosts(app: FastifyInstance): void {
  const { services } = app;
  const labels = new AppHostLabels(services.stores.host);
  const serving = new AppServing(services);
  // Only the files the server really has under /lib are its; any other /lib/… is the app's (apps often have a lib/ folder).
  const libFiles = new Set(readdirSync(path.join(findWebRoot(), 'lib')).map((f) => `/lib/${f}`));
  const isServicePath = (p: string) => libFiles.has(p) || SERVICE_PREFIXES.some((s) => p === s || p.startsWith(s));

  async function serveContent(request: FastifyRequest, reply: FastifyReply, target: { owner: string; app: string }, rawPath: string) {
    if (request.method !== 'GET' && request.method !== 'HEAD') throw new FreeholdError('not_found', `No route for ${request.method} ${rawPath.slice(0, 200)}`);
    checkRawPath(request.url);
    // freezr apps may spell their own files `/apps/<app>/…`: the same files, on this origin only.
    let appPath = rawPath;
    const alias = /^\/apps\/([^/]+)(\/.*)?$/.exec(rawPath);
    if (alias && decodePathPart(alias[1]!).toLowerCase() === target.app.toLowerCase()) appPath = alias[2] ?? '/';
    // And freezr's `/app_files/[<owner>/]<app>/…`: this app's files only, never a page.
    const files = appFilesTarget(rawPath);
    const filesOnly = files !== null && files.app.toLowerCase() === target.app.toLowerCase() && (files.owner === null || files.owner === target.owner);
    if (filesOnly) appPath = '/' + files.rest;
    const rest = checkRest(decodePathPart(appPath.slice(1)));

    const session = await appSessionViewer(services, request, target.owner, target.app);
    if (!session) {
      if ((request.method === 'GET' || request.method === 'HEAD') && !filesOnly && looksLikePage(rest)) {
        // Back through the main origin, which signs the owner in if needed and hands off again.
        const search = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
        return reply.redirect(`${mainOrigin(services.config)}/apps/${encodeURIComponent(target.app)}${appPath}${search}`);
      }
      throw new FreeholdError('unauthorized', 'Open the app from your home page first');
    }
    const installed = await services.apps.get(target.owner, session.appName);
    if (!installed) throw new FreeholdError('not_found', `App ${session.appName} is not installed`);
    return filesOnly
      ? serving.serveFile(request, reply, session.viewer, installed, rest)
      : serving.serve(request, reply, session.viewer, installed, rest);
  }

  /** Answers a request on an app host, or says (false) that a route of the server's answers it. */
  async function onAppHost(request: FastifyRequest, reply: FastifyReply, kind: Exclude<HostKind, { kind: 'main' }>): Promise<boolean> {
    const rawPath = request.url.split('?')[0]!;
    if (kind.kind === 'none') throw new FreeholdError('not_found', 'No app is served at this address');
    if (isServicePath(rawPath)) return false;
    const target = await hostApp(labels, kind.host);
    if (!target) throw new FreeholdError('not_found', 'No app is served at this address');
    if (rawPath === '/favicon.ico') {
      // Browsers ask every origin for one unprompted: an app without its own gets an
      // empty answer, as the main origin gives, rather than an error in its console.
      try {
        await serveContent(request, reply, target, rawPath);
      } catch (err) {
        if (!(err instanceof FreeholdError) || (err.code !== 'not_found' && err.code !== 'unauthorized')) throw err;
        // Any origin may have nothing: a sandboxed view (a raw file, an error page) asks from an opaque origin.
        reply.code(204).header('Cross-Origin-Resource-Policy', 'cross-origin').send();
      }
      return true;
    }
    await serveContent(request, reply, target, rawPath);
    return true;
  }

  // Callback style with the main origin's requests passed on at once: this runs on every
  // request, and an async hook costs each a promise (measured on CEPS reads). A hook that
  // answers does not call done().
  app.addHook('onRequest', (request, reply, done) => {
    const kind = classifyHost(services.config, request.host);
    if (kind.kind === 'main') return done();
    onAppHost(request, reply, kind).then((answered) => {
      if (!answered) done();
    }, done);
  });
}
