import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.js';
import { browserSkipReason, launchBrowser, type LaunchedBrowser, collectPageErrors } from '../helpers/browser.js';

/**
 * The authorization-code flow with PKCE as a native app runs it (RFC 8252): the app
 * listens on a loopback port, sends the owner's browser to /oauth/authorize, and
 * receives the answer there. The owner signs in on the way and answers on the page.
 */

const SHOTS = path.join('test-results', 'screenshots');
const USER = 'olga';
const APP = 'com.example.notes';

let server: TestServer;
let launched: LaunchedBrowser | undefined;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
/** The native app's loopback listener, and the queries it was sent. */
let callback: http.Server;
let callbackUri = '';
const received: URLSearchParams[] = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startTestServer({ listen: true });
  await server.addUser(USER, TEST_PASSWORD, true);
  callback = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/cb') received.push(url.searchParams); // not the browser's /favicon.ico
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Signed in</title><p>You can close this window.</p>');
  });
  await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
  callbackUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/cb`;
  if (browserSkipReason()) return;
  launched = await launchBrowser();
  context = await launched.browser.newContext({ viewport: { width: 1000, height: 800 } });
  page = await context.newPage();
  collectPageErrors(page, pageErrors);
});

after(async () => {
  await launched?.close();
  await server?.close();
  await new Promise((resolve) => callback?.close(resolve));
});

function authorizeUrl(challenge: string, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({
    response_type: 'code', client_id: APP, redirect_uri: callbackUri, code_challenge: challenge,
    code_challenge_method: 'S256', state: randomBytes(8).toString('hex'), ...extra,
  });
  return `${server.url}/oauth/authorize?${q}`;
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('authorizing an app served elsewhere, in a browser', { skip: browserSkipReason() }, () => {
  test('the owner signs in on the way, allows, and the app trades the code for a token', async () => {
    const { verifier, challenge } = pkce();
    const url = authorizeUrl(challenge);
    const state = new URL(url).searchParams.get('state');
    await page.goto(url);
    await page.waitForURL(/\/signin\?next=/);
    await page.fill('#user_id', USER);
    await page.fill('#password', TEST_PASSWORD);
    await page.click('#signin');
    await page.waitForSelector('#authorize-ask:not([hidden])');
    assert.equal(await page.textContent('#authorize-app'), APP);
    assert.equal(await page.textContent('#authorize-to'), new URL(callbackUri).origin);
    await page.screenshot({ path: path.join(SHOTS, 'oauth-authorize.png'), fullPage: true });

    await page.click('#authorize-allow');
    await page.waitForURL(new RegExp(`^${callbackUri.replace(/[.?]/g, '\\$&')}\\?`));
    const answer = received.at(-1)!;
    assert.equal(answer.get('state'), state);
    const code = answer.get('code');
    assert.ok(code);

    const res = await fetch(`${server.url}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: callbackUri, client_id: APP, code_verifier: verifier }),
    });
    assert.equal(res.status, 200);
    const { access_token } = (await res.json()) as { access_token: string };
    const write = await fetch(`${server.url}/ceps/write/${APP}`, {
      method: 'POST', headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' }, body: '{"from":"native"}',
    });
    assert.equal(write.status, 200);
  });

  test('deny sends the app access_denied and no code', async () => {
    // Installed here, the app is named as the owner knows it, beside the id asked for.
    await server.services.apps.install(USER, { folder: path.join('test', 'fixtures', 'apps', APP) });
    await page.goto(authorizeUrl(pkce().challenge));
    await page.waitForSelector('#authorize-ask:not([hidden])');
    assert.equal(await page.textContent('#authorize-app'), `Notes (${APP})`);
    await page.click('#authorize-deny');
    await page.waitForURL(new RegExp(`^${callbackUri.replace(/[.?]/g, '\\$&')}\\?`));
    const answer = received.at(-1)!;
    assert.equal(answer.get('error'), 'access_denied');
    assert.equal(answer.get('code'), null);
  });

  test('a request the server refuses shows why and offers no answer', async () => {
    await page.goto(authorizeUrl(pkce().challenge, { code_challenge_method: 'plain' }));
    await page.waitForSelector('#authorize-error:not([hidden])');
    assert.match(String(await page.textContent('#authorize-error')), /cannot be answered: .*S256/);
    assert.equal(await page.isVisible('#authorize-allow'), false);
    await page.screenshot({ path: path.join(SHOTS, 'oauth-authorize-refused.png'), fullPage: true });
    assert.deepEqual(pageErrors.filter((e) => !/status of 400/.test(e)), []);
  });
});
