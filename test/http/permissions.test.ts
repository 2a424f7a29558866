import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FIXTURES, zipFixture } from '../apps/zip-helpers.js';

const APP = 'com.example.notes';
let t: TestServer;
let token: string;
let cookie: string;

before(async () => {
  t = await startTestServer();
  await t.addUser('alice');
  await t.services.apps.install('alice', { folder: path.resolve(import.meta.dirname, '../fixtures/apps/com.example.notes') });
  token = await t.appToken('alice', APP);
  cookie = await t.signIn('alice');
});
after(() => t.close());

const perms = async () => {
  const res = await t.app.inject({ method: 'GET', url: '/ceps/perms/get', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200);
  return res.json() as Array<{ name: string; type: string; table_id: string[]; granted: boolean; requestor_app: string }>;
};

test("perms/get lists the app's declared permissions, none granted at first", async () => {
  const list = await perms();
  assert.ok(list.length > 0, 'the fixture declares permissions');
  for (const p of list) {
    assert.equal(p.granted, false);
    assert.equal(p.requestor_app, APP);
    assert.ok(Array.isArray(p.table_id));
  }
  const one = list[0]!;
  const filtered = await t.app.inject({ method: 'GET', url: `/ceps/perms/get?name=${encodeURIComponent(one.name)}`, headers: { authorization: `Bearer ${token}` } });
  assert.deepEqual(filtered.json().map((p: { name: string }) => p.name), [one.name]);
  assert.equal((await t.app.inject({ method: 'GET', url: '/ceps/perms/get' })).statusCode, 401);
});

test('the owner accepts and denies a permission; the change shows at once', async () => {
  const name = (await perms())[0]!.name;
  const change = (action: string, headers: Record<string, string>) => t.app.inject({
    method: 'PUT', url: '/feps/permissions/change', headers,
    payload: { change: { name, requestor_app: APP, action, table_id: null }, targetApp: APP },
  });
  const accept = await change('Accept', { cookie });
  assert.equal(accept.statusCode, 200, accept.body);
  assert.equal(accept.json().granted, true);
  assert.equal((await perms()).find((p) => p.name === name)!.granted, true);
  const deny = await change('Deny', { cookie });
  assert.equal(deny.json().granted, false);
  assert.equal((await perms()).find((p) => p.name === name)!.granted, false);
  assert.equal((await change('Accept', { authorization: `Bearer ${token}` })).statusCode, 401, 'an app token cannot grant itself');
  assert.equal((await change('Maybe', { cookie })).statusCode, 400);
  const unknown = await t.app.inject({ method: 'PUT', url: '/feps/permissions/change', headers: { cookie },
    payload: { change: { name: 'nope', requestor_app: APP, action: 'Accept' } } });
  assert.equal(unknown.statusCode, 404);
});

test('removing the app forgets its grants', async () => {
  const name = (await perms())[0]!.name;
  await t.app.inject({ method: 'PUT', url: '/feps/permissions/change', headers: { cookie }, payload: { change: { name, requestor_app: APP, action: 'Accept' } } });
  await t.services.apps.remove('alice', APP);
  await t.services.apps.install('alice', { folder: path.resolve(import.meta.dirname, '../fixtures/apps/com.example.notes') });
  token = await t.appToken('alice', APP);
  assert.equal((await perms()).find((p) => p.name === name)!.granted, false);
});

test('an update that changes what a granted permission covers asks the owner again; a reworded one does not', async () => {
  const HOSTILE = 'com.example.hostile';
  const manifestOf = (hosts: string[], description: string, version: string) => JSON.stringify({
    ...JSON.parse(readFileSync(path.join(FIXTURES, HOSTILE, 'manifest.json'), 'utf8')),
    version, permissions: [{ name: 'exfil', type: 'external_fetch', hosts, description }],
  });
  const install = async (manifest: string) => t.services.apps.install('alice', { zipPath: await zipFixture(HOSTILE, { replace: { 'manifest.json': manifest } }) });
  const exfil = async () => (await t.services.permissions.list('alice', HOSTILE)).find((p) => p.name === 'exfil')!;
  const connectSrc = async () => {
    const page = await t.appGet(cookie, HOSTILE, 'index');
    return /connect-src ([^;]*)/.exec(String(page.headers['content-security-policy']))![1]!;
  };

  await install(manifestOf(['https://exfil.example'], 'Send data away', '1.0.0'));
  await t.services.permissions.change('alice', { name: 'exfil', requestor_app: HOSTILE, action: 'Accept' });
  assert.equal((await exfil()).granted, true);
  assert.match(await connectSrc(), /https:\/\/exfil\.example/);

  // Reworded only: the grant holds.
  await install(manifestOf(['https://exfil.example'], 'Sends your data away, as you allowed', '1.0.1'));
  assert.equal((await exfil()).granted, true);

  // One more host: not allowed until the owner says so again, and the page may reach neither.
  await install(manifestOf(['https://other-exfil.example', 'https://exfil.example'], 'Sends your data away', '1.1.0'));
  assert.equal((await exfil()).granted, false);
  assert.doesNotMatch(await connectSrc(), /exfil\.example/);
  await t.services.permissions.change('alice', { name: 'exfil', requestor_app: HOSTILE, action: 'Accept' });
  assert.equal((await exfil()).granted, true);
  assert.match(await connectSrc(), /https:\/\/other-exfil\.example/);
});
