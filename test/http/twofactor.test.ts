import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { startTestServer, TEST_PASSWORD, type TestServer } from '../helpers/server.js';

let server: TestServer;

/** Codes computed the way an authenticator app would, independently of the server's wrapper. */
function codeAt(secret: string, timestamp: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp });
}

async function post(url: string, payload: object, cookie?: string, extra: Record<string, string> = {}) {
  return server.app.inject({ method: 'POST', url, payload, headers: { ...(cookie ? { cookie } : {}), ...extra } });
}

const login = (userId: string, extra: object = {}, password = TEST_PASSWORD) =>
  post('/acctapi/login', { user_id: userId, password, ...extra });

interface Enrolled { cookie: string; secret: string; codes: string[]; at: number }

/**
 * A new user with 2FA on. The confirming code is of the step at `at`, so the next
 * code a test may use is the one 30 s later (still inside the ±1 step window).
 */
async function enrol(userId: string): Promise<Enrolled> {
  await server.addUser(userId);
  const cookie = await server.signIn(userId);
  const setup = await post('/acctapi/2fa/setup', {}, cookie);
  assert.equal(setup.statusCode, 200, setup.body);
  const { secret } = setup.json();
  assert.match(setup.json().qr_svg, /^<svg[^>]*>.*<\/svg>$/s, 'the setup link comes as a QR code too');
  const at = Date.now();
  const confirm = await post('/acctapi/2fa/confirm', { code: codeAt(secret, at) }, cookie);
  assert.equal(confirm.statusCode, 200, confirm.body);
  return { cookie, secret, codes: confirm.json().recovery_codes, at };
}

before(async () => { server = await startTestServer(); });
after(() => server.close());

describe('enrolment', () => {
  test('setup gives a pending secret and URI; confirm with a code turns it on with 10 recovery codes', async () => {
    await server.addUser('erin');
    const cookie = await server.signIn('erin');
    const status0 = await server.app.inject({ url: '/acctapi/2fa', headers: { cookie } });
    assert.deepEqual(status0.json(), { enabled: false, pending: false, recovery_codes_left: 0 });

    const first = (await post('/acctapi/2fa/setup', {}, cookie)).json();
    const setup = await post('/acctapi/2fa/setup', {}, cookie);
    assert.equal(setup.statusCode, 200);
    const { secret, otpauth_uri: uri } = setup.json();
    assert.match(secret, /^[A-Z2-7]{32,}$/, 'at least 160 bits, base32');
    assert.notEqual(secret, first.secret);
    const parsed = new URL(uri);
    assert.equal(parsed.protocol, 'otpauth:');
    assert.equal(parsed.searchParams.get('secret'), secret);
    assert.match(decodeURIComponent(parsed.pathname), /^\/freehold \(.*\):erin$/);
    assert.deepEqual((await server.app.inject({ url: '/acctapi/2fa', headers: { cookie } })).json(),
      { enabled: false, pending: true, recovery_codes_left: 0 });
    // Not on until confirmed: sign-in still takes the password alone.
    assert.equal((await login('erin')).statusCode, 200);

    const stale = await post('/acctapi/2fa/confirm', { code: codeAt(first.secret, Date.now()) }, cookie);
    assert.equal(stale.statusCode, 403, 'the replaced pending secret is void');
    const wrong = await post('/acctapi/2fa/confirm', { code: '000000' === codeAt(secret, Date.now()) ? '111111' : '000000' }, cookie);
    assert.equal(wrong.statusCode, 403);
    assert.equal(wrong.json().error, 'forbidden');

    const ok = await post('/acctapi/2fa/confirm', { code: codeAt(secret, Date.now()) }, cookie);
    assert.equal(ok.statusCode, 200);
    const { enabled, recovery_codes: codes } = ok.json();
    assert.equal(enabled, true);
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    assert.deepEqual((await server.app.inject({ url: '/acctapi/2fa', headers: { cookie } })).json(),
      { enabled: true, pending: false, recovery_codes_left: 10 });
    const again = await post('/acctapi/2fa/setup', {}, cookie);
    assert.equal(again.statusCode, 409, 'no new secret while 2FA is on');
  });

  test('the 2FA routes need a session and a same-origin request, and check their bodies', async () => {
    assert.equal((await server.app.inject({ url: '/acctapi/2fa' })).statusCode, 401);
    assert.equal((await post('/acctapi/2fa/setup', {})).statusCode, 401);
    await server.addUser('frank');
    const cookie = await server.signIn('frank');
    const csrf = await post('/acctapi/2fa/setup', {}, cookie, { origin: 'https://evil.example' });
    assert.equal(csrf.statusCode, 403);
    assert.equal(csrf.json().error, 'csrf');
    const bad = await post('/acctapi/2fa/confirm', { code: 123456 }, cookie);
    assert.equal(bad.statusCode, 400);
    const early = await post('/acctapi/2fa/confirm', { code: '123456' }, cookie);
    assert.equal(early.statusCode, 400, 'confirm before setup');
  });
});

describe('sign-in with 2FA on', () => {
  test('the code is asked for after a right password only; a right code signs in, once', async () => {
    const { secret, at } = await enrol('gina');
    const missing = await login('gina');
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.json().error, 'totp_required');
    assert.equal(missing.cookies.length, 0, 'no session without the code');

    const wrongPassword = await login('gina', {}, 'not the password');
    assert.equal(wrongPassword.json().error, 'unauthorized', 'a wrong password is not told apart by totp_required');
    const next = codeAt(secret, at + 30_000);
    const wrongPasswordRightCode = await login('gina', { totp: next }, 'not the password');
    assert.equal(wrongPasswordRightCode.statusCode, 401);

    const current = codeAt(secret, at);
    const wrongCode = await login('gina', { totp: current === '000000' ? '111111' : '000000' });
    assert.equal(wrongCode.statusCode, 401);
    assert.equal(wrongCode.json().error, 'unauthorized');

    const ok = await login('gina', { totp: next });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { logged_in: true, user_id: 'gina' });
    assert.ok(ok.cookies.some((c) => c.name === 'freehold_session' && c.value));

    const replay = await login('gina', { totp: next });
    assert.equal(replay.statusCode, 401, 'the same code twice');
    const earlier = await login('gina', { totp: current });
    assert.equal(earlier.statusCode, 401, 'an earlier step (the confirming code) after a later one');
  });

  test('a code from outside the ±30 s window is refused', async () => {
    const { secret, at } = await enrol('hank');
    for (const offset of [-90_000, -60_000, 90_000, 120_000]) {
      const res = await login('hank', { totp: codeAt(secret, at + offset) });
      assert.equal(res.statusCode, 401, `offset ${offset}`);
    }
  });

  test('two racing sign-ins with one code: exactly one wins', async () => {
    const { secret, at } = await enrol('ivan');
    const code = codeAt(secret, at + 30_000);
    const results = await Promise.all([login('ivan', { totp: code }), login('ivan', { totp: code }), login('ivan', { totp: code })]);
    assert.deepEqual(results.map((r) => r.statusCode).sort(), [200, 401, 401]);
  });

  test('a recovery code signs in once, typed in any case, and racing uses win once', async () => {
    const { codes, cookie } = await enrol('jane');
    const typed = codes[0]!.toUpperCase().replaceAll('-', ' ');
    assert.equal((await login('jane', { recovery_code: typed })).statusCode, 200);
    assert.equal((await login('jane', { recovery_code: codes[0] })).statusCode, 401, 'used up');
    const race = await Promise.all([login('jane', { recovery_code: codes[1] }), login('jane', { recovery_code: codes[1] })]);
    assert.deepEqual(race.map((r) => r.statusCode).sort(), [200, 401]);
    assert.equal((await login('jane', { recovery_code: 'aaaa-bbbb-cccc-dddd' })).statusCode, 401);
    const status = await server.app.inject({ url: '/acctapi/2fa', headers: { cookie } });
    assert.equal(status.json().recovery_codes_left, 8);
  });

  test("another user's recovery code is nothing", async () => {
    const a = await enrol('kate');
    await enrol('liam');
    assert.equal((await login('liam', { recovery_code: a.codes[0] })).statusCode, 401);
    assert.equal((await login('kate', { recovery_code: a.codes[0] })).statusCode, 200);
  });

  test('password and code tries share the sign-in rate limit', async () => {
    const limited = await startTestServer({ env: { FREEHOLD_RATE_LIMIT: 'on', FREEHOLD_LOGIN_RATE_LIMIT: '3' } });
    try {
      await limited.addUser('mona');
      const { secret: base32 } = await limited.services.twoFactor.beginSetup('mona', 'test');
      const at = Date.now();
      await limited.services.twoFactor.confirm('mona', codeAt(base32, at));
      const codes: number[] = [];
      for (const totp of [undefined, '000000', '111111', codeAt(base32, at + 30_000)]) {
        const res = await limited.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 'mona', password: TEST_PASSWORD, ...(totp ? { totp } : {}) } });
        codes.push(res.statusCode);
      }
      assert.deepEqual(codes, [401, 401, 401, 429], 'even the right code waits once the limit is reached');
    } finally {
      await limited.close();
    }
  });
});

describe('managing 2FA', () => {
  test('new recovery codes need a current code and void the old set', async () => {
    const { cookie, secret, codes, at } = await enrol('nina');
    const refused = await post('/acctapi/2fa/recovery-codes', { code: codeAt(secret, at) }, cookie);
    assert.equal(refused.statusCode, 403, 'the confirming code is already used');
    const res = await post('/acctapi/2fa/recovery-codes', { code: codeAt(secret, at + 30_000) }, cookie);
    assert.equal(res.statusCode, 200);
    const fresh: string[] = res.json().recovery_codes;
    assert.equal(fresh.length, 10);
    assert.equal((await login('nina', { recovery_code: codes[0] })).statusCode, 401, 'old set void');
    assert.equal((await login('nina', { recovery_code: fresh[0] })).statusCode, 200);
  });

  test('disable needs the password and a code; afterwards the password alone signs in', async () => {
    const { cookie, codes } = await enrol('olga');
    const noPassword = await post('/acctapi/2fa/disable', { password: 'not the password', recovery_code: codes[0] }, cookie);
    assert.equal(noPassword.statusCode, 403);
    const noCode = await post('/acctapi/2fa/disable', { password: TEST_PASSWORD }, cookie);
    assert.equal(noCode.statusCode, 400);
    const wrongCode = await post('/acctapi/2fa/disable', { password: TEST_PASSWORD, code: '000000' }, cookie);
    assert.equal(wrongCode.statusCode, 403);
    const csrf = await post('/acctapi/2fa/disable', { password: TEST_PASSWORD, recovery_code: codes[0] }, cookie, { origin: 'https://evil.example' });
    assert.equal(csrf.statusCode, 403);
    const ok = await post('/acctapi/2fa/disable', { password: TEST_PASSWORD, recovery_code: codes[0] }, cookie);
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { enabled: false });
    assert.deepEqual((await server.app.inject({ url: '/acctapi/2fa', headers: { cookie } })).json(),
      { enabled: false, pending: false, recovery_codes_left: 0 });
    assert.equal((await login('olga')).statusCode, 200);
    assert.equal((await server.services.stores.host.count('_system', 'system.recovery_codes', { op: 'eq', path: ['user_id'], value: 'olga' })), 0);
  });

  test('the admin resets a user\'s 2FA from the command line', async () => {
    await enrol('pete');
    assert.equal((await login('pete')).json().error, 'totp_required');
    const root = path.resolve(import.meta.dirname, '..', '..');
    const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli', 'main.ts'), 'user', '2fa-reset', 'pete'], {
      cwd: root, encoding: 'utf8', env: { ...process.env, FREEHOLD_DATA: server.dataDir, FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'silent' },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /turned off for pete/);
    assert.equal((await login('pete')).statusCode, 200);
  });
});

describe('at rest', () => {
  test('TOTP secrets and recovery codes are not stored in plain text', async () => {
    const { secret, codes } = await enrol('quin');
    const record = await server.services.stores.host.get('_system', 'system.totp', 'quin');
    assert.ok(record);
    const raw = JSON.stringify(record);
    assert.doesNotMatch(raw, new RegExp(secret, 'i'));
    assert.match(String(record.secret), /^v1\./);
    const stored = JSON.stringify(await server.services.stores.host.query('_system', 'system.recovery_codes',
      { op: 'eq', path: ['user_id'], value: 'quin' }, { sort: [], skip: 0, limit: 100 }));
    for (const code of codes) {
      assert.ok(!stored.includes(code) && !stored.includes(code.replaceAll('-', '')), 'recovery code in plain text');
    }
    // And the database files themselves, WAL included: no secret anywhere in the bytes.
    const db = path.join(server.dataDir, 'freehold.db');
    const bytes = [db, `${db}-wal`].filter(existsSync).map((f) => readFileSync(f).toString('latin1')).join('');
    assert.ok(bytes.length > 0);
    assert.ok(!bytes.includes(secret) && !bytes.toLowerCase().includes(secret.toLowerCase()), 'secret in the database file');
    for (const code of codes) assert.ok(!bytes.includes(code.replaceAll('-', '')), 'recovery code in the database file');
  });
});
