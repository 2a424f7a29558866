import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorBody } from './errors.js';

/**
 * Errors met by a person's browser (an address typed or bookmarked, the tab of an app
 * since removed, a sign-in that ended) as a page instead of the JSON body programs get.
 * Only top-level navigations outside the APIs qualify: everything under the API
 * prefixes answers JSON whatever the client asks (CEPS.md §1: never an HTML page under
 * /ceps), and so does any request a script or program makes.
 */

/** Paths whose errors are always JSON: the bearer and account APIs, OAuth's token endpoints, public queries. */
const API_PREFIXES = ['/ceps/', '/feps/', '/acctapi/', '/oauth/token', '/oauth/revoke', '/openapi.json', '/public/query', '/public/readobject'];

/** A browser asking for a page to show: `Sec-Fetch-Dest: document`, or, from one that sends no fetch metadata, an Accept that puts HTML first. */
export function wantsErrorPage(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const path = request.url.split('?')[0]!;
  if (API_PREFIXES.some((p) => path === p || path.startsWith(p))) return false;
  const dest = request.headers['sec-fetch-dest'];
  if (dest !== undefined) return dest === 'document';
  const accept = request.headers.accept ?? '';
  return /^\s*text\/html\b/i.test(accept);
}

/** The page's only style: inline, allowed by its hash (the page may be on an app's origin, which cannot load the owner pages' style sheet). */
const STYLE = [
  'body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#f5f6f8;color:#1b1f24;',
  'font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans",sans-serif;line-height:1.5}',
  'main{background:#fff;border:1px solid #d8dde3;border-radius:10px;box-shadow:0 1px 3px rgb(16 24 40/8%);',
  'padding:2rem;margin:1rem;max-width:32rem;width:100%;box-sizing:border-box}',
  'h1{font-size:1.35rem;margin:0 0 .5rem}p{margin:.5rem 0}.muted{color:#57606a;font-size:.9rem}',
  'a{color:#2350d2}a:focus-visible{outline:3px solid #2350d2;outline-offset:2px;border-radius:6px}',
].join('');
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');
const PAGE_CSP = `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'`;

const TITLES: Record<number, string> = {
  400: 'That address is not right',
  401: 'You need to sign in',
  403: 'Not allowed',
  404: 'Nothing here',
  429: 'Too many requests',
  503: 'Busy for a moment',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The page for an error: its title from the status, the server's message below it, and
 * a way on to the owner's home page (`homeUrl`, absolute when the page is on an app's origin).
 */
export function errorPageHtml(status: number, body: ErrorBody, homeUrl: string): string {
  const title = TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'That did not work');
  const message = status >= 500 ? 'The server could not answer this time. Try again in a moment.' : body.message;
  return '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    + '<meta name="viewport" content="width=device-width, initial-scale=1">'
    + `<title>${escapeHtml(title)} · freehold</title><style>${STYLE}</style></head>`
    + `<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`
    + `<p><a href="${escapeHtml(homeUrl)}">Go to your home page</a></p>`
    + `<p class="muted">Error ${status} (${escapeHtml(body.error)})</p></main></body></html>\n`;
}

export function sendErrorPage(reply: FastifyReply, status: number, body: ErrorBody, homeUrl: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').header('Content-Security-Policy', PAGE_CSP)
    .header('Cache-Control', 'no-store').send(errorPageHtml(status, body, homeUrl));
}
