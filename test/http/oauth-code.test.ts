import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * OAuth 2 authorization code with PKCE (CEPS.md §7, RFC 6749 §4.1, RFC 7636) for apps
 * served elsewhere: the owner is asked on their own server's page, the app trades the
 * code with its verifier for an app token that reaches that app's data only.
 */

const APP = 'com.example.notes';
const REDIRECT = 'https://notes.example/callback?from=freehold';
let server: TestServer;
let cookie: string;

before(async () => {
  server = await startTestServer();
  await server.addUser('alice');
  cookie = await server.signIn('alice');
});
after(() => server.close());

const verifierAndChallenge = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

const ask = (fields: Record<string, unknown>, headers: Record<string, string> = {}) => server.app.inject({
  method: 'POST', url: '/oauth/authorize', headers: { cookie, ...headers }, payload: fields,
});

const request = (challenge: string, extra: Record<string, unknown> = {}) => ({
  response_type: 'code', client_id: APP, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'xyz', ...extra,
});

const token = (fields: Record<string, string>, form = false) => server.app.inject({
  method: 'POST', url: '/oauth/token',
  ...(form
    ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(fields).toString() }
    : { payload: fields }),
});

/** Allows a request and returns the code the redirect carries. */
async function allow(challenge: string): Promise<string> {
  const res = await ask({ ...request(challenge), approve: true });
  assert.equal(res.statusCode, 200, res.body);
  const to = new URL(res.json().redirect);
  assert.equal(`${to.origin}${to.pathname}`, 'https://notes.example/callback');
  assert.equal(to.searchParams.get('from'), 'freehold', 'the redirect URI keeps its own query');
  assert.equal(to.searchParams.get('state'), 'xyz');
  return to.searchParams.get('code')!;
}

test('the page asks a signed-in owner; a visitor signs in first and comes back to it', async () => {
  const url = `/oauth/authorize?${new URLSearchParams(request('c'.repeat(43)) as Record<string, string>)}`;
  const anonymous = await server.app.inject({ url });
  assert.equal(anonymous.statusCode, 302);
  assert.equal(anonymous.headers.location, `/signin?next=${encodeURIComponent(url)}`);
  const page = await server.app.inject({ url, headers: { cookie } });
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /Allow access\?/);
  // The owner's page: never framed, never embedded by another origin, never cached.
  assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
  assert.equal(page.headers['cross-origin-resource-policy'], 'same-origin');
  assert.match(String(page.headers['cache-control']), /no-store/);
  // What the page shows: the app and where the answer goes, as an origin.
  const shown = await ask(request('c'.repeat(43)));
  assert.deepEqual(shown.json(), { app_name: APP, redirect_to: 'https://notes.example' });
});

test('allowed: the code and its verifier get a token for that app only, once', async () => {
  const { verifier, challenge } = verifierAndChallenge();
  const code = await allow(challenge);
  const res = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: APP, code_verifier: verifier }, true);
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(body.token_type, 'Bearer');
  assert.equal(body.user_id, 'alice');
  assert.equal(body.app_name, APP);
  assert.ok(body.expires_in > 0);
  assert.equal(res.headers['cache-control'], 'no-store');
  const bearer = { authorization: `Bearer ${body.access_token}` };
  const write = await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: bearer, payload: { hello: 1 } });
  assert.equal(write.statusCode, 200, write.body);
  assert.equal((await server.app.inject({ method: 'POST', url: '/ceps/write/com.example.other', headers: bearer, payload: { x: 1 } })).statusCode, 403);
  // The code works once.
  const again = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: APP, code_verifier: verifier });
  assert.equal(again.statusCode, 400);
  assert.equal(again.json().error, 'invalid_grant');
});

test('a wrong verifier, redirect URI or client is refused, and burns the code', async () => {
  for (const wrong of [
    { code_verifier: verifierAndChallenge().verifier },
    { redirect_uri: 'https://notes.example/other' },
    { client_id: 'com.example.other' },
  ]) {
    const { verifier, challenge } = verifierAndChallenge();
    const code = await allow(challenge);
    const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: APP, code_verifier: verifier };
    const res = await token({ ...fields, ...wrong });
    assert.equal(res.statusCode, 400, JSON.stringify(wrong));
    assert.equal(res.json().error, 'invalid_grant');
    assert.equal((await token(fields)).json().error, 'invalid_grant', 'the right request after a wrong one finds the code gone');
  }
});

test('a missing or malformed verifier is invalid_request, each said as such', async () => {
  const { verifier, challenge } = verifierAndChallenge();
  const code = await allow(challenge);
  const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: APP };
  const missing = await token(fields);
  assert.equal(missing.statusCode, 400);
  assert.equal(missing.json().error, 'invalid_request');
  assert.match(missing.json().message, /code_verifier is required/);
  const short = await token({ ...fields, code_verifier: 'short' });
  assert.equal(short.json().error, 'invalid_request');
  assert.match(short.json().message, /code_verifier must be 43 to 128 characters/);
  const noClient = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
  assert.equal(noClient.json().error, 'invalid_request');
  assert.equal((await token({ ...fields, code_verifier: verifier })).statusCode, 200, 'a malformed request does not burn the code');
  // A body the parser refuses is an OAuth invalid_request too; every refusal carries error_description.
  const broken = await server.app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/json' }, payload: '{"grant_type":' });
  assert.equal(broken.statusCode, 400);
  assert.equal(broken.json().error, 'invalid_request');
  assert.equal(broken.json().error_description, broken.json().message);
  const used = await token({ ...fields, code_verifier: verifier });
  assert.equal(used.json().error, 'invalid_grant');
  assert.equal(used.json().error_description, used.json().message);
});

test('denied: the app is told access_denied, with its state, and gets no code', async () => {
  const res = await ask({ ...request(verifierAndChallenge().challenge), approve: false });
  const to = new URL(res.json().redirect);
  assert.equal(to.searchParams.get('error'), 'access_denied');
  assert.equal(to.searchParams.get('state'), 'xyz');
  assert.equal(to.searchParams.get('code'), null);
});

test('requests that cannot be answered are refused without a redirect', async () => {
  const c = verifierAndChallenge().challenge;
  for (const [extra, why] of [
    [{ response_type: 'token' }, /response_type/],
    [{ client_id: 'not an app' }, /app name/],
    [{ client_id: 'info.freezr.account' }, /reserved/],
    [{ redirect_uri: 'http://notes.example/cb' }, /redirect_uri/],
    [{ redirect_uri: 'https://notes.example/cb#frag' }, /fragment/],
    [{ redirect_uri: 'javascript:alert(1)' }, /redirect_uri/],
    [{ redirect_uri: 'https://user:pw@notes.example/cb' }, /credentials/],
    [{ code_challenge: undefined }, /code_challenge/],
    [{ code_challenge: 'short' }, /code_challenge/],
    [{ code_challenge_method: 'plain' }, /S256/],
    [{ code_challenge_method: undefined }, /S256/],
  ] as const) {
    const res = await ask({ ...request(c, extra), approve: true });
    assert.equal(res.statusCode, 400, `${JSON.stringify(extra)}: ${res.body}`);
    assert.match(res.json().message, why);
    assert.equal(res.json().redirect, undefined);
  }
  // Native apps: loopback http and their own reverse-domain scheme are fine.
  for (const redirect_uri of ['http://127.0.0.1:53682/cb', 'http://localhost:8080/cb', 'http://[::1]:9/cb', 'com.example.notes:/oauth']) {
    const res = await ask({ ...request(c, { redirect_uri }), approve: false });
    assert.equal(res.statusCode, 200, `${redirect_uri}: ${res.body}`);
  }
});

test('only the owner, from their own pages, can answer', async () => {
  const fields = { ...request(verifierAndChallenge().challenge), approve: true };
  assert.equal((await server.app.inject({ method: 'POST', url: '/oauth/authorize', payload: fields })).statusCode, 401);
  const forged = await ask(fields, { origin: 'https://evil.example' });
  assert.equal(forged.statusCode, 403);
  assert.equal(forged.json().error, 'csrf');
  assert.equal((await ask(fields, { 'sec-fetch-site': 'cross-site' })).statusCode, 403);
});

test('the token endpoint: unknown grant types and missing verifiers are refused; app passwords still work', async () => {
  const unknown = await token({ grant_type: 'client_credentials', client_id: APP });
  assert.equal(unknown.statusCode, 400);
  assert.equal(unknown.json().error, 'unsupported_grant_type');
  const { challenge } = verifierAndChallenge();
  const code = await allow(challenge);
  const noVerifier = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: APP });
  assert.equal(noVerifier.statusCode, 400);
  assert.match(noVerifier.json().message, /code_verifier/);

  const { password } = await server.services.tokens.issueAppPassword('alice', APP, 60_000, false);
  const viaPassword = await token({ grant_type: 'password', username: 'alice', password, client_id: APP });
  assert.equal(viaPassword.statusCode, 200, viaPassword.body);
});
