import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestServer, TEST_PASSWORD } from '../helpers/server.js';

const APP = 'com.example.notes';

test('the admin gives a new user their own stores; their data lands there and nowhere else', async () => {
  const server = await startTestServer();
  const own = mkdtempSync(path.join(tmpdir(), 'freehold-own-'));
  try {
    await server.addUser('root1', TEST_PASSWORD, true);
    await server.addUser('bob');
    await server.addUser('alice');
    const admin = await server.signIn('root1');
    const records = `sqlite:${path.join(own, 'bob.db')}`;
    const blobs = `fs:${path.join(own, 'files')}`;
    const res = await server.app.inject({ method: 'PUT', url: '/acctapi/users/bob/storage', headers: { cookie: admin }, payload: { records, blobs } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().records, records);

    const token = await server.appToken('bob', APP);
    const id = (await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { mine: 'bob' } })).json()._id;
    const bobStore = await server.services.stores.openRecords(records);
    assert.ok(await bobStore.get('bob', APP, id));
    assert.equal(await server.services.stores.host.get('bob', APP, id), null);

    const bobCookie = await server.signIn('bob');
    const mine = await server.app.inject({ method: 'GET', url: '/acctapi/storage', headers: { cookie: bobCookie } });
    assert.equal(mine.json().records, records);

    // Alice has data: a plain switch would strand it.
    const aliceToken = await server.appToken('alice', APP);
    await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${aliceToken}` }, payload: { a: 1 } });
    const refused = await server.app.inject({ method: 'PUT', url: '/acctapi/users/alice/storage', headers: { cookie: admin }, payload: { records: `sqlite:${path.join(own, 'a.db')}` } });
    assert.equal(refused.statusCode, 409);
    assert.match(refused.json().message, /migrate/);

    const bad = await server.app.inject({ method: 'PUT', url: '/acctapi/users/bob/storage', headers: { cookie: admin }, payload: { records: 'mongodb://x' } });
    assert.ok([400, 409].includes(bad.statusCode));
    const notAdmin = await server.app.inject({ method: 'PUT', url: '/acctapi/users/alice/storage', headers: { cookie: bobCookie }, payload: { records } });
    assert.equal(notAdmin.statusCode, 403);
  } finally {
    await server.close();
    rmSync(own, { recursive: true, force: true });
  }
});

test('owners choose their own stores only where the admin allows, and never local paths', async () => {
  for (const allowed of [false, true]) {
    const server = await startTestServer({ config: { ownerStorage: allowed } });
    try {
      await server.addUser('erin');
      const cookie = await server.signIn('erin');
      const res = await server.app.inject({ method: 'PUT', url: '/acctapi/storage', headers: { cookie }, payload: { records: 'sqlite:/tmp/erin.db' } });
      assert.equal(res.statusCode, 403);
      assert.match(res.json().message, allowed ? /local paths/ : /only the admin/);
    } finally {
      await server.close();
    }
  }
});

test('a wrong store URL changes nothing', async () => {
  const server = await startTestServer();
  try {
    await server.addUser('root1', TEST_PASSWORD, true);
    await server.addUser('fay');
    const admin = await server.signIn('root1');
    const res = await server.app.inject({ method: 'PUT', url: '/acctapi/users/fay/storage', headers: { cookie: admin }, payload: { records: 'nope:thing' } });
    assert.equal(res.statusCode, 400);
    assert.equal(server.services.stores.storageOf('fay').records, server.config.records);
  } finally {
    await server.close();
  }
});
