import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppManifest, AppPage } from '../../core/apps/manifest.js';
import type { InstalledApp } from '../../core/apps/service.js';
import { relPathProblem } from '../../core/apps/paths.js';
import { FreeholdError } from '../../core/errors.js';
import { isValidAppName, isValidUserId } from '../../core/names.js';
import type { Services } from '../../core/services.js';
import { apiOrigin, appLocation, effectiveMode, mainOrigin } from '../app-origin.js';
import { accountCookieName, isSecureRequest } from '../auth.js';
import { RangeNotSatisfiable, parseRange, sendBlob } from '../send-blob.js';
import { SERVER_VERSION } from '../version.js';
import { grantedExtraHosts } from './csp-grants.js';
import { newNonce, pageCsp, renderPage, workerCsp } from './page.js';

/**
 * Serving one installed app's pages and files to a signed-in viewer, whichever origin
 * the request came to (the main origin in path mode, the app's own in subdomain mode:
 * routes.ts and app-host.ts decide who the viewer is and which app is meant).
 */

/** App files are never documents of this origin: an html or svg opened directly runs no script. */
const FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; media-src 'self'; frame-ancestors 'none'";

/**
 * Percent-encoded dots, slashes, backslashes and NULs decode into path syntax; no
 * real app file needs them spelled that way, so such a request is refused before
 * anything is looked up. (The decoded path is checked again by relPathProblem; this
 * is the second lock on the same door. A literal `%25` stays allowed: nothing
 * decodes a path twice, so it can only name a file with `%` in its name.)
 */
const ENCODED_TRAVERSAL = /%(2e|2f|5c|00)/i;

/** Who is looking: the owner, through the main session or an app-origin session bound to it. */
export interface Viewer {
  userId: string;
  isAdmin: boolean;
  /** Hash of the main sign-in session: page tokens are derived from it and die with it. */
  sessionHash: string;
  expiresAt: number;
}

export function badPath(): FreeholdError {
  return new FreeholdError('bad_request', 'Invalid path');
}

/** Refuses encoded traversal in the raw (undecoded) path of a request. */
export function checkRawPath(rawUrl: string): void {
  const rawPath = rawUrl.split('?')[0]!;
  if (ENCODED_TRAVERSAL.test(rawPath) || rawPath.includes('\\')) throw badPath();
}

/** Checks a decoded path inside an app ('' is the app's root). */
export function checkRest(rest: string): string {
  if (rest !== '' && relPathProblem(rest) !== null) throw badPath();
  return rest;
}

/**
 * freezr's other addresses for an app's files: `/app_files/<app>/<path>` or
 * `/app_files/<owner>/<app>/<path>` (told apart by the first segment: user ids have no
 * dots, app names at least two), and those of later freezr versions, `/app/<app>/<path>`
 * (its getHtml) and `/app/@<owner>/<app>/<path>` (its appFilePathFrom). The app, the
 * owner named (if any) and the raw path inside the app, or null when the path is not
 * of that shape.
 */
export function appFilesTarget(rawPath: string): { app: string; owner: string | null; rest: string } | null {
  const m = /^\/app_files\/([^/]+)\/(.*)$/.exec(rawPath) ?? /^\/app\/((?:@|%40)?[^/]+)\/(.*)$/.exec(rawPath);
  if (!m) return null;
  if (rawPath.startsWith('/app/')) {
    const first = decodePathPart(m[1]!);
    if (!first.startsWith('@')) return isValidAppName(first) ? { app: first, owner: null, rest: m[2]! } : null;
    const n = /^([^/]+)\/(.*)$/.exec(m[2]!);
    const [owner, app] = [first.slice(1), n ? decodePathPart(n[1]!) : ''];
    return n && isValidUserId(owner) && isValidAppName(app) ? { app, owner, rest: n[2]! } : null;
  }
  const [first, after] = [decodePathPart(m[1]!), m[2]!];
  if (isValidAppName(first)) return { app: first, owner: null, rest: after };
  const n = /^([^/]+)\/(.*)$/.exec(after);
  if (!n || !isValidUserId(first)) return null;
  const app = decodePathPart(n[1]!);
  return isValidAppName(app) ? { app, owner: first, rest: n[2]! } : null;
}

/** A raw (still encoded) part of a request path, decoded; malformed escapes are a bad path. */
export function decodePathPart(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badPath();
  }
}

/** What a browser navigates to (pages), as opposed to what a page fetches (files). */
export function looksLikePage(rest: string): boolean {
  return rest === '' || !rest.includes('.') || /\.html?$/i.test(rest);
}

/**
 * A wrapped page carries the app's token. Browsers say what a request is for; one
 * app's script fetching another app's page (to lift its token) is refused, as is a
 * frame. Clients that send no Sec-Fetch-Dest (not browsers) are not scripts of a page.
 */
export function requireDocumentRequest(request: FastifyRequest, what: string): void {
  const dest = request.headers['sec-fetch-dest'];
  if (dest !== undefined && dest !== 'document') throw new FreeholdError('forbidden', `${what} are served only as top-level documents`);
}

/** A page by its name (`index`) or by its html_file path (`index.html`, as apps reload themselves). */
function findPage(manifest: AppManifest, rest: string): string | undefined {
  if (Object.hasOwn(manifest.pages, rest)) return rest;
  return Object.keys(manifest.pages).find((name) => manifest.pages[name]!.htmlFile === rest);
}

/** freezr drops `.html` from a page address: `/apps/<app>/second.html` is page `second`. */
function pageByHtmlName(manifest: AppManifest, rest: string): string | undefined {
  const name = /^([A-Za-z0-9_-]{1,64})\.html$/.exec(rest)?.[1];
  return name !== undefined && Object.hasOwn(manifest.pages, name) ? name : undefined;
}

/**
 * What a browser navigates to, as opposed to what a page fetches: by Sec-Fetch-Dest
 * when the client sends it; otherwise (not a browser) only extension-less addresses.
 */
function isNavigation(request: FastifyRequest, rest: string): boolean {
  const dest = request.headers['sec-fetch-dest'];
  return dest === undefined ? !rest.includes('.') : dest === 'document';
}

function defaultPage(manifest: AppManifest): string | undefined {
  return Object.hasOwn(manifest.pages, 'index') ? 'index' : Object.keys(manifest.pages)[0];
}

export class AppServing {
  constructor(private readonly services: Services) {}

  /** The app's root redirects to its default page; a page name or html_file path gives the page; anything else a file. */
  async serve(request: FastifyRequest, reply: FastifyReply, viewer: Viewer, installed: InstalledApp, rest: string): Promise<FastifyReply> {
    const { manifest } = installed;
    if (rest === '') {
      // Without declared pages, freezr's default: an undeclared `index` page.
      const page = defaultPage(manifest) ?? ((await this.undeclaredPage(viewer.userId, manifest, 'index')) ? 'index' : undefined);
      if (page === undefined) throw new FreeholdError('not_found', 'This app has no pages');
      const loc = appLocation(this.services.config, viewer.userId, manifest.identifier);
      return reply.redirect(loc.pathPrefix + encodeURIComponent(page));
    }
    const pageName = findPage(manifest, rest);
    if (pageName !== undefined) {
      // A page's script reading a page's html file (freezr.utils.getHtml, templates) gets the
      // file as it is, which holds no token, like any other file; only documents are wrapped.
      const dest = request.headers['sec-fetch-dest'];
      if (dest !== undefined && dest !== 'document' && manifest.pages[pageName]!.htmlFile === rest) {
        return this.file(request, reply, viewer.userId, manifest.identifier, rest);
      }
      return this.page(request, reply, viewer, manifest, manifest.pages[pageName]!);
    }
    if (isNavigation(request, rest)) {
      const alias = pageByHtmlName(manifest, rest);
      if (alias !== undefined) return this.page(request, reply, viewer, manifest, manifest.pages[alias]!);
      const implicit = await this.undeclaredPage(viewer.userId, manifest, rest);
      if (implicit) return this.page(request, reply, viewer, manifest, implicit);
    }
    return this.file(request, reply, viewer.userId, manifest.identifier, rest);
  }

  /**
   * freezr serves a page the manifest does not declare from files named after it:
   * `/apps/<app>/help` is `help.html` with `help.css` and `help.js` when they exist.
   * Only at the app's top level, for names a declared page could have.
   */
  private async undeclaredPage(ownerId: string, manifest: AppManifest, rest: string): Promise<AppPage | null> {
    const name = /^([A-Za-z0-9_-]{1,64})(?:\.html)?$/.exec(rest)?.[1];
    if (name === undefined || name in Object.prototype) return null;
    const has = async (file: string) => {
      try {
        await this.services.apps.statFile(ownerId, manifest.identifier, file);
        return true;
      } catch (err) {
        if (err instanceof FreeholdError && err.code === 'not_found') return false;
        throw err;
      }
    };
    if (!(await has(`${name}.html`))) return null;
    return {
      title: manifest.displayName, htmlFile: `${name}.html`,
      cssFiles: (await has(`${name}.css`)) ? [`${name}.css`] : [],
      scriptFiles: (await has(`${name}.js`)) ? [`${name}.js`] : [],
      modules: [],
    };
  }

  private async page(request: FastifyRequest, reply: FastifyReply, viewer: Viewer, manifest: AppManifest, page: AppPage): Promise<FastifyReply> {
    requireDocumentRequest(request, 'App pages');
    const { services } = this;
    const { config } = services;
    const ownerId = viewer.userId;
    const appName = manifest.identifier;
    const bodyHtml = await services.apps.readText(ownerId, appName, page.htmlFile);
    const appToken = await services.tokens.pageToken(viewer.sessionHash, ownerId, appName, viewer.expiresAt);
    const loc = appLocation(config, ownerId, appName);
    const api = apiOrigin(config, loc);
    const nonce = newNonce();
    const { html, inlineScriptHash } = renderPage({
      manifest, page, bodyHtml, appToken, userId: ownerId, isAdmin: viewer.isAdmin,
      serverVersion: SERVER_VERSION, serverAddress: effectiveMode(config) === 'subdomain' ? loc.origin : config.publicUrl,
      pathPrefix: loc.pathPrefix, homeUrl: `${mainOrigin(config)}/home`, filesByCookie: effectiveMode(config) === 'subdomain',
    }, nonce);
    // freezr pages also look for their token in this cookie, scoped to the app's own paths
    // (its own origin, in subdomain mode). Not httpOnly on purpose: page scripts read it.
    // CEPS never accepts cookies, so it authorises nothing by itself being sent along.
    reply.setCookie(accountCookieName(ownerId), appToken, {
      path: loc.pathPrefix === '/' ? '/' : loc.pathPrefix.replace(/\/$/, ''), sameSite: 'strict', httpOnly: false,
      secure: isSecureRequest(services, request), expires: new Date(viewer.expiresAt),
    });
    return reply
      .header('Content-Security-Policy', pageCsp(nonce, loc, api, await grantedExtraHosts(services, ownerId, appName), inlineScriptHash))
      // Windows of other origins (and, in path mode, the owner's pages, which are
      // `same-origin`) opened by this page or opening it get no handle on it.
      .header('Cross-Origin-Opener-Policy', 'same-origin-allow-popups')
      .header('Cross-Origin-Resource-Policy', 'same-origin')
      .header('Cache-Control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(html);
  }

  /** One of the app's files, never a page: freezr's `/app_files/…` addresses (appFilesTarget). */
  async serveFile(request: FastifyRequest, reply: FastifyReply, viewer: Viewer, installed: InstalledApp, rest: string): Promise<FastifyReply> {
    if (rest === '') throw new FreeholdError('not_found', 'No such file');
    return this.file(request, reply, viewer.userId, installed.manifest.identifier, rest);
  }

  private async file(request: FastifyRequest, reply: FastifyReply, ownerId: string, appName: string, rest: string): Promise<FastifyReply> {
    const { services } = this;
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
    // The policy depends on what the file is fetched as: caches must keep the two apart.
    const vary = reply.getHeader('vary');
    reply.header('Vary', vary ? `${String(vary)}, Sec-Fetch-Dest` : 'Sec-Fetch-Dest');
    const dest = request.headers['sec-fetch-dest'];
    if (dest === 'worker' || dest === 'sharedworker') {
      const loc = appLocation(services.config, ownerId, appName);
      reply.header('Content-Security-Policy', workerCsp(loc, apiOrigin(services.config, loc), await grantedExtraHosts(services, ownerId, appName)));
    } else {
      reply.header('Content-Security-Policy', FILE_CSP);
    }
    // Only the app's own pages load its files; no other origin may embed them.
    reply.header('Cross-Origin-Resource-Policy', 'same-origin');
    return sendBlob(request, reply, info, stream, range, { contentType: file.contentType, cacheControl: 'private, no-cache' });
  }
}
