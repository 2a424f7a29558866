import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { buildZip, lieAboutSize, zipFixture } from '../apps/zip-helpers.js';
import { nonceOwnScripts } from '../../src/http/apps/page.js';
import type { BlobStore } from '../../src/storage/types.js';

const APP = 'com.example.notes';
let t: TestServer;
let alice: string;
let bob: string;

/** A multipart/form-data body built by hand: one `file` part holding the zip. */
function multipart(data: Buffer, field = 'file'): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----freehold${randomBytes(8).toString('hex')}`;
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="app.zip"\r\nContent-Type: application/zip\r\n\r\n`;
  return {
    payload: Buffer.concat([Buffer.from(head), data, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

async function install(zipPath: string, cookie = alice) {
  const body = multipart(readFileSync(zipPath));
  return t.app.inject({ method: 'POST', url: '/acctapi/apps/install', payload: body.payload, headers: { ...body.headers, cookie } });
}

/** The smallest installable app: a manifest and one page. */
const appZip = (name: string) => buildZip([
  { name: 'manifest.json', data: JSON.stringify({ identifier: name, pages: { index: { html_file: 'index.html' } } }) },
  { name: 'index.html', data: '<p>hi</p>' },
]);

/** `cookie` '' sends no cookie at all. */
const get = (url: string, cookie = alice, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'GET', url, headers: { ...(cookie ? { cookie } : {}), ...headers } });

// Path mode: apps under /apps/<app>/ on the main origin. Subdomain mode (the default) is in app-origins.test.ts.
before(async () => {
  t = await startTestServer({ env: { FREEHOLD_APP_ORIGINS: 'path' } });
  await t.addUser('alice', undefined, true);
  await t.addUser('bob');
  alice = await t.signIn('alice');
  bob = await t.signIn('bob');
});

after(async () => {
  await t.close();
});

test('without a session: pages redirect to sign-in, files and management answer 401 JSON', async () => {
  for (const url of [`/apps/${APP}`, `/apps/${APP}/index`, `/apps/${APP}/index.html?view=x`]) {
    const res = await get(url, '');
    assert.equal(res.statusCode, 302, url);
    assert.equal(res.headers.location, `/signin?next=${encodeURIComponent(url)}`);
  }
  const file = await get(`/apps/${APP}/static/notes.css`, '');
  assert.equal(file.statusCode, 401);
  assert.equal(file.json().error, 'unauthorized');
  assert.equal((await get('/acctapi/apps', '')).statusCode, 401);
  const body = multipart(Buffer.from('x'));
  const res = await t.app.inject({ method: 'POST', url: '/acctapi/apps/install', payload: body.payload, headers: body.headers });
  assert.equal(res.statusCode, 401);
});

test('install over multipart upload, then list', async () => {
  const res = await install(await zipFixture(APP, { wrap: 'notes-main' }));
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(res.json(), { app_name: APP, version: '1.0.0', installed: true, updated: false, to_decide: ['publish_posts'], lapsed: [] });
  const list = await get('/acctapi/apps');
  assert.equal(list.statusCode, 200);
  const apps = list.json().apps as Array<Record<string, unknown>>;
  assert.equal(apps.length, 1);
  assert.equal(apps[0]!.app_name, APP);
  assert.equal(apps[0]!.display_name, 'Notes');
  assert.equal(apps[0]!.version, '1.0.0');
  assert.equal(typeof apps[0]!.installed_at, 'number');
  assert.equal(typeof apps[0]!.updated_at, 'number');
  // Bob has his own (empty) list.
  assert.deepEqual((await get('/acctapi/apps', bob)).json(), { apps: [] });
});

test('the bare app address redirects to its index page', async () => {
  const res = await get(`/apps/${APP}`);
  assert.equal(res.statusCode, 302);
  assert.equal(res.headers.location, `/apps/${APP}/index`);
  assert.equal((await get(`/apps/${APP}/`)).headers.location, `/apps/${APP}/index`);
});

test('a page is wrapped: freezrMeta with a working token, nonce on every script, strict CSP', async () => {
  const res = await get(`/apps/${APP}/index`);
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(res.headers['cache-control'], 'no-store');
  const html = res.body;
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /<title>Notes<\/title>/);
  assert.match(html, /<h1 id="title">Notes<\/h1>/);
  assert.match(html, new RegExp(`<link rel="stylesheet" href="/apps/${APP}/static/notes.css">`));

  const csp = String(res.headers['content-security-policy']);
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
  assert.ok(nonce, csp);
  for (const directive of ["default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
    "img-src 'self' data: blob:", "style-src 'self' 'unsafe-inline'"]) {
    assert.ok(csp.includes(directive), `${directive} missing from ${csp}`);
  }
  assert.ok(!/script-src[^;]*(unsafe-inline|unsafe-eval|\*)/.test(csp), csp);
  assert.match(csp, new RegExp(`worker-src http://localhost(:\\d+)?/apps/${APP.replace(/\./g, '\\.')}/;`), 'workers from the app\'s own files only');
  assert.match(csp, /connect-src [^;]*http:\/\/localhost/);
  // A second policy says where scripts may come from; the nonce alone would allow any host.
  const policies = ([] as string[]).concat(res.headers['content-security-policy'] as string | string[]);
  assert.equal(policies.length, 2, csp);
  const inline = /<script nonce="[^"]+">([\s\S]*?)<\/script>/.exec(html)![1]!;
  assert.equal(policies[1], `script-src 'self' 'sha256-${createHash('sha256').update(inline).digest('base64')}'`);

  const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]!);
  assert.equal(scripts.length, 4, scripts.join('\n'));
  for (const attrs of scripts) assert.ok(attrs.includes(`nonce="${nonce}"`), attrs);
  assert.match(scripts[1]!, /src="\/lib\/freezr\.js"/);
  assert.match(scripts[2]!, new RegExp(`src="/apps/${APP}/notes\\.js"`));
  assert.match(scripts[3]!, new RegExp(`type="module" src="/apps/${APP}/static/main\\.mjs"`));

  const meta = JSON.parse(/var freezrMeta = (\{.*?\});/.exec(html)![1]!) as Record<string, unknown>;
  assert.equal(meta.appName, APP);
  assert.equal(meta.appVersion, '1.0.0');
  assert.equal(meta.appDisplayName, 'Notes');
  assert.equal(meta.userId, 'alice');
  assert.equal(meta.adminUser, true);
  assert.equal(typeof meta.serverVersion, 'string');
  assert.equal(meta.serverAddress, t.config.publicUrl);
  const check = await t.services.tokens.check(meta.appToken, 'app');
  assert.ok(check.ok);
  assert.equal(check.claims.appName, APP);
  assert.equal(check.claims.ownerId, 'alice');
  assert.match(html, /var freezr_app_name = freezrMeta\.appName;/);
  assert.match(html, /var freezr_user_id = freezrMeta\.userId;/);
  // Path mode: the page's token cookie is scoped to the app's paths, not /feps: file addresses carry the token.
  assert.match(html, /var __freeholdFilesByCookie = false;/);

  // The same token in the path-scoped cookie freezr pages read; never httpOnly, never site-wide.
  const cookie = res.cookies.find((c) => c.name === 'app_token_alice');
  assert.ok(cookie);
  assert.equal(cookie.value, meta.appToken);
  assert.equal(cookie.path, `/apps/${APP}`);
  assert.equal(cookie.httpOnly, undefined);

  // Each load has a fresh nonce but the same token.
  const again = await get(`/apps/${APP}/index`);
  assert.notEqual(/nonce-([^']+)'/.exec(String(again.headers['content-security-policy']))![1], nonce);
  assert.ok(again.body.includes(String(meta.appToken)));
});

test('a page is also served at its html_file address, and other pages by name', async () => {
  const res = await get(`/apps/${APP}/index.html?view=x`);
  assert.equal(res.statusCode, 200);
  assert.match(res.body, /var freezrMeta = /);
  const settings = await get(`/apps/${APP}/settings`);
  assert.equal(settings.statusCode, 200);
  assert.match(settings.body, /<title>Notes settings<\/title>/);
  assert.equal((await get(`/apps/${APP}/nosuchpage`)).statusCode, 404);
});

test("freezr's page addresses: <page>.html, and pages the manifest does not declare", async () => {
  const name = 'com.example.pagenames';
  const zip = await buildZip([
    { name: 'manifest.json', data: JSON.stringify({ identifier: name, pages: { second: { html_file: 'pages/second.html', page_title: 'Second' } } }) },
    { name: 'pages/second.html', data: '<p>second</p>' },
    { name: 'help.html', data: '<p>help</p>' },
    { name: 'help.css', data: 'p { color: red }' },
    { name: 'help.js', data: 'console.log(1)' },
    { name: 'index.html', data: '<p>start</p>' },
  ]);
  assert.equal((await install(zip)).statusCode, 200);
  const doc = { 'sec-fetch-dest': 'document' };
  const second = await get(`/apps/${name}/second.html`, alice, doc);
  assert.equal(second.statusCode, 200);
  assert.match(second.body, /<title>Second<\/title>/);
  assert.match(second.body, /<p>second<\/p>/);

  // Undeclared: help.html wrapped as a page, with help.css and help.js (scripts by nonce).
  for (const [url, headers] of [[`/apps/${name}/help`, {}], [`/apps/${name}/help`, doc], [`/apps/${name}/help.html`, doc]] as const) {
    const page = await get(url, alice, headers);
    assert.equal(page.statusCode, 200, url);
    assert.match(page.body, /var freezrMeta = /);
    assert.match(page.body, /<p>help<\/p>/);
    assert.match(page.body, /href="[^"]*help\.css"/);
    assert.match(page.body, /<script nonce="[^"]+" src="[^"]*help\.js"><\/script>/);
  }
  // What a page fetches (templates, getHtml) is still the file itself.
  const raw = await get(`/apps/${name}/help.html`, alice, { 'sec-fetch-dest': 'empty' });
  assert.equal(raw.statusCode, 200);
  assert.equal(raw.body, '<p>help</p>');
  assert.equal((await get(`/apps/${name}/help.html`)).body, '<p>help</p>', 'not a browser: the file');
  assert.equal((await get(`/apps/${name}/nothere`, alice, doc)).statusCode, 404);
  assert.equal((await get(`/apps/${name}/constructor`, alice, doc)).statusCode, 404);
});

test("an app that declares no pages opens at its index.html, as freezr's default page", async () => {
  const name = 'com.example.nopages';
  assert.equal((await install(await buildZip([
    { name: 'manifest.json', data: JSON.stringify({ identifier: name }) },
    { name: 'index.html', data: '<p>start</p>' },
  ]))).statusCode, 200);
  const root = await get(`/apps/${name}`);
  assert.equal(root.statusCode, 302);
  assert.match(String(root.headers.location), /\/index$/);
  const page = await get(`/apps/${name}/index`);
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<p>start<\/p>/);
});

test("a page (and so its token) is not handed to another page's fetch", async () => {
  const nav = await get(`/apps/${APP}/index`, alice, { 'sec-fetch-dest': 'document' });
  assert.equal(nav.statusCode, 200);
  const file = readFileSync(new URL('../fixtures/apps/com.example.notes/index.html', import.meta.url), 'utf8');
  for (const dest of ['empty', 'iframe', 'script']) {
    const res = await get(`/apps/${APP}/index`, alice, { 'sec-fetch-dest': dest });
    assert.equal(res.statusCode, 403, dest);
    assert.doesNotMatch(res.body, /freezrMeta/);
    // Its html file, asked for by name (freezr.utils.getHtml, templates), is the file as it is: no token.
    const raw = await get(`/apps/${APP}/index.html`, alice, { 'sec-fetch-dest': dest });
    assert.equal(raw.statusCode, 200, dest);
    assert.equal(raw.body, file);
    assert.doesNotMatch(raw.body, /freezrMeta|app_token/);
    assert.match(String(raw.headers['content-security-policy']), /^sandbox; default-src 'none'/);
    assert.equal(raw.headers['set-cookie'], undefined);
  }
  assert.match((await get(`/apps/${APP}/index.html`, alice, { 'sec-fetch-dest': 'document' })).body, /var freezrMeta = /, 'opened, it is the page');
});

test("/feps/manifest: the manifest in the app's words and, as freezr's, the app tables that hold data", async () => {
  const token = await t.appToken('alice', APP);
  const auth = { authorization: `Bearer ${token}` };
  assert.equal((await t.app.inject({ method: 'POST', url: `/ceps/write/${APP}.posts`, headers: auth, payload: { title: 't' } })).statusCode, 200);
  const other = await t.appToken('alice', 'com.example.other');
  assert.equal((await t.app.inject({ method: 'POST', url: '/ceps/write/com.example.other', headers: { authorization: `Bearer ${other}` }, payload: { x: 1 } })).statusCode, 200);
  const res = await t.app.inject({ method: 'GET', url: `/feps/manifest/${APP}`, headers: auth });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json() as { manifest: { identifier: string; app_tables: object }; app_name: string; app_tables: string[] };
  assert.equal(body.manifest.identifier, APP);
  assert.ok(body.manifest.app_tables, 'snake_case keys, as written');
  assert.equal(body.app_name, APP);
  assert.ok(body.app_tables.includes(`${APP}.posts`), JSON.stringify(body.app_tables));
  assert.ok(body.app_tables.every((x) => x === APP || x.startsWith(`${APP}.`)), JSON.stringify(body.app_tables));
  assert.equal((await t.app.inject({ method: 'GET', url: `/feps/manifest/${APP}`, headers: { authorization: `Bearer ${other}` } })).statusCode, 403);
});

test('freezrMeta is escaped so app text cannot close the script', async () => {
  const evil = readFileSync(new URL('../fixtures/apps/com.example.notes/manifest.json', import.meta.url), 'utf8')
    .replaceAll('"Notes"', '"</script><script>alert(1)</script>\\u2028&"').replaceAll('com.example.notes', 'com.example.evil');
  const zip = await zipFixture(APP, { replace: { 'manifest.json': evil } });
  assert.equal((await install(zip)).statusCode, 200);
  const html = (await get('/apps/com.example.evil/index')).body;
  assert.ok(!html.includes('</script><script>alert(1)'), 'raw markup leaked into the page');
  assert.match(html, /\\u003c\/script\\u003e/);
  assert.match(html, /\\u2028\\u0026/);
  assert.match(html, /<title>&lt;\/script&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.equal((await t.app.inject({ method: 'DELETE', url: '/acctapi/apps/com.example.evil', headers: { cookie: alice } })).statusCode, 200);
});

test('static files: content types, strong ETag and 304, sandbox CSP', async () => {
  const css = await get(`/apps/${APP}/static/notes.css`);
  assert.equal(css.statusCode, 200);
  assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
  assert.match(css.body, /font-family/);
  const etag = String(css.headers.etag);
  assert.match(etag, /^"[0-9a-f]{64}"$/);
  assert.equal(css.headers['cache-control'], 'private, no-cache');
  assert.equal(css.headers['accept-ranges'], 'bytes');
  assert.match(String(css.headers['content-security-policy']), /^sandbox; default-src 'none'/);

  assert.equal((await get(`/apps/${APP}/notes.js`)).headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal((await get(`/apps/${APP}/static/main.mjs`)).headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal((await get(`/apps/${APP}/manifest.json`)).headers['content-type'], 'application/json; charset=utf-8');

  assert.match(String(css.headers.vary), /Sec-Fetch-Dest/);

  // Started as a web worker by one of the app's pages, a script gets the page's network and
  // the app's own scripts (a worker runs under its script's policy); fetched otherwise, the sandbox.
  for (const dest of ['worker', 'sharedworker']) {
    const worker = await get(`/apps/${APP}/notes.js`, alice, { 'sec-fetch-dest': dest, 'sec-fetch-site': 'same-origin' });
    assert.equal(worker.statusCode, 200);
    const policy = String(worker.headers['content-security-policy']);
    assert.match(policy, /^default-src 'none'; /, policy);
    assert.match(policy, new RegExp(`script-src http://localhost(:\\d+)?/apps/${APP.replace(/\./g, '\\.')}/;`), policy);
    assert.match(policy, /connect-src [^;]*http:\/\/localhost/, policy);
    assert.ok(!policy.includes('sandbox'), policy);
  }
  for (const dest of ['script', 'serviceworker', 'empty']) {
    const other = await get(`/apps/${APP}/notes.js`, alice, { 'sec-fetch-dest': dest, 'sec-fetch-site': 'same-origin' });
    assert.match(String(other.headers['content-security-policy']), /^sandbox; default-src 'none'/, dest);
  }

  const cached = await get(`/apps/${APP}/static/notes.css`, alice, { 'if-none-match': etag });
  assert.equal(cached.statusCode, 304);
  assert.equal(cached.body, '');
  assert.equal((await get(`/apps/${APP}/static/notes.css`, alice, { 'if-none-match': '"other"' })).statusCode, 200);
  assert.equal((await get(`/apps/${APP}/static/missing.css`)).statusCode, 404);
});

test("freezr's /app_files/[<owner>/]<app>/<path> and /app/[@<owner>/]<app>/<path> addresses serve the app's files, never its pages", async () => {
  const css = (await get(`/apps/${APP}/static/notes.css`)).body;
  for (const url of [`/app_files/${APP}/static/notes.css`, `/app_files/alice/${APP}/static/notes.css`, `/app/${APP}/static/notes.css`, `/app/@alice/${APP}/static/notes.css`, `/app/%40alice/${APP}/static/notes.css`]) {
    const res = await get(url);
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    assert.equal(res.body, css);
    assert.match(String(res.headers['content-security-policy']), /^sandbox; default-src 'none'/);
  }
  const html = await get(`/app_files/${APP}/index.html`, alice, { 'sec-fetch-dest': 'document' });
  assert.equal(html.statusCode, 200);
  assert.doesNotMatch(html.body, /freezrMeta/, 'the file, not the page');
  assert.equal((await get(`/app_files/${APP}/index`, alice, { 'sec-fetch-dest': 'document' })).statusCode, 404, 'a page name is no file');
  assert.equal((await get(`/app_files/bob/${APP}/static/notes.css`)).statusCode, 404, "another owner's");
  assert.equal((await get(`/app/@bob/${APP}/static/notes.css`)).statusCode, 404, "another owner's");
  assert.doesNotMatch((await get(`/app/${APP}/index.html`, alice, { 'sec-fetch-dest': 'document' })).body, /freezrMeta/, 'the file, not the page');
  for (const url of ['/app/alice/com.example.notes/static/notes.css', `/app/@/${APP}/x`, '/app/@alice', `/app/${APP}/static/%2e%2e/%2e%2e/secrets`]) {
    assert.ok([400, 404].includes((await get(url)).statusCode), url);
  }
  assert.equal((await get(`/app_files/${APP}/`)).statusCode, 404);
  assert.equal((await get('/app_files/com.example.missing/x.css')).statusCode, 404);
  assert.equal((await get('/app_files/nothing')).statusCode, 404);
  for (const url of [`/app_files/${APP}/static/%2e%2e/%2e%2e/secrets`, `/app_files/${APP}/..%2fmanifest.json`, `/app_files/alice/${APP}/%2E%2E%2F%2E%2E%2Fx`, '/app_files/%2e%2e/x/y']) {
    const res = await get(url);
    assert.ok([400, 404].includes(res.statusCode), `${url} → ${res.statusCode}`);
    assert.match(String(res.headers['content-type']), /^application\/json/, url);
  }
  assert.equal((await get(`/app_files/${APP}/static/notes.css`, '')).statusCode, 401);
});

test('ranges: 206 for one range, 416 past the end, HEAD has headers only', async () => {
  const full = await get(`/apps/${APP}/static/data.txt`);
  const size = Buffer.byteLength(full.body);
  const part = await get(`/apps/${APP}/static/data.txt`, alice, { range: 'bytes=0-4' });
  assert.equal(part.statusCode, 206);
  assert.equal(part.body, 'plain');
  assert.equal(part.headers['content-range'], `bytes 0-4/${size}`);
  assert.equal(part.headers['content-length'], '5');
  const suffix = await get(`/apps/${APP}/static/data.txt`, alice, { range: 'bytes=-3' });
  assert.equal(suffix.statusCode, 206);
  assert.equal(suffix.body, '89\n');
  const past = await get(`/apps/${APP}/static/data.txt`, alice, { range: `bytes=${size + 10}-` });
  assert.equal(past.statusCode, 416);
  assert.equal(past.headers['content-range'], `bytes */${size}`);
  assert.equal(past.json().error, 'range_not_satisfiable');
  // A stale If-Range means "send it all".
  const stale = await get(`/apps/${APP}/static/data.txt`, alice, { range: 'bytes=0-4', 'if-range': '"stale"' });
  assert.equal(stale.statusCode, 200);
  assert.equal(stale.body, full.body);

  const head = await t.app.inject({ method: 'HEAD', url: `/apps/${APP}/static/data.txt`, headers: { cookie: alice } });
  assert.equal(head.statusCode, 200);
  assert.equal(head.headers['content-length'], String(size));
  assert.equal(head.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(head.body, '');
});

test('traversal attempts never reach a file outside the app', async () => {
  const attempts = [
    `/apps/${APP}/../../../../etc/passwd`,
    `/apps/${APP}/static/../../com.example.other/x`,
    `/apps/${APP}/%2e%2e/%2e%2e/etc/passwd`,
    `/apps/${APP}/%2E%2E%2Fmanifest.json`,
    `/apps/${APP}/static%2fnotes.css`,
    `/apps/${APP}/..%5c..%5cetc%5cpasswd`,
    `/apps/${APP}/static/notes.css%00.png`,
    `/apps/${APP}/%252e%252e/etc/passwd`,
    `/apps/${APP}//etc/passwd`,
    '/apps/..%2f..%2fetc/passwd',
    '/apps/%2e%2e/index',
  ];
  for (const url of attempts) {
    const res = await get(url);
    assert.ok([400, 404].includes(res.statusCode), `${url} → ${res.statusCode}`);
    assert.match(String(res.headers['content-type']), /^application\/json/, url);
    assert.ok(!res.body.includes('root:'), url);
  }
});

test("user B cannot load user A's app pages or files", async () => {
  for (const url of [`/apps/${APP}/index`, `/apps/${APP}/static/notes.css`, `/apps/${APP}/notes.js`]) {
    const res = await get(url, bob);
    assert.equal(res.statusCode, 404, url);
    assert.equal(res.json().error, 'not_found');
  }
  const del = await t.app.inject({ method: 'DELETE', url: `/acctapi/apps/${APP}`, headers: { cookie: bob } });
  assert.equal(del.statusCode, 404);
});

test('an update keeps serving the old version until the new one is complete', async () => {
  // The underlying store: stores.blobs(owner) hands out a fresh quota-aware view on each call.
  const blobs = t.services.stores.hostBlobs as BlobStore & { put: BlobStore['put'] };
  const realPut = blobs.put.bind(blobs);
  let reached!: () => void;
  const atGate = new Promise<void>((r) => { reached = r; });
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  blobs.put = async (key, body, opts) => {
    if (key.endsWith('/notes.js')) {
      reached();
      await gate;
    }
    return realPut(key, body, opts);
  };
  try {
    const v2 = await zipFixture(APP, { replace: { 'index.html': '<h1>Version two</h1>' } });
    const pending = install(v2);
    await atGate;
    // Halfway through the update: the old page, and the old files, still serve.
    const during = await get(`/apps/${APP}/index`);
    assert.equal(during.statusCode, 200);
    assert.match(during.body, /<h1 id="title">Notes<\/h1>/);
    assert.equal((await get(`/apps/${APP}/static/notes.css`)).statusCode, 200);
    release();
    const res = await pending;
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().updated, true);
  } finally {
    blobs.put = realPut;
  }
  assert.match((await get(`/apps/${APP}/index`)).body, /Version two/);
});

test('a failed update (the zip lies about a size) leaves the previous version serving', async () => {
  const zip = await zipFixture(APP, { replace: { 'index.html': '<h1>Version three</h1>' }, extra: [{ name: 'zz.bin', data: Buffer.alloc(100_000) }] });
  lieAboutSize(zip, 'zz.bin', 10);
  const res = await install(zip);
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().error, 'invalid_package');
  assert.match((await get(`/apps/${APP}/index`)).body, /Version two/);
});

test('bad packages are refused with every problem listed', async () => {
  const hostile = await buildZip([
    { name: 'manifest.json', data: '{"identifier":"com.example.x","pages":{"index":{"html_file":"index.html"}}}' },
    { name: 'index.html', data: 'x' },
    { name: 'ZZ/x', data: 'x' },
    { name: 'link', data: '/etc/passwd', mode: 0o120777 },
  ], [['ZZ/x', '../x']]);
  const res = await install(hostile);
  assert.equal(res.statusCode, 400);
  const body = res.json();
  assert.equal(body.error, 'invalid_package');
  assert.equal(typeof body.message, 'string');
  assert.equal(body.details.length, 2, JSON.stringify(body.details));

  const badManifest = await buildZip([{ name: 'manifest.json', data: '{"identifier":"bad","pages":{"index":{"html_file":"../x"}}}' }]);
  const res2 = await install(badManifest);
  assert.equal(res2.statusCode, 400);
  assert.equal(res2.json().error, 'invalid_manifest');
  assert.ok(res2.json().details.length >= 2);

  // Nesting past what the stores' JSON takes, and page names every object already has.
  for (const depth of [1500, 100_000]) {
    const deep = await buildZip([
      { name: 'manifest.json', data: `{"identifier":"com.example.deep","pages":{"index":{"html_file":"index.html"}},"x":${'['.repeat(depth)}${']'.repeat(depth)}}` },
      { name: 'index.html', data: 'x' },
    ]);
    const r = await install(deep);
    assert.equal(r.statusCode, 400, `${depth}: ${r.body.slice(0, 200)}`);
    assert.equal(r.json().error, 'invalid_manifest');
  }
  for (const name of ['__proto__', 'constructor']) {
    const proto = await buildZip([
      { name: 'manifest.json', data: `{"identifier":"com.example.proto","pages":{"${name}":{"html_file":"index.html"}}}` },
      { name: 'index.html', data: 'x' },
    ]);
    const r = await install(proto);
    assert.equal(r.statusCode, 400, name);
    assert.match(JSON.stringify(r.json().details), /cannot be a page name/);
  }

  // An entry whose bytes do not match its CRC-32 (one byte changed after zipping).
  const corrupt = await buildZip([
    { name: 'manifest.json', data: '{"identifier":"com.example.crc","pages":{"index":{"html_file":"index.html"}}}' },
    { name: 'index.html', data: 'x' },
    { name: 'data.txt', data: 'HELLO'.repeat(20), compress: false },
  ], [['HELLOHELLOHELLO', 'JELLOHELLOHELLO']]);
  const crc = await install(corrupt);
  assert.equal(crc.statusCode, 400, crc.body);
  assert.equal(crc.json().error, 'invalid_package');
  assert.match(JSON.stringify(crc.json().details), /data\.txt: CRC-32 mismatch/);
  assert.equal((await get('/apps/com.example.crc/index')).statusCode, 404, 'nothing of it installed');

  const notZip = multipart(Buffer.from('not a zip at all'));
  const res3 = await t.app.inject({ method: 'POST', url: '/acctapi/apps/install', payload: notZip.payload, headers: { ...notZip.headers, cookie: alice } });
  assert.equal(res3.statusCode, 400);
  assert.equal(res3.json().error, 'invalid_package');

  const wrongField = multipart(Buffer.from('x'), 'zip');
  const res4 = await t.app.inject({ method: 'POST', url: '/acctapi/apps/install', payload: wrongField.payload, headers: { ...wrongField.headers, cookie: alice } });
  assert.equal(res4.statusCode, 400);
  assert.equal(res4.json().error, 'bad_request');
});

test('an install says which permissions wait for the owner: all at first, then those an update changed', async () => {
  const name = 'com.example.asks';
  const version = (v: string, hosts: string[]) => buildZip([
    { name: 'manifest.json', data: JSON.stringify({
      identifier: name, version: v, pages: { index: { html_file: 'index.html' } },
      permissions: [
        { name: 'weather', type: 'external_fetch', hosts },
        { name: 'read_own', type: 'read_all', table_id: `${name}.notes` },
      ],
    }) },
    { name: 'index.html', data: '<p>hi</p>' },
  ]);
  const first = await install(await version('1.0.0', ['https://api.weather.example']));
  assert.deepEqual(first.json().to_decide, ['weather', 'read_own']);
  assert.deepEqual(first.json().lapsed, [], 'nothing was allowed before');
  for (const p of ['weather', 'read_own']) await t.services.permissions.change('alice', { name: p, requestor_app: name, action: 'Accept' });
  assert.deepEqual((await install(await version('1.0.1', ['https://api.weather.example']))).json().to_decide, [], 'nothing changed: nothing to decide');
  const widened = await install(await version('1.1.0', ['https://api.weather.example', 'https://tracker.example']));
  assert.equal(widened.json().updated, true);
  assert.deepEqual(widened.json().to_decide, ['weather'], 'the permission that now reaches another host must be allowed again');
  assert.deepEqual(widened.json().lapsed, ['weather'], 'and the reply says it was allowed before');
});

test('management calls from another origin are refused', async () => {
  const res = await t.app.inject({ method: 'DELETE', url: `/acctapi/apps/${APP}`, headers: { cookie: alice, origin: 'https://evil.example' } });
  assert.equal(res.statusCode, 403);
  assert.equal(res.json().error, 'csrf');
});

test('legacy app_config.json apps install and serve', async () => {
  const res = await install(await zipFixture('com.example.legacy'));
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.json().version, '0.01 August 2016');
  const page = await get('/apps/com.example.legacy/index');
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<p>legacy<\/p>/);
  assert.match(page.body, /href="\/apps\/com\.example\.legacy\/main\.css"/);
});

test('remove: stops serving, revokes the page token, keeps data unless asked', async () => {
  const page = await get(`/apps/${APP}/index`);
  const token = JSON.parse(/var freezrMeta = (\{.*?\});/.exec(page.body)![1]!).appToken as string;
  await t.services.stores.records('alice').put('alice', `${APP}.posts`, { _id: 'p1', _date_created: 1, _date_modified: 1 });

  const res = await t.app.inject({ method: 'DELETE', url: `/acctapi/apps/${APP}`, headers: { cookie: alice } });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { app_name: APP, removed: true });
  assert.equal((await get(`/apps/${APP}/index`)).statusCode, 404);
  assert.equal((await get(`/apps/${APP}/static/notes.css`)).statusCode, 404);
  assert.equal((await t.services.tokens.check(token, 'app')).ok, false);
  assert.ok(await t.services.stores.records('alice').get('alice', `${APP}.posts`, 'p1'));
  assert.equal((await t.app.inject({ method: 'DELETE', url: `/acctapi/apps/${APP}`, headers: { cookie: alice } })).statusCode, 404);

  assert.equal((await install(await zipFixture(APP))).json().updated, false);
  const del = await t.app.inject({ method: 'DELETE', url: `/acctapi/apps/${APP}?delete_data=true`, headers: { cookie: alice } });
  assert.equal(del.statusCode, 200);
  assert.equal(await t.services.stores.records('alice').get('alice', `${APP}.posts`, 'p1'), null);
});

test('uploads larger than the app limit are refused with 413', async () => {
  const small = await startTestServer({ config: { maxAppBytes: 64 * 1024 } });
  try {
    await small.addUser('carol');
    const cookie = await small.signIn('carol');
    const zip = await buildZip([{ name: 'manifest.json', data: '{}' }, { name: 'noise.bin', data: randomBytes(100 * 1024) }]);
    const body = multipart(readFileSync(zip));
    const res = await small.app.inject({ method: 'POST', url: '/acctapi/apps/install', payload: body.payload, headers: { ...body.headers, cookie } });
    assert.equal(res.statusCode, 413, res.body);
    assert.equal(res.json().error, 'too_large');
    assert.equal(res.json().message, 'The app package is too large: at most 64 KB');
  } finally {
    await small.close();
  }
});

test('OpenAPI lists the app routes', async () => {
  const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, unknown> };
  for (const p of ['/acctapi/apps', '/acctapi/apps/install', '/acctapi/apps/{app}', '/apps/{app}']) {
    assert.ok(doc.paths[p], `${p} missing from ${Object.keys(doc.paths).join(', ')}`);
  }
  assert.ok(Object.keys(doc.paths).some((p) => p.startsWith('/apps/{app}/')), Object.keys(doc.paths).join(', '));
});

test("an app named another's table is refused while that app is there: install, app passwords, OAuth", async () => {
  // `com.clash.one.items` is both app com.clash.one's collection `items` and app
  // com.clash.one.items's own table, so one owner may not have both apps.
  await t.addUser('dave');
  const dave = await t.signIn('dave');
  const installApp = async (name: string) => install(await appZip(name), dave);
  const appPassword = (name: string) => get(`/acctapi/generateAppPassword?app_name=${name}`, dave);
  const challenge = randomBytes(32).toString('base64url');
  const authorize = (name: string) => t.app.inject({
    method: 'POST', url: '/oauth/authorize', headers: { cookie: dave },
    payload: { response_type: 'code', client_id: name, redirect_uri: 'https://app.example/cb', code_challenge: challenge, code_challenge_method: 'S256', approve: true },
  });
  const refused = (res: { statusCode: number; json(): { error: string } }, status = 409, code = 'conflict') => {
    assert.equal(res.statusCode, status);
    assert.equal(res.json().error, code);
  };

  assert.equal((await installApp('com.clash.one')).statusCode, 200);
  refused(await installApp('com.clash.one.items'));
  refused(await appPassword('com.clash.one.items'));
  refused(await authorize('com.clash.one.items'));
  // A child of an app another user has: no clash for this owner.
  assert.equal((await install(await appZip('com.clash.one.items'), bob)).statusCode, 200);
  // The server-kept tables of an app are never another app's name, installed or not.
  const filesApp = await installApp('com.clash.one.files');
  refused(filesApp, 400, 'invalid_manifest');
  assert.match(filesApp.body, /names a table the server keeps for com\.clash\.one/);
  refused(await appPassword('com.clash.two.files'), 400, 'invalid_name');

  // Removed with its data kept, it still counts, even with data only in collections
  // (com.clash.one.items itself could hold its `items`); removed with its data, the name is free.
  await t.services.stores.records('dave').put('dave', 'com.clash.one.items', { _id: 'r1', _date_created: 1, _date_modified: 1, secret: 1 });
  const remove = (name: string, withData: boolean) =>
    t.app.inject({ method: 'DELETE', url: `/acctapi/apps/${name}${withData ? '?delete_data=true' : ''}`, headers: { cookie: dave } });
  assert.equal((await remove('com.clash.one', false)).statusCode, 200);
  const kept = await installApp('com.clash.one.items');
  refused(kept);
  assert.match(kept.json().message, /data app com\.clash\.one keeps here/);
  refused(await appPassword('com.clash.one.items'));
  assert.equal((await installApp('com.clash.one')).statusCode, 200, 'the app itself may come back to its data');
  // Removed again keeping data, then the data goes (another way than the app): the record of it no longer counts.
  assert.equal((await remove('com.clash.one', false)).statusCode, 200);
  refused(await installApp('com.clash.one.items'));
  await t.services.stores.records('dave').dropTable('dave', 'com.clash.one.items');
  assert.equal((await installApp('com.clash.one.items')).statusCode, 200);
  assert.equal((await remove('com.clash.one.items', false)).statusCode, 200);
  assert.equal((await installApp('com.clash.one')).statusCode, 200);
  assert.equal((await remove('com.clash.one', true)).statusCode, 200);
  assert.equal((await installApp('com.clash.one.items')).statusCode, 200);
  assert.equal((await appPassword('com.clash.one.items')).statusCode, 200);
  // And the other way round: the shorter name is refused while the longer one is there.
  refused(await installApp('com.clash.one'));
  refused(await appPassword('com.clash.one'));
  // Siblings share nothing.
  assert.equal((await installApp('com.clash.one.notes')).statusCode, 200);

  // A child app served elsewhere holds an app password, or an authorization code, from
  // before: the parent cannot be installed under it until those are revoked.
  await t.addUser('fay');
  const fay = await t.signIn('fay');
  assert.equal((await get('/acctapi/generateAppPassword?app_name=com.held.one.two', fay)).statusCode, 200);
  let parent = await install(await appZip('com.held.one'), fay);
  assert.equal(parent.statusCode, 409);
  assert.match(parent.json().message, /com\.held\.one\.two/);
  await t.services.tokens.revokeFor('fay', 'com.held.one.two');
  const code = await t.app.inject({
    method: 'POST', url: '/oauth/authorize', headers: { cookie: fay },
    payload: { response_type: 'code', client_id: 'com.held.one.two', redirect_uri: 'https://app.example/cb', code_challenge: challenge, code_challenge_method: 'S256', approve: true },
  });
  assert.equal(code.statusCode, 200);
  assert.equal((await install(await appZip('com.held.one'), fay)).statusCode, 409, 'an unredeemed code counts too');
  await t.services.tokens.revokeFor('fay', 'com.held.one.two');
  parent = await install(await appZip('com.held.one'), fay);
  assert.equal(parent.statusCode, 200);

  // An archive goes by the same rule: dave's (with com.clash.one.items) cannot come into an
  // account that has com.clash.one, and nothing of it lands.
  await t.addUser('gus');
  const gus = await t.signIn('gus');
  assert.equal((await install(await appZip('com.clash.one'), gus)).statusCode, 200);
  const exported = await t.app.inject({ method: 'GET', url: '/acctapi/export', headers: { cookie: dave } });
  assert.equal(exported.statusCode, 200);
  const archive = multipart(exported.rawPayload);
  const imported = await t.app.inject({ method: 'POST', url: '/acctapi/import', payload: archive.payload, headers: { ...archive.headers, cookie: gus } });
  refused(imported);
  assert.deepEqual((await t.services.apps.list('gus')).map((a) => a.appName), ['com.clash.one']);

  // Both at the same moment: one of them, never both.
  await t.addUser('erin');
  const erin = await t.signIn('erin');
  const [p, c] = await Promise.all([install(await appZip('com.race.one'), erin), install(await appZip('com.race.one.two'), erin)]);
  assert.deepEqual([p.statusCode, c.statusCode].sort(), [200, 409]);
});

test("a page's own <script src> tags get the nonce; inline code and addresses elsewhere never do", () => {
  const own = ['<script src="lib/x.js"></script>', '<script src=lib/x.js>', "<SCRIPT type=module src='m.mjs'>", '<script src="/x.js?v=2&a=1">'];
  for (const tag of own) assert.match(nonceOwnScripts(tag, 'N'), /^<script nonce="N" /, tag);
  const elsewhere = [
    '<script src="//evil.example/x.js">', '<script src="https://evil.example/x.js">', '<script src="&#47;&#47;evil.example">',
    '<script src="/\\evil.example">', '<script src="\\\\evil.example">', '<script src="/\t/evil.example">', '<script src="/ /evil">',
    '<script src="javascript:alert(1)">', '<script>alert(1)</script>', '<script data-src="x.js">', '<script nonce="mine" src="x.js">',
    // `src=` inside another attribute's value, an SVG script's href, repeats, broken quoting.
    `<script title=' src="ok.js"' src="http://127.0.0.1:9/e.js">`, '<script data-x=" src=ok.js " src="//e.example/x.js">',
    '<script lang="x src=ok.js" src="http://e.example/x.js">', '<script href="http://e.example/x.js" src="ok.js">',
    '<script xlink:href="http://e.example/x.js" src="ok.js">', '<script src="ok.js" src="http://e.example/x.js">',
    '<script title="a>',
  ];
  assert.equal(nonceOwnScripts('<script/src=ok.js>', 'N'), '<script nonce="N"/src=ok.js>');
  assert.equal(nonceOwnScripts('<script\n  type="module"\n  src="m.js">', 'N'), '<script nonce="N"\n  type="module"\n  src="m.js">');
  for (const tag of elsewhere) assert.equal(nonceOwnScripts(tag, 'N'), tag, tag);
});

test("removing an app with its data drops its own tables only, never data another app kept", async () => {
  await t.addUser('hal');
  const hal = await t.signIn('hal');
  for (const name of ['com.g.h', 'com.g.h.i.j']) assert.equal((await install(await appZip(name), hal)).statusCode, 200);
  const records = t.services.stores.records('hal');
  const rec = { _id: 'r', _date_created: 1, _date_modified: 1 };
  for (const table of ['com.g.h', 'com.g.h.notes', 'com.g.h.i.j', 'com.g.h.i.j.notes']) await records.put('hal', table, rec);
  const remove = (name: string, withData: boolean) =>
    t.app.inject({ method: 'DELETE', url: `/acctapi/apps/${name}${withData ? '?delete_data=true' : ''}`, headers: { cookie: hal } });
  assert.equal((await remove('com.g.h.i.j', false)).statusCode, 200);
  assert.equal((await remove('com.g.h', true)).statusCode, 200);
  const tables = (await records.listTables('hal')).map((x) => x.table).filter((x) => !x.startsWith('system.'));
  assert.deepEqual(tables.sort(), ['com.g.h.i.j', 'com.g.h.i.j.notes']);
});

test('an archive carrying data an app kept on removal obeys the name-clash rule too', async () => {
  await t.addUser('ivy');
  await t.addUser('jon');
  const [ivy, jon] = [await t.signIn('ivy'), await t.signIn('jon')];
  assert.equal((await install(await appZip('com.k.l.m'), ivy)).statusCode, 200);
  await t.services.stores.records('ivy').put('ivy', 'com.k.l.m', { _id: 'r', _date_created: 1, _date_modified: 1, secret: 'ivy' });
  assert.equal((await t.app.inject({ method: 'DELETE', url: '/acctapi/apps/com.k.l.m', headers: { cookie: ivy } })).statusCode, 200);
  const exported = await t.app.inject({ method: 'GET', url: '/acctapi/export', headers: { cookie: ivy } });
  assert.equal(exported.statusCode, 200);

  assert.equal((await install(await appZip('com.k.l'), jon)).statusCode, 200);
  const archive = multipart(exported.rawPayload);
  const imported = await t.app.inject({ method: 'POST', url: '/acctapi/import', payload: archive.payload, headers: { ...archive.headers, cookie: jon } });
  assert.equal(imported.statusCode, 409, imported.body);
  assert.match(imported.json().message, /com\.k\.l\.m/);
  assert.equal(await t.services.stores.records('jon').get('jon', 'com.k.l.m', 'r'), null, 'nothing of it landed');
});

test('an app served elsewhere keeps its data from a related app installed after its tokens are gone', async () => {
  await t.addUser('kim');
  const kim = await t.signIn('kim');
  assert.equal((await get('/acctapi/generateAppPassword?app_name=com.p.q.r', kim)).statusCode, 200);
  // What it wrote with the token it traded the password for; then its access ends.
  await t.services.stores.records('kim').put('kim', 'com.p.q.r', { _id: 'r', _date_created: 1, _date_modified: 1, secret: 'r' });
  await t.services.tokens.revokeFor('kim', 'com.p.q.r');
  const refused = await install(await appZip('com.p.q'), kim);
  assert.equal(refused.statusCode, 409, refused.body);
  assert.match(refused.json().message, /com\.p\.q\.r keeps here/);
  await t.services.stores.records('kim').dropTable('kim', 'com.p.q.r');
  assert.equal((await install(await appZip('com.p.q'), kim)).statusCode, 200, 'its data gone, the name is free');
});

test('data an app left behind is listed and can be deleted without installing the app again', async () => {
  await t.addUser('lea');
  const lea = await t.signIn('lea');
  const records = t.services.stores.records('lea');
  const rec = (id: string) => ({ _id: id, _date_created: 1, _date_modified: 1 });
  // com.m.n is removed keeping its data (three tables, four records); com.m.o stays installed.
  for (const name of ['com.m.n', 'com.m.o']) assert.equal((await install(await appZip(name), lea)).statusCode, 200);
  await records.put('lea', 'com.m.n', rec('a'));
  await records.put('lea', 'com.m.n.notes', rec('b'));
  await records.put('lea', 'com.m.n.notes', rec('c'));
  await records.put('lea', 'com.m.o', rec('mine'));
  // One uploaded file of com.m.n: its record and its bytes; and bytes of com.m.o's, whose name starts alike.
  const blobs = t.services.stores.blobs('lea');
  await blobs.put('lea/filedata/com.m.n/AAAAAAAAAAAAAAAAAAAA', Buffer.from('photo'));
  await records.put('lea', 'com.m.n.files', { ...rec('photo.jpg'), blob_id: 'AAAAAAAAAAAAAAAAAAAA', size: 5 });
  await blobs.put('lea/filedata/com.m.o/BBBBBBBBBBBBBBBBBBBB', Buffer.from('other'));
  assert.equal((await t.app.inject({ method: 'DELETE', url: '/acctapi/apps/com.m.n', headers: { cookie: lea } })).statusCode, 200);
  // An app used only from elsewhere (an app password) that wrote something.
  assert.equal((await get('/acctapi/generateAppPassword?app_name=com.far.away', lea)).statusCode, 200);
  await records.put('lea', 'com.far.away', rec('x'));

  const listed = await get('/acctapi/kept-data', lea);
  assert.equal(listed.statusCode, 200, listed.body);
  assert.deepEqual(listed.json().apps, [
    { app_name: 'com.far.away', tables: 1, records: 1, files: 0 },
    { app_name: 'com.m.n', tables: 3, records: 4, files: 1 },
  ]);
  // Another owner sees none of it.
  assert.deepEqual((await get('/acctapi/kept-data', bob)).json().apps, []);
  const del = (name: string, cookie = lea, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'DELETE', url: `/acctapi/kept-data/${name}`, headers: { cookie, ...headers } });
  // Another site's page cannot make the owner's browser do it.
  assert.equal((await del('com.m.n', lea, { origin: 'https://evil.example' })).statusCode, 403);
  assert.equal((await del('com.m.n', bob)).statusCode, 404, 'nothing of bob\'s');
  const installed = await del('com.m.o');
  assert.equal(installed.statusCode, 409, 'an installed app is removed with its data instead');
  assert.equal((await del('com.nothing.here')).statusCode, 404);
  assert.equal((await del('not an app')).statusCode, 400);

  const gone = await del('com.m.n');
  assert.equal(gone.statusCode, 200, gone.body);
  assert.deepEqual(gone.json(), { app_name: 'com.m.n', tables: 3, records: 4, files: 1, deleted: true });
  assert.equal(await blobs.head('lea/filedata/com.m.n/AAAAAAAAAAAAAAAAAAAA'), null, 'its files\' bytes went too');
  assert.ok(await blobs.head('lea/filedata/com.m.o/BBBBBBBBBBBBBBBBBBBB'), 'another app\'s stayed');
  const tables = (await records.listTables('lea')).map((x) => x.table).filter((x) => !x.startsWith('system.'));
  assert.deepEqual(tables.sort(), ['com.far.away', 'com.m.o'], 'the installed app keeps its data');
  assert.equal((await del('com.m.n')).statusCode, 404, 'deleted once');
  // Its name is free for a related app again (the name-clash rule no longer counts it).
  assert.equal((await install(await appZip('com.m.n.p'), lea)).statusCode, 200);

  // The app served elsewhere still holds its password: its data goes, and it stays known as
  // the owner of whatever it writes next.
  assert.equal((await del('com.far.away')).statusCode, 200);
  await records.put('lea', 'com.far.away', rec('y'));
  assert.deepEqual((await get('/acctapi/kept-data', lea)).json().apps, [{ app_name: 'com.far.away', tables: 1, records: 1, files: 0 }]);
});
