import { createHash, randomBytes } from 'node:crypto';
import type { AppManifest, AppPage } from '../../core/apps/manifest.js';

/**
 * Wraps a page's html (freezr pages hold only the inner body) into a full document,
 * as freezr's html_skeleton does, so freezr apps run unmodified:
 *  1. the page's css_files as <link>s;
 *  2. a nonce'd script defining `freezrMeta` and the legacy `freezr_*` globals that
 *     older freezr pages read, and calling `freezr.initPageScripts()` on load as
 *     freezr's skeleton does;
 *  3. the client library `/lib/freezr.js`;
 *  4. the page's script_files (classic), then its modules (type=module).
 *
 * Every script carries the per-request nonce, and the CSP allows scripts by nonce
 * only. Consequences for app authors (documented in the README's app section):
 *  - inline `<script>` blocks and inline event handlers (`onclick="…"`) in a page's
 *    html do not run; put code in script_files/modules and use addEventListener;
 *  - scripts inserted at run time need `script.nonce = document.currentScript.nonce`
 *    (module imports are fine: they inherit the nonce of the module that imports them);
 *  - eval and `new Function` are blocked.
 */

export interface PageContext {
  manifest: AppManifest;
  page: AppPage;
  /** The page's html_file content: the inner body. */
  bodyHtml: string;
  appToken: string;
  userId: string;
  isAdmin: boolean;
  serverVersion: string;
  serverAddress: string;
  /** URL path prefix of the app's files, ending in `/` (from app-origin.ts). */
  pathPrefix: string;
  /** File addresses work without a token on this page's origin (its token cookie goes along: feps/routes.ts). */
  filesByCookie: boolean;
  /** URL of the client library. */
  clientLibUrl?: string;
  /** Where the owner's home page is (the freezr menu's "Home" link): on the main origin. */
  homeUrl?: string;
}

export const CLIENT_LIB_URL = '/lib/freezr.js';

/** 128 random bits, fresh for every response. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/** Outside hosts an app page may reach, from the app's granted external_* permissions (csp-grants.ts). */
export interface ExtraHosts {
  connect: readonly string[];
  script: readonly string[];
}

/**
 * The page's Content-Security-Policy (CEPS.md §7). Scripts by nonce only; the network
 * (`connect-src`) only to the app's own origin and its API origin (the same origin in
 * subdomain mode), plus hosts the owner granted; no frames in or out, no plugins, no
 * <base>, forms only to the app's origin. `style-src` allows 'unsafe-inline' because
 * freezr apps style with inline `style=` attributes and <style> blocks throughout;
 * injected CSS cannot run code, so the cost is small next to breaking every app.
 */
export function pageCsp(nonce: string, app: AppPlace, apiOrigin: string, extra: ExtraHosts = { connect: [], script: [] },
  inlineScriptHash?: string): string[] {
  const main = [
    "default-src 'self'",
    [`script-src 'nonce-${nonce}'`, ...extra.script].join(' '),
    // Web workers from the app's own files only (their scripts carry no nonce); what they
    // may do is set by the policy their script is served with (workerCsp).
    `worker-src ${app.baseUrl}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "media-src 'self' data: blob:",
    `connect-src ${connectSources(app, apiOrigin, extra)}`,
    "frame-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
  // A nonce alone lets a script that carries it come from anywhere: page code can copy it
  // (`s.nonce = document.currentScript.nonce`) onto a script from any host, and what a
  // nonced script imports (`import('https://…')`) inherits it. A browser enforces every
  // policy it is given, so this second one adds where scripts may come from: the app's
  // own origin, the hosts the owner granted, and the page's one inline script (by hash).
  const origins = ["script-src 'self'", ...extra.script, ...(inlineScriptHash ? [`'sha256-${inlineScriptHash}'`] : [])].join(' ');
  return [main, origins];
}

/** Where an app's pages run: its origin, and its files' base address (the origin plus, in path mode, `/apps/<app>/`). */
export interface AppPlace {
  origin: string;
  baseUrl: string;
}

/** The network a page of the app, and its workers, may reach: its own origin, its API origin, granted hosts. */
function connectSources(app: AppPlace, apiOrigin: string, extra: ExtraHosts): string {
  return [...new Set([app.origin, apiOrigin, ...extra.connect])].join(' ');
}

/**
 * The policy an app file is served with when a page starts it as a (dedicated or shared)
 * web worker, which runs under its own script's policy, not the page's: the page's
 * network (so it can call CEPS with a token the page hands it) and scripts
 * (importScripts) from the app's own files and granted hosts; nothing else.
 */
export function workerCsp(app: AppPlace, apiOrigin: string, extra: ExtraHosts = { connect: [], script: [] }): string {
  return [
    "default-src 'none'",
    [`script-src ${app.baseUrl}`, ...extra.script].join(' '),
    `connect-src ${connectSources(app, apiOrigin, extra)}`,
  ].join('; ');
}

/** JSON that is safe inside a <script> element: nothing in it can close the element or break JS parsing. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** URL of one of the app's files: each path segment percent-encoded under the app's prefix. */
export function appFileUrl(pathPrefix: string, relPath: string): string {
  return pathPrefix + relPath.split('/').map(encodeURIComponent).join('/');
}

function metaScript(ctx: PageContext): string {
  const { manifest } = ctx;
  const meta = {
    appName: manifest.identifier,
    appVersion: manifest.version,
    appDisplayName: manifest.displayName,
    appToken: ctx.appToken,
    userId: ctx.userId,
    adminUser: ctx.isAdmin,
    serverVersion: ctx.serverVersion,
    serverAddress: ctx.serverAddress,
    ...(ctx.homeUrl ? { homeUrl: ctx.homeUrl } : {}),
  };
  // `var` at top level makes real window properties, which is what freezr pages expect.
  return [
    `var freezrMeta = ${scriptJson(meta)};`,
    'var freezr_app_name = freezrMeta.appName;',
    'var freezr_app_version = freezrMeta.appVersion;',
    'var freezr_app_display_name = freezrMeta.appDisplayName;',
    'var freezr_app_token = freezrMeta.appToken;',
    'var freezr_app_code = null;',
    'var freezr_user_id = freezrMeta.userId;',
    'var freezr_user_is_admin = freezrMeta.adminUser;',
    'var freezr_server_address = freezrMeta.serverAddress;',
    'var freezr_server_version = freezrMeta.serverVersion;',
    'var freezr_messages = null;',
    `var __freeholdFilesByCookie = ${ctx.filesByCookie ? 'true' : 'false'};`,
    // freezr's skeleton runs the page's init once everything has loaded.
    "window.addEventListener('load', function () {",
    "  if (window.freezr && typeof window.freezr.initPageScripts === 'function' && !window.__freeholdInitDone) {",
    '    window.__freeholdInitDone = true;',
    '    window.freezr.initPageScripts();',
    '  }',
    '});',
  ].join('\n');
}

/** The whole document for one page load. */
export interface RenderedPage {
  html: string;
  /** sha256 (base64) of the page's one inline script, for the CSP. */
  inlineScriptHash: string;
}

export function renderPage(ctx: PageContext, nonce: string): RenderedPage {
  const n = escapeHtml(nonce);
  const url = (f: string) => escapeHtml(appFileUrl(ctx.pathPrefix, f));
  const inline = `\n${metaScript(ctx)}\n`;
  const head = [
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(ctx.page.title)}</title>`,
    ...ctx.page.cssFiles.map((f) => `<link rel="stylesheet" href="${url(f)}">`),
    `<script nonce="${n}">${inline}</script>`,
    `<script nonce="${n}" src="${escapeHtml(ctx.clientLibUrl ?? CLIENT_LIB_URL)}"></script>`,
    ...ctx.page.scriptFiles.map((f) => `<script nonce="${n}" src="${url(f)}"></script>`),
    ...ctx.page.modules.map((f) => `<script nonce="${n}" type="module" src="${url(f)}"></script>`),
  ];
  return {
    html: `<!doctype html>\n<html>\n<head>\n${head.join('\n')}\n</head>\n<body>\n${nonceOwnScripts(ctx.bodyHtml, n)}\n</body>\n</html>\n`,
    inlineScriptHash: createHash('sha256').update(inline, 'utf8').digest('base64'),
  };
}

/**
 * The page's own html file may load the app's scripts itself (`<script src="lib/x.js">`),
 * which freezr's CSP allows as 'self'. Those tags get the page's nonce: they are the
 * app's own code, as its script_files are. Only when the tag's attributes read
 * unambiguously (each once, quotes closed, nothing after them) and `src` is plainly a
 * path on this origin: inline code, addresses elsewhere and SVG scripts (`href`) are
 * left as they are, and the CSP refuses them. Only the app's html file is rewritten,
 * never data. (The second CSP policy refuses other origins whatever this decides.)
 */
const OWN_SCRIPT_PATH = /^(?!\/\/)[A-Za-z0-9._~\-\/+%]+(?:\?[A-Za-z0-9._~\-\/+%=&]*)?$/;
const TAG_ATTRIBUTE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/y;
const BETWEEN_ATTRIBUTES = /[\s/]*/y;

/** A tag's attributes by lower-case name, or null if they do not read cleanly (or one repeats). */
function tagAttributes(text: string): Map<string, string> | null {
  const out = new Map<string, string>();
  let i = 0;
  for (;;) {
    BETWEEN_ATTRIBUTES.lastIndex = i;
    BETWEEN_ATTRIBUTES.exec(text);
    i = BETWEEN_ATTRIBUTES.lastIndex;
    if (i >= text.length) return out;
    TAG_ATTRIBUTE.lastIndex = i;
    const m = TAG_ATTRIBUTE.exec(text);
    if (!m) return null;
    const name = m[1]!.toLowerCase();
    if (out.has(name)) return null;
    out.set(name, m[2] ?? m[3] ?? m[4] ?? '');
    i = TAG_ATTRIBUTE.lastIndex;
  }
}

export function nonceOwnScripts(bodyHtml: string, escapedNonce: string): string {
  return bodyHtml.replace(/<script\b([^>]*)>/gi, (tag, attrs: string) => {
    const a = tagAttributes(attrs);
    if (!a || a.has('nonce') || a.has('href') || a.has('xlink:href')) return tag;
    const src = a.get('src');
    if (src === undefined || !OWN_SCRIPT_PATH.test(src)) return tag;
    return `<script nonce="${escapedNonce}"${attrs}>`;
  });
}
