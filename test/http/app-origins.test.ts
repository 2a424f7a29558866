import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FIXTURES, zipFixture } from '../apps/zip-helpers.js';
import { appLocation, effectiveMode } from '../../src/http/app-origin.js';
import { loadConfig } from '../../src/config.js';

/**
 * Subdomain mode (the default): each (owner, app) on an origin of its own, reached from
 * the main origin through a one-time handoff. HTTP only (Host headers); the browser
 * side is test/browser/hostile-app.test.ts.
 */

const APP = 'com.example.notes';
const LEGACY = 'com.example.legacy';
const NOTES_HOST = `${APP}.alice.localhost`;

interface Cookie { name: string; value: string; domain?: string; path?: string; httpOnly?: boolean; sameSite?: string; secure?: boolean }
const cookieHeader = (res: LightMyRequestResponse) => (res.cookies as Cookie[]).map((c) => `${c.name}=${c.value}`).join('; ');

let t: TestServer;
let alice: string;
let bob: string;

/** Follows the handoff for `rel` of `app` and returns the app host and its session cookie. */
async function enter(cookie: string, app = APP, rel = ''): Promise<{ host: string; appCookie: string; landing: string; enterRes: LightMyRequestResponse }> {
  const first = await t.app.inject({ url: `/apps/${app}/${rel}`, headers: { cookie } });
  assert.equal(first.statusCode, 302, first.body);
  const url = new URL(String(first.headers.location));
  assert.equal(url.pathname, '/_freehold/enter');
  const enterRes = await t.app.inject({ url: url.pathname + url.search, headers: { host: url.host } });
  assert.equal(enterRes.statusCode, 302, enterRes.body);
  return { host: url.host, appCookie: cookieHeader(enterRes), landing: String(enterRes.headers.location), enterRes };
}

/** `host` with the main origin's port, as app origins have it (`:0` under app.inject). */
const withPort = (host: string) => {
  const port = new URL(t.config.publicUrl).port;
  return port ? `${host}:${port}` : host;
};

const onHost = (host: string, url: string, cookie = '', headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'GET', url, headers: { host, ...(cookie ? { cookie } : {}), ...headers } });

before(async () => {
  t = await startTestServer();
  await t.addUser('alice', undefined, true);
  await t.addUser('bob');
  await t.services.apps.install('alice', { folder: path.join(FIXTURES, APP) });
  await t.services.apps.install('alice', { folder: path.join(FIXTURES, LEGACY) });
  await t.services.apps.install('bob', { folder: path.join(FIXTURES, APP) });
  alice = await t.signIn('alice');
  bob = await t.signIn('bob');
});
after(async () => t.close());

test('subdomain is the default; the app origin is <app>.<user>.localhost', () => {
  assert.equal(t.config.appOrigins, 'subdomain');
  assert.equal(effectiveMode(t.config), 'subdomain');
  const loc = appLocation({ ...t.config, publicUrl: 'http://localhost:3000' }, 'alice', APP);
  assert.deepEqual(loc, { origin: `http://${NOTES_HOST}:3000`, baseUrl: `http://${NOTES_HOST}:3000/`, pathPrefix: '/' });
});

test('a public URL that cannot have subdomains falls back to path mode (and says why)', () => {
  const config = loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_PUBLIC_URL: 'https://me.example.org' });
  assert.equal(effectiveMode(config), 'path');
  assert.equal(effectiveMode({ ...config, appsDomain: 'apps.example.org' }), 'subdomain');
  assert.equal(effectiveMode({ ...config, appOrigins: 'path', publicUrl: 'http://localhost:1' }), 'path');
  assert.throws(() => loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_APP_ORIGINS: 'both' }), /FREEHOLD_APP_ORIGINS/);
  assert.throws(() => loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_APPS_DOMAIN: 'https://apps.example.org' }), /FREEHOLD_APPS_DOMAIN/);
});

describe('the handoff', () => {
  test('signed out: /apps/<app> goes to sign-in first', async () => {
    const res = await t.app.inject({ url: `/apps/${APP}/index` });
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, `/signin?next=${encodeURIComponent(`/apps/${APP}/index`)}`);
  });

  test('signed in: a one-time code to the app origin, traded for a host-only app session', async () => {
    const first = await t.app.inject({ url: `/apps/${APP}/index.html?view=x`, headers: { cookie: alice } });
    assert.equal(first.statusCode, 302);
    assert.equal(first.headers['cache-control'], 'no-store');
    const url = new URL(String(first.headers.location));
    assert.equal(url.origin, `http://${withPort(NOTES_HOST)}`);
    assert.equal(url.searchParams.get('next'), '/index.html?view=x');
    const code = url.searchParams.get('code')!;
    assert.ok(code.length >= 40);

    const res = await onHost(url.host, url.pathname + url.search);
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, '/index.html?view=x');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    const cookie = (res.cookies as Cookie[]).find((c) => c.name === 'freehold_app_session');
    assert.ok(cookie);
    assert.equal(cookie.domain, undefined, 'host-only: no Domain attribute');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    assert.match(String(res.headers['set-cookie']), /freehold_app_session=[^;]+; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax/);

    // Single use: the same code again is refused (and no cookie).
    const again = await onHost(url.host, url.pathname + url.search);
    assert.equal(again.statusCode, 401);
    assert.equal(again.cookies.length, 0);
  });

  test('a code works only on the host of the app it was made for, and is spent by a wrong try', async () => {
    const first = await t.app.inject({ url: `/apps/${APP}`, headers: { cookie: alice } });
    const url = new URL(String(first.headers.location));
    for (const host of [`${LEGACY}.alice.localhost`, `${APP}.bob.localhost`]) {
      assert.equal((await onHost(host, url.pathname + url.search)).statusCode, 401, host);
    }
    assert.equal((await onHost(url.host, url.pathname + url.search)).statusCode, 401, 'spent by the wrong try');
    // The main origin has no entry route at all.
    assert.equal((await t.app.inject({ url: url.pathname + url.search })).statusCode, 404);
  });

  test('expired codes and codes of an ended sign-in are refused', async () => {
    const session = (await t.services.sessions.get(/freehold_session=([^;]+)/.exec(alice)![1]))!;
    const expired = await t.services.tokens.issue({ kind: 'app_entry', userId: 'alice', ownerId: 'alice', appName: APP, expiresAt: Date.now() - 1, session: session.hash });
    assert.equal((await onHost(NOTES_HOST, `/_freehold/enter?code=${expired}`)).statusCode, 401);
    const orphan = await t.services.tokens.issue({ kind: 'app_entry', userId: 'alice', ownerId: 'alice', appName: APP, expiresAt: Date.now() + 60_000, session: 'f'.repeat(64) });
    assert.equal((await onHost(NOTES_HOST, `/_freehold/enter?code=${orphan}`)).statusCode, 401);
    // An app token is not an entry code.
    assert.equal((await onHost(NOTES_HOST, `/_freehold/enter?code=${await t.appToken('alice', APP)}`)).statusCode, 401);
  });

  test('next is a path on the app origin only', async () => {
    for (const next of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)']) {
      const first = await t.app.inject({ url: `/apps/${APP}`, headers: { cookie: alice } });
      const url = new URL(String(first.headers.location));
      url.searchParams.set('next', next);
      const res = await onHost(url.host, url.pathname + url.search);
      assert.equal(res.statusCode, 302);
      assert.equal(res.headers.location, '/', next);
    }
  });

  test('only navigations get a code: a script fetching /apps/<app> gets 403', async () => {
    for (const dest of ['empty', 'iframe', 'image', 'script']) {
      const res = await t.app.inject({ url: `/apps/${APP}`, headers: { cookie: alice, 'sec-fetch-dest': dest } });
      assert.equal(res.statusCode, 403, dest);
      assert.equal(res.headers.location, undefined);
    }
  });
});

describe('on the app origin', () => {
  let host: string;
  let appCookie: string;
  before(async () => ({ host, appCookie } = await enter(alice)));

  test('pages: wrapped at the root, token for this app, API on this origin, strict CSP', async () => {
    const res = await onHost(host, '/index', appCookie);
    assert.equal(res.statusCode, 200, res.body);
    const meta = JSON.parse(/var freezrMeta = (\{.*?\});/.exec(res.body)![1]!) as Record<string, unknown>;
    assert.equal(meta.serverAddress, `http://${withPort(NOTES_HOST)}`);
    assert.equal(meta.homeUrl, `${t.config.publicUrl}/home`);
    const check = await t.services.tokens.check(meta.appToken, 'app');
    assert.ok(check.ok && check.claims.appName === APP && check.claims.ownerId === 'alice');
    assert.match(res.body, /<link rel="stylesheet" href="\/static\/notes\.css">/);
    assert.match(res.body, /<script nonce="[^"]+" src="\/notes\.js"><\/script>/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, new RegExp(`connect-src http://${withPort(NOTES_HOST).replace(/\./g, '\\.')};`));
    assert.doesNotMatch(csp, /connect-src[^;]*http:\/\/localhost[:;]/, 'the main origin is not reachable from app pages');
    assert.ok(csp.includes(`worker-src http://${withPort(NOTES_HOST)}/;`), csp);
    // A worker started from the app's files may reach what the page may, and load the app's scripts.
    const worker = String((await onHost(host, '/notes.js', appCookie, { 'sec-fetch-dest': 'worker' })).headers['content-security-policy']);
    assert.equal(worker, `default-src 'none'; script-src http://${withPort(NOTES_HOST)}/; connect-src http://${withPort(NOTES_HOST)}; frame-ancestors 'none'`);
    for (const d of ["frame-ancestors 'none'", "img-src 'self' data: blob:", "base-uri 'none'", "form-action 'self'", "object-src 'none'", "frame-src 'none'"]) {
      assert.ok(csp.includes(d), `${d} in ${csp}`);
    }
    assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin-allow-popups');
    const tokenCookie = (res.cookies as Cookie[]).find((c) => c.name === 'app_token_alice');
    assert.equal(tokenCookie?.path, '/');
    assert.equal(tokenCookie?.domain, undefined);
    // A decoy of the same name tossed in by a sibling host (Domain=parent) does not lock the owner out.
    assert.equal((await onHost(host, '/index', `freehold_app_session=decoy-decoy-decoy-decoy; ${appCookie}`)).statusCode, 200);
    // One decoy per path prefix of a nested file, each sent before the page's own (Path=/).
    const decoys = Array.from({ length: 12 }, (_, i) => `freehold_app_session=decoy-${i}`).join('; ');
    assert.equal((await onHost(host, '/static/notes.css', `${decoys}; ${appCookie}`)).statusCode, 200);
    // The root and freezr's /apps/<app>/ spelling lead to the same app.
    assert.equal((await onHost(host, '/', appCookie)).headers.location, '/index');
    assert.equal((await onHost(host, `/apps/${APP}/static/notes.css`, appCookie)).statusCode, 200);
  });

  test('files: with the app session only; another app\'s files cannot even be named', async () => {
    const css = await onHost(host, '/static/notes.css', appCookie);
    assert.equal(css.statusCode, 200);
    assert.match(String(css.headers['content-security-policy']), /^sandbox;/);
    assert.equal(css.headers['cross-origin-resource-policy'], 'same-origin');
    assert.equal((await onHost(host, '/static/notes.css')).statusCode, 401);
    assert.equal((await onHost(host, `/apps/${LEGACY}/index.html`, appCookie)).statusCode, 404);
    assert.equal((await onHost(host, '/static%2f..%2f..%2fsecrets', appCookie)).statusCode, 400);
    // freezr's /app_files/[<owner>/]<app>/… addresses: this app's files on its own origin.
    for (const url of [`/app_files/${APP}/static/notes.css`, `/app_files/alice/${APP}/static/notes.css`, `/app/${APP}/static/notes.css`, `/app/@alice/${APP}/static/notes.css`]) {
      const res = await onHost(host, url, appCookie);
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.body, css.body);
    }
    assert.equal((await onHost(host, `/app_files/${APP}/static/notes.css`)).statusCode, 401);
    assert.equal((await onHost(host, `/app_files/bob/${APP}/static/notes.css`, appCookie)).statusCode, 404);
    assert.equal((await onHost(host, `/app/@bob/${APP}/static/notes.css`, appCookie)).statusCode, 404);
    assert.equal((await onHost(host, `/app/${LEGACY}/index.html`, appCookie)).statusCode, 404);
    assert.equal((await onHost(host, `/app_files/${LEGACY}/index.html`, appCookie)).statusCode, 404);
    assert.equal((await onHost(host, `/app_files/${APP}/index.html`, appCookie, { 'sec-fetch-dest': 'document' })).body.includes('freezrMeta'), false);
    assert.equal((await t.app.inject({ url: `/app_files/${APP}/static/notes.css`, headers: { cookie: alice } })).statusCode, 404, 'not on the main origin in this mode');
  });

  test("uploaded files: the page's token cookie reads them on the app's own origin, for same-origin requests only", async () => {
    const page = await onHost(host, '/index', appCookie);
    assert.match(page.body, /var __freeholdFilesByCookie = true;/, 'the client library gives plain file addresses here');
    const pageToken = (page.cookies as Cookie[]).find((c) => c.name === 'app_token_alice')!.value;
    const boundary = 'xyzBOUNDARY';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="dot.png"\r\nContent-Type: image/png\r\n\r\nnot-really-a-png\r\n--${boundary}--\r\n`;
    const up = await t.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, headers: { authorization: `Bearer ${pageToken}`, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body });
    assert.equal(up.statusCode, 200, up.body);
    const url = `/feps/userfiles/${APP}/alice/dot.png`;
    const jar = `app_token_alice=${pageToken}`;
    for (const site of ['same-origin', 'none', undefined]) {
      const res = await onHost(host, url, jar, site ? { 'sec-fetch-site': site } : {});
      assert.equal(res.statusCode, 200, String(site));
      assert.equal(res.body, 'not-really-a-png');
      assert.equal(res.headers['cross-origin-resource-policy'], 'same-origin', 'no other origin may use it');
    }
    // A sibling app's origin is same-site: Strict cookies go along there, and count for nothing.
    for (const site of ['same-site', 'cross-site']) assert.equal((await onHost(host, url, jar, { 'sec-fetch-site': site })).statusCode, 401, site);
    assert.equal((await t.app.inject({ url, headers: { cookie: jar } })).statusCode, 401, 'not on the main origin');
    // Namesakes tossed in by sibling app hosts (Domain=parent, one per path prefix, sent
    // before the page's own) neither lock the page out of its files nor stand in for it.
    const otherApp = await t.appToken('alice', LEGACY);
    const bobsNotes = await t.appToken('bob', APP);
    const decoys = (n: number) => Array.from({ length: n }, (_, i) => `app_token_alice=decoy-${i}`).join('; ');
    assert.equal((await onHost(host, url, `${jar}; ${jar}`)).statusCode, 200, 'the same cookie twice');
    for (const tossed of [decoys(1), `app_token_alice=${otherApp}`, `app_token_alice=${bobsNotes}`, `app_token_bob=${bobsNotes}; ${decoys(30)}`]) {
      const res = await onHost(host, url, `${tossed}; ${jar}`);
      assert.equal(res.statusCode, 200, tossed.slice(0, 60));
      assert.equal(res.body, 'not-really-a-png');
    }
    // Without a token of Alice's own, Bob's for the same app is the one used: it reads her file only with a grant.
    assert.equal((await onHost(host, url, `app_token_alice=${bobsNotes}; app_token_alice=${otherApp}`)).statusCode, 404);
    assert.equal((await onHost(host, url, `app_token_alice=${otherApp}`)).statusCode, 403, "another app's token reads nothing here");
    assert.equal((await onHost(host, url, decoys(3))).statusCode, 401);
    // Only the cookie's own name counts: decoys under names of the tosser's invention crowd nothing out.
    const invented = Array.from({ length: 40 }, (_, i) => `app_token_x${i}=decoy`).join('; ');
    assert.equal((await onHost(host, url, `${invented}; ${jar}`)).statusCode, 200);
    // Past MAX_COOKIE_CANDIDATES (32) values the page's own is not reached (THREAT_MODEL.md).
    assert.equal((await onHost(host, url, `${decoys(32)}; ${jar}`)).statusCode, 401);
    assert.equal((await onHost(host, url, appCookie)).statusCode, 401, 'the app session cookie is not a token');
    // Reads only: a DELETE with the cookie alone removes nothing.
    assert.equal((await t.app.inject({ method: 'DELETE', url, headers: { host, cookie: jar } })).statusCode, 401);
    assert.equal((await onHost(host, url, jar)).statusCode, 200);
    // A token in the address still works, and wins over the cookie.
    assert.equal((await onHost(host, `${url}?fileToken=not-a-valid-token-at-all`, jar)).statusCode, 401);
  });

  test('the owner UI and the account API do not exist here, whatever cookies come along', async () => {
    for (const url of ['/home', '/signin', '/setup', '/pages/style.css', '/acctapi/apps', '/acctapi/users', '/acctapi/session',
      '/acctapi/generateAppPassword?app_name=com.example.notes', '/acctapi/export', '/acctapi/tokens', '/openapi.json']) {
      const res = await onHost(host, url, `${alice}; ${appCookie}`);
      assert.equal(res.statusCode, 404, url);
      assert.doesNotMatch(res.body, /"user_id"|app_password|<form/, url);
    }
    for (const [method, url] of [['POST', '/acctapi/logout'], ['POST', '/acctapi/login'], ['POST', '/acctapi/users'], ['POST', '/oauth/token'], ['PUT', '/acctapi/users/alice/storage']] as const) {
      const res = await t.app.inject({ method, url, headers: { host, cookie: `${alice}; ${appCookie}`, 'content-type': 'application/json' }, payload: '{}' });
      assert.equal(res.statusCode, 404, `${method} ${url}`);
    }
    assert.ok(await t.services.sessions.get(/freehold_session=([^;]+)/.exec(alice)![1]), 'still signed in');
  });

  test('CEPS is here too (bearer only), and still confined to the app', async () => {
    const token = await t.appToken('alice', APP);
    const w = await t.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { host, authorization: `Bearer ${token}` }, payload: { a: 1 } });
    assert.equal(w.statusCode, 200);
    const other = await t.app.inject({ url: `/ceps/query/${LEGACY}`, headers: { host, authorization: `Bearer ${token}` } });
    assert.equal(other.statusCode, 403);
    assert.equal((await onHost(host, '/lib/freezr.js')).statusCode, 200);
  });

  test("an app session opens only its own app: not another app's host, not another owner's", async () => {
    for (const other of [`${LEGACY}.alice.localhost`, `${APP}.bob.localhost`]) {
      const res = await onHost(other, '/index', appCookie);
      assert.equal(res.statusCode, 302, other);
      assert.match(String(res.headers.location), /^http:\/\/localhost[:/].*\/apps\//);
    }
    const bobs = await enter(bob);
    assert.equal(bobs.host, withPort(`${APP}.bob.localhost`));
    assert.equal((await onHost(host, '/index', bobs.appCookie)).statusCode, 302);
  });

  test('hosts under localhost that name no installed app serve nothing', async () => {
    for (const h of ['com.example.nope.alice.localhost', 'foo.localhost', `${APP}.nobody.localhost`]) {
      for (const url of ['/', '/index', '/acctapi/apps', '/home']) {
        const res = await onHost(h, url, alice);
        assert.ok(res.statusCode === 404 || (res.statusCode === 302 && String(res.headers.location).startsWith(t.config.publicUrl)), `${h}${url}: ${res.statusCode}`);
      }
    }
  });

  test('signing out on the main origin ends every app session made from it', async () => {
    const cookie = await t.signIn('alice');
    const entered = await enter(cookie);
    assert.equal((await onHost(entered.host, '/index', entered.appCookie)).statusCode, 200);
    const out = await t.app.inject({ method: 'POST', url: '/acctapi/logout', headers: { cookie } });
    assert.equal(out.statusCode, 200);
    const after = await onHost(entered.host, '/index', entered.appCookie);
    assert.equal(after.statusCode, 302);
    assert.equal((await onHost(entered.host, '/static/notes.css', entered.appCookie)).statusCode, 401);
  });
});

describe('errors met by a browser on an app origin', () => {
  let host: string;
  let appCookie: string;
  before(async () => ({ host, appCookie } = await enter(alice)));

  test('the favicon browsers ask for unprompted is an empty answer when the app has none, signed in or not', async () => {
    for (const cookie of [appCookie, '']) {
      const res = await onHost(host, '/favicon.ico', cookie);
      assert.equal(res.statusCode, 204);
      // A raw file or an error page is a sandboxed view, whose own favicon request comes from an opaque origin.
      assert.equal(res.headers['cross-origin-resource-policy'], 'cross-origin');
    }
  });

  test('a navigation to nothing gets a page with a way home; scripts and the APIs get JSON', async () => {
    const page = await onHost(host, '/no-such-page.html', appCookie, { 'sec-fetch-dest': 'document', accept: 'text/html' });
    assert.equal(page.statusCode, 404);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /<h1>Nothing here<\/h1>/);
    assert.ok(page.body.includes(`<a href="${t.config.publicUrl}/home">`), page.body);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/);
    // Signed out: the page says so, and still offers the way home.
    const out = await onHost(host, '/static/notes.css', '', { 'sec-fetch-dest': 'document' });
    assert.equal(out.statusCode, 401);
    assert.match(out.body, /<h1>You need to sign in<\/h1>/);
    // The same addresses fetched by a script, or by a client that asks for JSON, answer JSON.
    const asScripts: Record<string, string>[] = [{ 'sec-fetch-dest': 'empty', accept: 'text/html' }, {}, { accept: 'application/json' }];
    for (const headers of asScripts) {
      const res = await onHost(host, '/no-such-page.html', appCookie, headers);
      assert.equal(res.statusCode, 404);
      assert.deepEqual(Object.keys(res.json()), ['error', 'message']);
    }
    const api = await onHost(host, '/ceps/read/com.example.notes/nothing', '', { 'sec-fetch-dest': 'document', accept: 'text/html' });
    assert.equal(api.statusCode, 401);
    assert.equal(api.json().error, 'unauthorized');
  });

  test('HEAD answers as GET would: a signed-out page is a redirect to the main origin', async () => {
    const get = await onHost(host, '/index');
    const head = await t.app.inject({ method: 'HEAD', url: '/index', headers: { host } });
    assert.equal(get.statusCode, 302);
    assert.equal(head.statusCode, get.statusCode);
    assert.equal(head.headers.location, get.headers.location);
  });

  test('text from the request never becomes markup on the page', async () => {
    const res = await t.app.inject({ url: '/apps/com.example.%3Cscript%3Ex', headers: { cookie: alice, 'sec-fetch-dest': 'document' } });
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.doesNotMatch(res.body, /<script/i, res.body);
  });
});

describe('the main origin', () => {
  test('its session cookie is host-only, so it never reaches an app origin', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'alice', password: 'correct horse battery' } });
    for (const c of res.cookies as Cookie[]) assert.equal(c.domain, undefined, c.name);
    assert.doesNotMatch(String(res.headers['set-cookie']), /domain=/i);
  });

  test('refuses account calls from other sites and app origins (fetch metadata, Origin)', async () => {
    for (const site of ['same-site', 'cross-site']) {
      const res = await t.app.inject({ url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { cookie: alice, 'sec-fetch-site': site } });
      assert.equal(res.statusCode, 403, site);
      assert.equal(res.json().error, 'csrf');
      assert.equal((await t.app.inject({ url: '/acctapi/users', headers: { cookie: alice, 'sec-fetch-site': site } })).statusCode, 403);
    }
    const ok = await t.app.inject({ url: '/acctapi/apps', headers: { cookie: alice, 'sec-fetch-site': 'same-origin' } });
    assert.equal(ok.statusCode, 200);
    const logout = await t.app.inject({ method: 'POST', url: '/acctapi/logout', headers: { cookie: alice, origin: `http://${NOTES_HOST}` } });
    assert.equal(logout.statusCode, 403);
    assert.ok(await t.services.sessions.get(/freehold_session=([^;]+)/.exec(alice)![1]));
  });

  test('owner pages and replies carry frame-ancestors, opener and resource policies', async () => {
    const home = await t.app.inject({ url: '/signin' });
    assert.match(String(home.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(home.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(home.headers['cross-origin-resource-policy'], 'same-origin');
    const api = await t.app.inject({ url: '/acctapi/apps', headers: { cookie: alice } });
    assert.match(String(api.headers['content-security-policy']), /frame-ancestors 'none'/);
  });

  test('uploaded files never run as pages on any origin: attachment, sandbox, no framing', async () => {
    const token = await t.appToken('alice', APP);
    const boundary = 'xyzBOUNDARY';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="evil.html"\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>\r\n--${boundary}--\r\n`;
    const up = await t.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body });
    assert.equal(up.statusCode, 200, up.body);
    for (const host of [undefined, NOTES_HOST]) {
      const res = await t.app.inject({ url: `/feps/userfiles/${APP}/alice/evil.html?fileToken=${token}`, headers: host ? { host } : {} });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-disposition']), /^attachment;/);
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /sandbox/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /allow-scripts/);
    }
  });
});

describe('FREEHOLD_APPS_DOMAIN', () => {
  let d: TestServer;
  const LONG = 'com.example-company.very-long-name';
  before(async () => {
    d = await startTestServer({ env: { FREEHOLD_APPS_DOMAIN: 'apps.example.test' }, config: { publicUrl: 'https://freehold.example.test' } });
    await d.addUser('a-user-name-that-is-long');
    await d.services.apps.install('a-user-name-that-is-long', { folder: path.join(FIXTURES, APP) });
    const manifest = readFileSync(path.join(FIXTURES, APP, 'manifest.json'), 'utf8').replaceAll(APP, LONG);
    await d.services.apps.install('a-user-name-that-is-long', { zipPath: await zipFixture(APP, { replace: { 'manifest.json': manifest } }) });
  });
  after(async () => d.close());

  async function handoff(app: string): Promise<LightMyRequestResponse & { target: URL }> {
    const cookie = await d.signIn('a-user-name-that-is-long');
    const first = await d.app.inject({ url: `/apps/${app}/index`, headers: { cookie, host: 'freehold.example.test' } });
    assert.equal(first.statusCode, 302, first.body);
    const target = new URL(String(first.headers.location));
    const res = await d.app.inject({ url: target.pathname + target.search, headers: { host: target.host } });
    return Object.assign(res, { target });
  }

  test('one readable label per app under the apps domain, Secure cookies behind https', async () => {
    const res = await handoff(APP);
    assert.equal(res.target.origin, 'https://com-example-notes---a-user-name-that-is-long.apps.example.test');
    assert.equal(res.statusCode, 302);
    assert.match(String(res.headers['set-cookie']), /^__Host-freehold_app_session=[^;]+;.*Secure/);
    const page = await d.app.inject({ url: '/index', headers: { host: res.target.host, cookie: cookieHeader(res) } });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-security-policy']), /connect-src https:\/\/com-example-notes---a-user-name-that-is-long\.apps\.example\.test;/);
  });

  test('a name too long for one label gets a hashed label, recorded so it resolves', async () => {
    const res = await handoff(LONG);
    assert.match(res.target.hostname, /^x[a-z2-7]{20}\.apps\.example\.test$/);
    assert.equal(res.statusCode, 302);
    const page = await d.app.inject({ url: '/index', headers: { host: res.target.host, cookie: cookieHeader(res) } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, new RegExp(`"appName":"${LONG}"`));
    // Any other hashed-looking label names nothing.
    assert.equal((await d.app.inject({ url: '/index', headers: { host: 'xaaaaaaaaaaaaaaaaaaaa.apps.example.test' } })).statusCode, 404);
  });
});

describe('app names with upper case', () => {
  test('match their lowercase host; two that differ only in case are refused', async () => {
    const UPPER = 'com.Example.Upper';
    const manifest = readFileSync(path.join(FIXTURES, APP, 'manifest.json'), 'utf8').replaceAll(APP, UPPER);
    await t.services.apps.install('alice', { zipPath: await zipFixture(APP, { replace: { 'manifest.json': manifest } }) });
    const { host, appCookie } = await enter(alice, UPPER, 'index');
    assert.equal(host, withPort('com.example.upper.alice.localhost'));
    const page = await onHost(host, '/index', appCookie);
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /"appName":"com\.Example\.Upper"/);

    const lower = manifest.replaceAll(UPPER, UPPER.toLowerCase());
    await t.services.apps.install('alice', { zipPath: await zipFixture(APP, { replace: { 'manifest.json': lower } }) });
    const res = await t.app.inject({ url: `/apps/${UPPER}`, headers: { cookie: alice } });
    assert.equal(res.statusCode, 409);
    assert.equal((await onHost(host, '/index', appCookie)).statusCode, 200, 'an app session already made still names its exact app');
  });
});

describe('external_fetch / external_scripts permissions', () => {
  test('relax the CSP to the declared https hosts only once granted, and never to freehold origins', async () => {
    const EXT = 'com.example.ext';
    const raw = JSON.parse(readFileSync(path.join(FIXTURES, APP, 'manifest.json'), 'utf8').replaceAll(APP, EXT)) as Record<string, unknown>;
    raw.permissions = [
      { name: 'weather', type: 'external_fetch', hosts: ['https://api.weather.example', 'https://*.alice.localhost', 'https://com.example.notes.alice.localhost'], description: 'forecasts' },
      { name: 'cdn', type: 'external_scripts', hosts: ['https://cdn.example.net'], description: 'a library' },
    ];
    await t.services.apps.install('alice', { zipPath: await zipFixture(APP, { replace: { 'manifest.json': JSON.stringify(raw) } }) });
    const csp = async () => {
      const { host, appCookie } = await enter(alice, EXT, 'index');
      return String((await onHost(host, '/index', appCookie)).headers['content-security-policy']);
    };
    const before = await csp();
    assert.doesNotMatch(before, /weather|cdn\.example/);

    const change = (name: string, action: 'Accept' | 'Deny') => t.app.inject({
      method: 'PUT', url: '/feps/permissions/change', headers: { cookie: alice },
      payload: { change: { name, requestor_app: EXT, action, table_id: null } },
    });
    assert.equal((await change('weather', 'Accept')).statusCode, 200);
    assert.equal((await change('cdn', 'Accept')).statusCode, 200);
    const granted = await csp();
    assert.match(granted, /connect-src http:\/\/com\.example\.ext\.alice\.localhost(:\d+)? https:\/\/api\.weather\.example;/);
    assert.match(granted, /script-src 'nonce-[^']+' https:\/\/cdn\.example\.net;/);
    assert.doesNotMatch(granted, /https:\/\/[^ ;]*localhost/, 'freehold\'s own origins are never granted');

    assert.equal((await change('weather', 'Deny')).statusCode, 200);
    assert.doesNotMatch(await csp(), /weather/);
  });

  test('a manifest asking for anything but https origins is refused', async () => {
    const raw = JSON.parse(readFileSync(path.join(FIXTURES, APP, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    for (const hosts of [['http://plain.example'], ["https://x.example; script-src 'unsafe-inline'"], ['https://x.example/path'], []]) {
      raw.permissions = [{ name: 'p', type: 'external_fetch', hosts }];
      await assert.rejects(t.services.apps.install('alice', { zipPath: await zipFixture(APP, { replace: { 'manifest.json': JSON.stringify(raw) } }) }),
        (err: Error & { code?: string }) => err.code === 'invalid_manifest', JSON.stringify(hosts));
    }
  });
});
