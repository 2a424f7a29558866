import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { currentOwner, signInAddress } from '../auth.js';
import { StaticFolder, findWebRoot, sendFile } from './static.js';

/**
 * The owner's own pages (sign-in, first-run setup, home) and their assets, plus
 * the freezr client library under /lib. The pages are static HTML; everything
 * they show comes from /acctapi via their scripts, so the server only decides
 * which page a visitor may see.
 */

const PageQuery = Type.Object({
  next: Type.Optional(Type.String()),
  token: Type.Optional(Type.String()),
});

const AssetParams = Type.Object({ '*': Type.String() });

/**
 * Where to go after sign-in. Only a path on this site: `//evil.example` and
 * `/\evil.example` are protocol-relative URLs to browsers, so they are refused.
 */
export function safeNext(next: string | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/home';
  // Long enough for an authorization request's address (/oauth/authorize?…).
  // URL parsing drops tabs and newlines (`/<tab>/evil.example` is `//evil.example`); a
  // backslash is a slash to browsers. Neither belongs in a path we send people to.
  if (/[\u0000-\u001f\u007f\\]/.test(next) || next.length > 3000) return '/home';
  return next;
}

export async function webRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  const webRoot = findWebRoot();
  const pages = new StaticFolder(path.join(webRoot, 'pages'));
  const lib = new StaticFolder(path.join(webRoot, 'lib'));

  async function sendPage(request: FastifyRequest, reply: FastifyReply, name: string, status = 200): Promise<FastifyReply> {
    const found = await pages.resolve(name);
    if (!found) throw new Error(`missing page web/pages/${name}`);
    return sendFile(request, reply.code(status), found, { cache: 'no-store' });
  }

  const hide = { hide: true } as const;

  app.get('/', { schema: hide }, async (request, reply) => {
    if (await currentOwner(services, request)) return reply.redirect('/home');
    return reply.redirect((await services.accounts.hasAdmin()) ? '/signin' : '/setup');
  });

  app.get('/signin', { schema: { ...hide, querystring: PageQuery } }, async (request, reply) => {
    if (await currentOwner(services, request)) return reply.redirect(safeNext(request.query.next));
    // Nobody can sign in before the first account exists.
    if (!(await services.accounts.hasAdmin())) return reply.redirect('/setup');
    return sendPage(request, reply, 'signin.html');
  });

  app.get('/setup', { schema: { ...hide, querystring: PageQuery } }, async (request, reply) => {
    if (await services.accounts.hasAdmin()) return reply.redirect('/signin');
    const { token } = request.query;
    if (token !== undefined && (await services.accounts.checkSetupToken(token))) {
      return sendPage(request, reply, 'setup.html');
    }
    // The token is the only proof of being the person who started the server.
    return token === undefined ? sendPage(request, reply, 'setup-link.html') : sendPage(request, reply, 'setup-link-invalid.html', 403);
  });

  app.get('/home', { schema: hide }, async (request, reply) => {
    if (!(await currentOwner(services, request))) return reply.redirect(signInAddress(services, request, '/home'));
    return sendPage(request, reply, 'home.html');
  });

  // An app served elsewhere asks for a token (OAuth 2 with PKCE): the owner answers on
  // this page, whose script shows the request and posts the answer (oauth/routes.ts).
  app.get('/oauth/authorize', { schema: hide }, async (request, reply) => {
    if (!(await currentOwner(services, request))) return reply.redirect(signInAddress(services, request, request.url));
    return sendPage(request, reply, 'authorize.html');
  });

  app.get('/pages/*', { schema: { ...hide, params: AssetParams } }, async (request, reply) => {
    const rel = request.params['*'];
    // HTML pages have their own routes, which decide who may see them.
    const found = rel.endsWith('.html') ? null : await pages.resolve(rel);
    if (!found) return reply.callNotFound();
    return sendFile(request, reply, found, { cache: 'revalidate' });
  });

  app.get('/lib/*', { schema: { ...hide, params: AssetParams } }, async (request, reply) => {
    const found = await lib.resolve(request.params['*']);
    if (!found) return reply.callNotFound();
    // The library is public code; apps on other origins may load it as a module script.
    reply.header('Access-Control-Allow-Origin', '*');
    return sendFile(request, reply, found, { cache: 'revalidate' });
  });

  // Our pages link /pages/icon.svg; this only quiets browsers probing on other pages.
  // Nothing, which any origin may have (a sandboxed view asks from an opaque origin).
  app.get('/favicon.ico', { schema: hide }, async (_request, reply) => reply.code(204).header('Cross-Origin-Resource-Policy', 'cross-origin').send());
}
