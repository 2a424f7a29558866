import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Secret, TOTP } from 'otpauth';
import path from 'node:path';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.js';
import { hashSecret } from '../../src/core/ids.js';
import { multipart } from '../helpers/multipart.js';

let server: TestServer;

function cookieHeader(res: { cookies: Array<{ name: string; value: string }> }): string {
  return res.cookies.filter((c) => c.value !== '').map((c) => `${c.name}=${c.value}`).join('; ');
}

before(async () => {
  server = await startTestServer();
});
after(() => server.close());

describe('first run', () => {
  test('setup creates the admin once, with a valid token only', async () => {
    const status0 = (await server.app.inject({ method: 'GET', url: '/acctapi/setup/status' })).json();
    assert.deepEqual(status0, { needs_setup: true, token_valid: false });
    const token = await server.services.accounts.issueSetupToken();
    assert.ok(token);
    const ok = (await server.app.inject({ method: 'GET', url: `/acctapi/setup/status?token=${token}` })).json();
    assert.equal(ok.token_valid, true);

    const wrong = await server.app.inject({ method: 'POST', url: '/acctapi/setup', payload: { token: 'nope', user_id: 'root1', password: TEST_PASSWORD } });
    assert.equal(wrong.statusCode, 403);
    const weak = await server.app.inject({ method: 'POST', url: '/acctapi/setup', payload: { token, user_id: 'admin1', password: 'short' } });
    assert.equal(weak.statusCode, 400);
    const res = await server.app.inject({ method: 'POST', url: '/acctapi/setup', payload: { token, user_id: 'admin1', password: TEST_PASSWORD } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { logged_in: true, user_id: 'admin1' });
    const again = await server.app.inject({ method: 'POST', url: '/acctapi/setup', payload: { token, user_id: 'admin2', password: TEST_PASSWORD } });
    assert.equal(again.statusCode, 409);
    assert.equal(await server.services.accounts.issueSetupToken(), null);
  });
  test('an expired setup token is refused', async () => {
    const s2 = await startTestServer();
    try {
      const token = await s2.services.accounts.issueSetupToken();
      const rec = await s2.services.stores.host.get('_system', 'system.setup', 'first-admin');
      await s2.services.stores.host.put('_system', 'system.setup', { ...rec!, expires_at: Date.now() - 1 });
      const res = await s2.app.inject({ method: 'POST', url: '/acctapi/setup', payload: { token, user_id: 'admin1', password: TEST_PASSWORD } });
      assert.equal(res.statusCode, 403);
    } finally {
      await s2.close();
    }
  });
});

describe('sign-in', () => {
  before(() => server.addUser('carol'));

  test('login sets httpOnly Lax session and Strict account cookies, no secrets in the reply', async () => {
    const res = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'carol', password: TEST_PASSWORD } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { logged_in: true, user_id: 'carol' });
    assert.doesNotMatch(res.body, /argon2|hash|sqlite|password/i);
    const session = res.cookies.find((c) => c.name === 'freehold_session')!;
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    const account = res.cookies.find((c) => c.name === 'app_token_carol')!;
    assert.equal(account.httpOnly, true);
    assert.equal(account.sameSite, 'Strict');
    const who = await server.app.inject({ method: 'GET', url: '/acctapi/session', headers: { cookie: cookieHeader(res) } });
    assert.deepEqual(who.json(), { logged_in: true, user_id: 'carol', is_admin: false });
  });

  test('wrong password, unknown user and bad shapes are refused', async () => {
    for (const payload of [{ user_id: 'carol', password: 'wrong password' }, { user_id: 'nobody', password: TEST_PASSWORD }]) {
      const res = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload });
      assert.equal(res.statusCode, 401);
      assert.equal(res.json().error, 'unauthorized');
    }
    for (const payload of [{}, { user_id: 5, password: 'x' }, { user_id: 'carol' }]) {
      const res = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload });
      assert.equal(res.statusCode, 400);
    }
  });

  test('login rotates the session: the old cookie stops working', async () => {
    const first = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'carol', password: TEST_PASSWORD } });
    const c1 = cookieHeader(first);
    const second = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'carol', password: TEST_PASSWORD }, headers: { cookie: c1 } });
    const c2 = cookieHeader(second);
    assert.notEqual(c1, c2);
    assert.equal((await server.app.inject({ method: 'GET', url: '/acctapi/session', headers: { cookie: c1 } })).json().logged_in, false);
    assert.equal((await server.app.inject({ method: 'GET', url: '/acctapi/session', headers: { cookie: c2 } })).json().logged_in, true);
  });

  test('logout ends the session and its tokens', async () => {
    const cookie = await server.signIn('carol');
    const pw = await server.app.inject({ method: 'GET', url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { cookie } });
    assert.equal(pw.statusCode, 200);
    const out = await server.app.inject({ method: 'POST', url: '/acctapi/logout', headers: { cookie } });
    assert.deepEqual(out.json(), { logged_out: true });
    assert.equal((await server.app.inject({ method: 'GET', url: '/acctapi/session', headers: { cookie } })).json().logged_in, false);
    const again = await server.app.inject({ method: 'GET', url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { cookie } });
    assert.equal(again.statusCode, 401);
  });

  test('cross-origin posts with the session cookie are refused', async () => {
    const cookie = await server.signIn('carol');
    const res = await server.app.inject({ method: 'POST', url: '/acctapi/logout', headers: { cookie, origin: 'https://evil.example' } });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error, 'csrf');
    // A read that makes something (an app password) is refused from another origin too.
    const before = (await server.services.tokens.listFor('carol')).length;
    const pw = await server.app.inject({ method: 'GET', url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { cookie, origin: 'https://evil.example' } });
    assert.equal(pw.statusCode, 403);
    assert.equal(pw.json().error, 'csrf');
    assert.equal((await server.services.tokens.listFor('carol')).length, before);
    const own = await server.app.inject({ method: 'GET', url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { cookie, origin: server.config.publicUrl } });
    assert.equal(own.statusCode, 200);
  });

  test('login is rate limited per address', async () => {
    const limited = await startTestServer({ env: { FREEHOLD_RATE_LIMIT: 'on', FREEHOLD_LOGIN_RATE_LIMIT: '3' } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await limited.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'nobody', password: 'wrong password' } });
        codes.push(res.statusCode);
      }
      assert.deepEqual(codes, [401, 401, 401, 429, 429]);
      const last = await limited.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'nobody', password: 'x' } });
      assert.equal(last.json().error, 'rate_limited');
    } finally {
      await limited.close();
    }
  });
});

describe('users (admin)', () => {
  test('the admin creates users; others cannot', async () => {
    await server.addUser('boss', TEST_PASSWORD, true);
    const admin = await server.signIn('boss');
    const res = await server.app.inject({ method: 'POST', url: '/acctapi/users', headers: { cookie: admin }, payload: { user_id: 'dave', password: TEST_PASSWORD } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().user_id, 'dave');
    const dup = await server.app.inject({ method: 'POST', url: '/acctapi/users', headers: { cookie: admin }, payload: { user_id: 'dave', password: TEST_PASSWORD } });
    assert.equal(dup.statusCode, 409);
    const reserved = await server.app.inject({ method: 'POST', url: '/acctapi/users', headers: { cookie: admin }, payload: { user_id: 'admin', password: TEST_PASSWORD } });
    assert.equal(reserved.statusCode, 400);
    const list = (await server.app.inject({ method: 'GET', url: '/acctapi/users', headers: { cookie: admin } })).json();
    assert.ok(list.users.some((u: { user_id: string }) => u.user_id === 'dave'));
    assert.doesNotMatch(JSON.stringify(list), /hash|argon/);

    const dave = await server.signIn('dave');
    const forbidden = await server.app.inject({ method: 'POST', url: '/acctapi/users', headers: { cookie: dave }, payload: { user_id: 'eve', password: TEST_PASSWORD } });
    assert.equal(forbidden.statusCode, 403);
    const anon = await server.app.inject({ method: 'GET', url: '/acctapi/users' });
    assert.equal(anon.statusCode, 401);
  });

  test('passwords are stored as argon2id hashes', async () => {
    const rec = await server.services.stores.host.get('_system', 'system.users', 'dave');
    assert.match(String(rec!.password_hash), /^\$argon2id\$/);
  });
});

describe('changing passwords', () => {
  /** A sign-in with the tokens minted under it: the session cookie, freezr's account token, an app page token. */
  async function signInWithTokens(userId: string, password = TEST_PASSWORD) {
    const res = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: userId, password } });
    assert.equal(res.statusCode, 200, res.body);
    const cookie = cookieHeader(res);
    const accountToken = res.cookies.find((c) => c.name === `app_token_${userId}`)!.value;
    const session = res.cookies.find((c) => c.name.includes('session'))!.value;
    const pageToken = await server.services.tokens.pageToken(hashSecret(session), userId, 'com.example.notes', Date.now() + 3600_000);
    return { cookie, accountToken, pageToken };
  }
  /** Whether each part of a sign-in still works. */
  async function alive(s: Awaited<ReturnType<typeof signInWithTokens>>) {
    const session = (await server.app.inject({ url: '/acctapi/session', headers: { cookie: s.cookie } })).json().logged_in as boolean;
    const account = (await server.app.inject({ url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { authorization: `Bearer ${s.accountToken}` } })).statusCode === 200;
    const page = (await server.app.inject({ url: '/ceps/query/com.example.notes', headers: { authorization: `Bearer ${s.pageToken}` } })).statusCode === 200;
    return { session, account, page };
  }
  const ALIVE = { session: true, account: true, page: true };
  const DEAD = { session: false, account: false, page: false };
  const change = (cookie: string, payload: object) => server.app.inject({ method: 'PUT', url: '/acctapi/password', headers: { cookie }, payload });

  before(async () => {
    await server.addUser('gina');
    await server.addUser('hal');
    await server.addUser('root2', TEST_PASSWORD, true);
  });

  test('an owner changes their password with the current one; their other sign-ins end, this one stays', async () => {
    const here = await signInWithTokens('gina');
    const elsewhere = await signInWithTokens('gina');
    const wrong = await change(here.cookie, { current_password: 'not it', new_password: 'a new long password' });
    assert.equal(wrong.statusCode, 403);
    assert.deepEqual(Object.keys(wrong.json()), ['error', 'message']);
    assert.equal((await change(here.cookie, { current_password: TEST_PASSWORD, new_password: 'short' })).statusCode, 400);
    assert.deepEqual(await alive(elsewhere), ALIVE, 'refused changes end nothing');

    const ok = await change(here.cookie, { current_password: TEST_PASSWORD, new_password: 'a new long password' });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { changed: true, signed_out_elsewhere: 1 });
    assert.deepEqual(await alive(here), ALIVE);
    assert.deepEqual(await alive(elsewhere), DEAD);
    assert.equal((await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'gina', password: TEST_PASSWORD } })).statusCode, 401);
    assert.equal((await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'gina', password: 'a new long password' } })).statusCode, 200);
    // Not by an account token or without a session, and not from another site.
    assert.equal((await server.app.inject({ method: 'PUT', url: '/acctapi/password', headers: { authorization: `Bearer ${here.accountToken}` }, payload: { current_password: 'a new long password', new_password: 'x'.repeat(12) } })).statusCode, 401);
    assert.equal((await server.app.inject({ method: 'PUT', url: '/acctapi/password', headers: { cookie: here.cookie, origin: 'https://evil.example' }, payload: { current_password: 'a new long password', new_password: 'x'.repeat(12) } })).statusCode, 403);
  });

  test('passwords of spaces alone are refused; a stale session cookie on /home says the session ended', async () => {
    const here = await signInWithTokens('gina', 'a new long password');
    const blank = await change(here.cookie, { current_password: 'a new long password', new_password: ' '.repeat(12) });
    assert.equal(blank.statusCode, 400);
    assert.match(blank.json().message, /other than spaces/);
    const admin = await server.signIn('root2');
    const made = await server.app.inject({ method: 'POST', url: '/acctapi/users', headers: { cookie: admin }, payload: { user_id: 'spacey', password: '         ' } });
    assert.equal(made.statusCode, 400);
    // The cookie of a session that has ended, as a browser still holds it.
    await server.app.inject({ method: 'POST', url: '/acctapi/logout', headers: { cookie: here.cookie } });
    const home = await server.app.inject({ url: '/home', headers: { cookie: here.cookie } });
    assert.equal(home.headers.location, '/signin?next=%2Fhome&reason=ended');
    assert.equal((await server.app.inject({ url: '/home' })).headers.location, '/signin?next=%2Fhome');
  });

  test('the admin sets another user\'s password and resets their two-factor sign-in; the user is signed out everywhere', async () => {
    const admin = await server.signIn('root2');
    const hal = await signInWithTokens('hal');
    const { secret } = await server.services.twoFactor.beginSetup('hal', 'freehold');
    await server.services.twoFactor.confirm('hal', new TOTP({ secret: Secret.fromBase32(secret) }).generate());
    assert.equal(await server.services.twoFactor.isEnabled('hal'), true);
    const twoFactorOf = async (id: string) => ((await server.app.inject({ url: '/acctapi/users', headers: { cookie: admin } })).json().users as Array<{ user_id: string; two_factor: boolean }>)
      .find((u) => u.user_id === id)?.two_factor;
    assert.equal(await twoFactorOf('hal'), true, 'the list says who signs in with a second factor');
    const set = await server.app.inject({ method: 'PUT', url: '/acctapi/users/hal/password', headers: { cookie: admin }, payload: { password: 'hals new password' } });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(set.json(), { user_id: 'hal', changed: true, signed_out: 1 });
    assert.deepEqual(await alive(hal), DEAD);
    assert.ok(await server.services.accounts.verify('hal', 'hals new password'));

    const reset = await server.app.inject({ method: 'POST', url: '/acctapi/users/hal/2fa-reset', headers: { cookie: admin } });
    assert.equal(reset.statusCode, 200, reset.body);
    assert.deepEqual(reset.json(), { user_id: 'hal', had_two_factor: true });
    assert.equal(await server.services.twoFactor.isEnabled('hal'), false);
    assert.equal(await twoFactorOf('hal'), false);

    const halCookie = await server.signIn('hal', 'hals new password');
    for (const [method, url, payload] of [['PUT', '/acctapi/users/gina/password', { password: 'taken over!!' }], ['POST', '/acctapi/users/gina/2fa-reset', undefined]] as const) {
      assert.equal((await server.app.inject({ method, url, headers: { cookie: halCookie }, ...(payload ? { payload } : {}) })).statusCode, 403, `${url}: admins only`);
    }
    assert.equal((await server.app.inject({ method: 'PUT', url: '/acctapi/users/nobody-here/password', headers: { cookie: admin }, payload: { password: 'whatever long' } })).statusCode, 404);
    assert.equal((await server.app.inject({ method: 'PUT', url: '/acctapi/users/root2/password', headers: { cookie: admin }, payload: { password: 'whatever long' } })).statusCode, 400);
    assert.equal((await server.app.inject({ method: 'PUT', url: '/acctapi/users/..%2Fx/password', headers: { cookie: admin }, payload: { password: 'whatever long' } })).statusCode, 400);
  });

  test('the admin removes a user with everything they stored; the id can start afresh', async () => {
    await server.addUser('ivy');
    const ivy = await signInWithTokens('ivy');
    await server.services.apps.install('ivy', { folder: path.join(import.meta.dirname, '..', 'fixtures', 'apps', 'com.example.notes') });
    const appToken = await server.appToken('ivy', 'com.example.notes');
    const auth = { authorization: `Bearer ${appToken}` };
    assert.equal((await server.app.inject({ method: 'POST', url: '/ceps/write/com.example.notes', headers: auth, payload: { mine: 1 } })).statusCode, 200);
    const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"a.txt"}' }, { name: 'file', value: 'hello', filename: 'a.txt' }]);
    assert.equal((await server.app.inject({ method: 'PUT', url: '/feps/upload/com.example.notes', payload: body, headers: { ...auth, 'content-type': contentType } })).statusCode, 200);
    await server.services.quota.setQuota('ivy', { bytes: 0, records: 500 });
    const admin = await server.signIn('root2');
    const hal = await server.signIn('hal', 'hals new password');
    assert.equal((await server.app.inject({ method: 'DELETE', url: '/acctapi/users/ivy', headers: { cookie: hal } })).statusCode, 403, 'admins only');
    const self = await server.app.inject({ method: 'DELETE', url: '/acctapi/users/root2', headers: { cookie: admin } });
    assert.equal(self.statusCode, 400, 'not oneself');
    assert.match(self.json().message, /^An admin cannot remove their own account here/);
    assert.equal((await server.app.inject({ method: 'DELETE', url: '/acctapi/users/ivy', headers: { cookie: admin, origin: 'https://evil.example' } })).statusCode, 403);

    const res = await server.app.inject({ method: 'DELETE', url: '/acctapi/users/ivy', headers: { cookie: admin } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().removed, true);
    assert.ok(res.json().tables >= 3 && res.json().files >= 2, res.body);
    assert.deepEqual(await alive(ivy), DEAD);
    assert.equal((await server.app.inject({ url: '/ceps/query/com.example.notes', headers: auth })).statusCode, 401);
    assert.deepEqual(await server.services.stores.records('ivy').listTables('ivy'), []);
    const left: string[] = [];
    for await (const { key } of server.services.stores.blobs('ivy').list('ivy')) left.push(key);
    assert.deepEqual(left, []);
    assert.equal(await server.services.accounts.get('ivy'), null);
    assert.equal((await server.app.inject({ method: 'DELETE', url: '/acctapi/users/ivy', headers: { cookie: admin } })).statusCode, 404);
    // The id is free again, with nothing of the old account.
    await server.addUser('ivy');
    assert.deepEqual(await server.services.quota.quotaOf('ivy'), await server.services.quota.quotaOf('nobody-at-all'));
    assert.deepEqual(await server.services.apps.list('ivy'), []);
  });

  test('`freehold user passwd` ends the user\'s sign-ins with their tokens', async () => {
    const hal = await signInWithTokens('hal', 'hals new password');
    assert.deepEqual(await alive(hal), ALIVE);
    const root = path.resolve(import.meta.dirname, '..', '..');
    // Asynchronously: the server in this process keeps turning, as a real one would while the command runs.
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli', 'main.ts'), 'user', 'passwd', 'hal', '--password-stdin'], {
      cwd: root, env: { ...process.env, FREEHOLD_DATA: server.dataDir, FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'silent' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdin.end('hals third password\n');
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(status, 0, err);
    assert.match(out, /sign-ins were ended/);
    assert.deepEqual(await alive(hal), DEAD);
  });
});

describe('app passwords and OAuth', () => {
  before(() => server.addUser('erin'));

  async function appPassword(cookieOrBearer: { cookie?: string; authorization?: string }, app = 'com.example.notes') {
    const res = await server.app.inject({ method: 'GET', url: `/acctapi/generateAppPassword?app_name=${app}`, headers: cookieOrBearer as Record<string, string> });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { app_password: string; app_name: string; expiry: number };
  }

  test('an app password works once, for its app and user only', async () => {
    const cookie = await server.signIn('erin');
    const { app_password, app_name, expiry } = await appPassword({ cookie });
    assert.equal(app_name, 'com.example.notes');
    assert.ok(expiry > Date.now());
    const wrongApp = await server.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'password', username: 'erin', password: app_password, client_id: 'com.example.other' } });
    // OAuth's own words (RFC 6749 §5.2), which client libraries read.
    assert.equal(wrongApp.statusCode, 400);
    assert.equal(wrongApp.json().error, 'invalid_grant');
    const wrongUser = await server.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'password', username: 'carol', password: app_password, client_id: app_name } });
    assert.equal(wrongUser.statusCode, 400);
    assert.equal(wrongUser.json().error, 'invalid_grant');
    const res = await server.app.inject({
      method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'password', username: 'erin', password: app_password, client_id: app_name }).toString(),
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.user_id, 'erin');
    assert.equal(body.app_name, app_name);
    assert.ok(body.expires_in > 0);
    const write = await server.app.inject({ method: 'POST', url: `/ceps/write/${app_name}`, headers: { authorization: `Bearer ${body.access_token}` }, payload: { via: 'oauth' } });
    assert.equal(write.statusCode, 200);
    const reuse = await server.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'password', username: 'erin', password: app_password, client_id: app_name } });
    assert.equal(reuse.statusCode, 400);
    assert.equal(reuse.json().error, 'invalid_grant');
  });

  test('the token an app password buys lasts as long as the owner chose for the password', async () => {
    const cookie = await server.signIn('erin');
    const day = 24 * 3600 * 1000;
    for (const span of [3600 * 1000, 365 * day]) {
      const asked = Date.now() + span;
      const made = await server.app.inject({ method: 'GET', url: `/acctapi/generateAppPassword?app_name=com.example.notes&expiry=${asked}`, headers: { cookie } });
      assert.equal(made.statusCode, 200, made.body);
      const { app_password, expiry } = made.json() as { app_password: string; expiry: number };
      assert.ok(Math.abs(expiry - asked) < 60_000, `password expiry ${expiry} is the one asked for (${asked})`);
      const res = await server.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'password', username: 'erin', password: app_password, client_id: 'com.example.notes' } });
      assert.equal(res.statusCode, 200, res.body);
      const seconds = (res.json() as { expires_in: number }).expires_in;
      assert.ok(Math.abs(seconds * 1000 - span) < 120_000, `token lasts ${seconds} s for a span of ${span / 1000} s`);
    }
  });

  test("freezr's account-token cookie works as Bearer for generateAppPassword; applogout ends it", async () => {
    const res = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'erin', password: TEST_PASSWORD } });
    const accountToken = res.cookies.find((c) => c.name === 'app_token_erin')!.value;
    await appPassword({ authorization: `Bearer ${accountToken}` });
    const ceps = await server.app.inject({ method: 'GET', url: '/ceps/query/com.example.notes', headers: { authorization: `Bearer ${accountToken}` } });
    assert.equal(ceps.statusCode, 401, 'an account token never reaches app data');
    const out = await server.app.inject({ method: 'POST', url: '/acctapi/applogout', headers: { authorization: `Bearer ${accountToken}` } });
    assert.equal(out.statusCode, 200);
    const after = await server.app.inject({ method: 'GET', url: '/acctapi/generateAppPassword?app_name=com.example.notes', headers: { authorization: `Bearer ${accountToken}` } });
    assert.equal(after.statusCode, 401);
  });

  test('bad grant types and inputs', async () => {
    const cookie = await server.signIn('erin');
    for (const url of ['/acctapi/generateAppPassword', '/acctapi/generateAppPassword?app_name=bad', '/acctapi/generateAppPassword?app_name=com.example.notes&expiry=1',
      '/acctapi/generateAppPassword?app_name=info.freezr.admin']) {
      const res = await server.app.inject({ method: 'GET', url, headers: { cookie } });
      assert.equal(res.statusCode, 400, url);
    }
    const grant = await server.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', username: 'erin', password: 'x', client_id: 'com.example.notes' } });
    assert.equal(grant.statusCode, 400);
    assert.equal(grant.json().error, 'unsupported_grant_type');
    for (const payload of [{ grant_type: 'password' }, { grant_type: 'password', client_id: 'com.example.notes' }]) {
      const missing = await server.app.inject({ method: 'POST', url: '/oauth/token', payload });
      assert.equal(missing.statusCode, 400);
      assert.equal(missing.json().error, 'invalid_request', JSON.stringify(payload));
    }
  });

  test('tokens are stored hashed', async () => {
    const token = await server.appToken('erin', 'com.example.notes');
    const rows = await server.services.stores.host.query('_system', 'system.tokens', { op: 'true' }, { sort: [], skip: 0, limit: 10000 });
    assert.ok(rows.length > 0);
    assert.ok(!JSON.stringify(rows).includes(token));
  });

  test('CORS: bearer APIs answer any origin without credentials; account routes do not', async () => {
    const pre = await server.app.inject({ method: 'OPTIONS', url: '/ceps/query/com.example.notes', headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' } });
    assert.equal(pre.statusCode, 200);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
    assert.equal(pre.headers['access-control-allow-credentials'], undefined);
    const acct = await server.app.inject({ method: 'GET', url: '/acctapi/session', headers: { origin: 'https://app.example' } });
    assert.equal(acct.headers['access-control-allow-origin'], undefined);
    // A page elsewhere may read how long to wait after a 429, and a file's range and name.
    const call = await server.app.inject({ method: 'GET', url: '/ceps/query/com.example.notes', headers: { origin: 'https://app.example', authorization: 'Bearer nope' } });
    assert.equal(call.statusCode, 401);
    const exposed = String(call.headers['access-control-expose-headers']).toLowerCase().split(/,\s*/);
    for (const h of ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'content-range', 'content-disposition']) assert.ok(exposed.includes(h), h);
  });
});

describe('revoking tokens', () => {
  before(() => server.addUser('frank'));

  test('the owner lists and revokes app tokens; revocation takes effect at once', async () => {
    const cookie = await server.signIn('frank');
    const token = await server.appToken('frank', 'com.example.notes');
    const list = await server.app.inject({ method: 'GET', url: '/acctapi/tokens', headers: { cookie } });
    assert.equal(list.statusCode, 200);
    const tokens = list.json().tokens as Array<{ id: string; app_name: string; display_name?: string }>;
    assert.equal(tokens.length, 1);
    assert.equal(tokens[0]!.display_name, undefined, 'an app not installed here has no name for people');
    await server.services.apps.install('frank', { folder: path.join('test', 'fixtures', 'apps', 'com.example.notes') });
    const named = (await server.app.inject({ method: 'GET', url: '/acctapi/tokens', headers: { cookie } })).json().tokens as Array<{ display_name?: string }>;
    assert.equal(named[0]!.display_name, 'Notes');
    assert.ok(!list.body.includes(token), 'the list never shows usable secrets');
    const other = await server.signIn('erin');
    assert.equal((await server.app.inject({ method: 'DELETE', url: `/acctapi/tokens/${tokens[0]!.id}`, headers: { cookie: other } })).statusCode, 404);
    const del = await server.app.inject({ method: 'DELETE', url: `/acctapi/tokens/${tokens[0]!.id}`, headers: { cookie } });
    assert.equal(del.statusCode, 200);
    const use = await server.app.inject({ method: 'GET', url: '/ceps/query/com.example.notes', headers: { authorization: `Bearer ${token}` } });
    assert.equal(use.statusCode, 401);
    assert.equal((await server.app.inject({ method: 'DELETE', url: '/acctapi/tokens/nothex', headers: { cookie } })).statusCode, 400);
  });

  test('POST /oauth/revoke ends a token held by a client', async () => {
    const token = await server.appToken('frank', 'com.example.notes');
    const res = await server.app.inject({ method: 'POST', url: '/oauth/revoke', payload: { token } });
    assert.deepEqual(res.json(), { revoked: true });
    const use = await server.app.inject({ method: 'GET', url: '/ceps/query/com.example.notes', headers: { authorization: `Bearer ${token}` } });
    assert.equal(use.statusCode, 401);
  });
});

describe('openapi', () => {
  test('/openapi.json lists the routes with their schemas', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.0.3');
    for (const p of ['/ceps/write/{app_table}', '/ceps/query/{app_table}', '/feps/upload/{app_name}', '/acctapi/login', '/oauth/token']) {
      assert.ok(doc.paths[p], p);
    }
    assert.ok(doc.paths['/ceps/query/{app_table}'].post.requestBody);
  });
});

describe('behind https', () => {
  test('cookies are Secure and HSTS is sent when the public URL is https', async () => {
    const s = await startTestServer({ config: { publicUrl: 'https://freehold.example' } });
    try {
      await s.addUser('gina');
      const res = await s.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'gina', password: TEST_PASSWORD } });
      assert.equal(res.statusCode, 200);
      for (const c of res.cookies) assert.equal(c.secure, true, c.name);
      assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      // The session cookie is __Host- prefixed: only this host may set it (no app origin of the same site can plant one).
      const session = res.cookies.find((c) => c.name === '__Host-freehold_session');
      assert.ok(session, res.cookies.map((c) => c.name).join());
      assert.equal(session.path, '/');
      assert.equal(session.domain, undefined);
      const as = (cookie: string) => s.app.inject({ method: 'GET', url: '/acctapi/session', headers: { cookie } });
      assert.equal((await as(`__Host-freehold_session=${session.value}`)).json().logged_in, true);
      // The same value under the name a sibling host could set is not a sign-in.
      assert.notEqual((await as(`freehold_session=${session.value}`)).json().logged_in, true);
      const out = await s.app.inject({ method: 'POST', url: '/acctapi/logout', headers: { cookie: `__Host-freehold_session=${session.value}`, origin: 'https://freehold.example' } });
      assert.equal(out.statusCode, 200);
      const cleared = out.cookies.find((c) => c.name === '__Host-freehold_session');
      assert.ok(cleared && cleared.secure && cleared.value === '', JSON.stringify(out.cookies));
    } finally {
      await s.close();
    }
  });
});
