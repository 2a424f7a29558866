import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startTestServer, TEST_PASSWORD } from '../helpers/server.js';
import { multipart } from '../helpers/multipart.js';
import { forEachRecordBackend } from '../helpers/backends.js';

const APP = 'com.example.notes';

test('a records quota refuses the write that would cross it (507), whole', async () => {
  const server = await startTestServer({ config: { quotaRecords: 5 } });
  try {
    await server.addUser('alice');
    const token = await server.appToken('alice', APP);
    const call = (method: string, url: string, payload?: object) =>
      server.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', `/ceps/write/${APP}`, { i });
      assert.equal(res.statusCode, 200);
      ids.push(res.json()._id);
    }
    const over = await call('POST', `/ceps/write/${APP}`, { i: 5 });
    assert.equal(over.statusCode, 507);
    assert.equal(over.json().error, 'quota_exceeded');
    // Updates that add no record still work; deleting frees room.
    assert.equal((await call('PUT', `/ceps/update/${APP}/${ids[0]}`, { i: 'x' })).statusCode, 200);
    assert.equal((await call('DELETE', `/ceps/delete/${APP}/${ids[1]}`)).statusCode, 200);
    assert.equal((await call('POST', `/ceps/write/${APP}`, { i: 6 })).statusCode, 200);
    // A bulk write that would cross the limit writes nothing.
    const before = (await call('GET', `/ceps/query/${APP}`)).json().length;
    await server.services.quota.setQuota('alice', { bytes: 0, records: 6 });
    const bulk = await call('PUT', `/feps/update/${APP}`, { q: {}, keys: { flagged: true } });
    assert.equal(bulk.statusCode, 200, 'updating existing records adds none');
    await server.services.quota.setQuota('alice', { bytes: 0, records: 5 });
    assert.equal((await call('POST', `/feps/restore/${APP}`, { _id: 'new-one', _date_created: 1, _date_modified: 1 })).statusCode, 507);
    assert.equal((await call('GET', `/ceps/query/${APP}`)).json().length, before);
  } finally {
    await server.close();
  }
});

test("the server's own records (an app's install, a grant) count in bytes, not against the owner's records", async () => {
  const server = await startTestServer({ config: { quotaRecords: 2 } });
  try {
    await server.addUser('alice');
    await server.services.apps.install('alice', { folder: path.join(import.meta.dirname, '..', 'fixtures', 'apps', APP) });
    await server.services.permissions.change('alice', { name: 'publish_posts', requestor_app: APP, action: 'Accept' });
    const token = await server.appToken('alice', APP);
    const write = (i: number) => server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { i } });
    assert.equal((await write(1)).statusCode, 200);
    assert.equal((await write(2)).statusCode, 200, 'the app install and the grant took none of the two');
    assert.equal((await write(3)).statusCode, 507);
    assert.equal((await server.services.quota.usage('alice')).records, 2);
    // Counted afresh from the stores, the same.
    server.services.quota.invalidate('alice');
    assert.equal((await server.services.quota.usage('alice')).records, 2);
  } finally {
    await server.close();
  }
});

test('a bytes quota refuses big records and files, leaving nothing behind', async () => {
  const server = await startTestServer({ config: { quotaBytes: 100_000 } });
  try {
    await server.addUser('bob');
    const token = await server.appToken('bob', APP);
    const small = await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { t: 'x'.repeat(10_000) } });
    assert.equal(small.statusCode, 200);
    const big = await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { t: 'x'.repeat(200_000) } });
    assert.equal(big.statusCode, 507);
    const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"big.bin"}' }, { name: 'file', value: Buffer.alloc(150_000, 1), filename: 'big.bin' }]);
    const up = await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } });
    assert.equal(up.statusCode, 507);
    assert.equal(up.json().error, 'quota_exceeded');
    assert.equal((await server.app.inject({ method: 'GET', url: `/feps/userfiles/${APP}/bob/big.bin`, headers: { authorization: `Bearer ${token}` } })).statusCode, 404);
    const fits = multipart([{ name: 'options', value: '{"fileName":"ok.bin"}' }, { name: 'file', value: Buffer.alloc(50_000, 1), filename: 'ok.bin' }]);
    assert.equal((await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: fits.body, headers: { 'content-type': fits.contentType, authorization: `Bearer ${token}` } })).statusCode, 200);
  } finally {
    await server.close();
  }
});

test('a bytes quota: a bulk update is admitted in one step, refused whole (507) when its growth passes the bytes left', async () => {
  const server = await startTestServer({ config: { quotaBytes: 20_000 } });
  try {
    await server.addUser('dan');
    const records = server.services.records;
    const dan = { userId: 'dan', ownerId: 'dan', appName: APP };
    const ids = await Promise.all([1, 2, 3, 4].map(async (n) => (await records.create(dan, APP, { kind: 'x', n }))._id));
    // A write racing the bulk update is kept: the bulk one builds on what is stored when it writes.
    const bulk = records.updateWhere(dan, APP, { op: 'eq', path: ['kind'], value: 'x' }, { tagged: true });
    const single = records.updateFields(dan, APP, ids[0]!, { note: 'meanwhile' });
    assert.deepEqual(await bulk, { nModified: 4 });
    await single;
    assert.equal((await records.read(dan, APP, ids[0]!)).note, 'meanwhile');
    const used = (await server.services.quota.usage('dan')).bytes;
    // Each match grows by a little more than a quarter of the bytes left: together they pass it.
    const big = 'y'.repeat(Math.ceil((20_000 - used) / 4) + 100);
    await assert.rejects(records.updateWhere(dan, APP, { op: 'eq', path: ['kind'], value: 'x' }, { big }), { code: 'quota_exceeded' });
    for (const id of ids) assert.equal((await records.read(dan, APP, id)).big, undefined, 'none of the matches was written');
    // A little less than a quarter each: together they fit.
    const fits = 'z'.repeat(Math.floor((20_000 - used) / 4) - 100);
    assert.deepEqual(await records.updateWhere(dan, APP, { op: 'eq', path: ['kind'], value: 'x' }, { fits }), { nModified: 4 });
    // The growth is counted: nothing more fits.
    await assert.rejects(records.create(dan, APP, { pad: 'p'.repeat(600) }), { code: 'quota_exceeded' });
  } finally {
    await server.close();
  }
});

test('the admin sets quotas; owners see their use', async () => {
  const server = await startTestServer();
  try {
    await server.addUser('root1', TEST_PASSWORD, true);
    await server.addUser('carol');
    const admin = await server.signIn('root1');
    const carol = await server.signIn('carol');
    const set = await server.app.inject({ method: 'PUT', url: '/acctapi/users/carol/quota', headers: { cookie: admin }, payload: { quota: { bytes: 0, records: 1 } } });
    assert.equal(set.statusCode, 200);
    assert.deepEqual(set.json().quota, { bytes: 0, records: 1 });
    const token = await server.appToken('carol', APP);
    assert.equal((await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { a: 1 } })).statusCode, 200);
    assert.equal((await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { a: 2 } })).statusCode, 507);
    const usage = (await server.app.inject({ method: 'GET', url: '/acctapi/usage', headers: { cookie: carol } })).json();
    assert.equal(usage.records, 1);
    assert.ok(usage.bytes > 0);
    assert.equal((await server.app.inject({ method: 'PUT', url: '/acctapi/users/carol/quota', headers: { cookie: carol }, payload: { quota: null } })).statusCode, 403);
    const reset = await server.app.inject({ method: 'PUT', url: '/acctapi/users/carol/quota', headers: { cookie: admin }, payload: { quota: null } });
    assert.deepEqual(reset.json().quota, { bytes: 0, records: 0 });
    assert.equal((await server.app.inject({ method: 'PUT', url: '/acctapi/users/carol/quota', headers: { cookie: admin }, payload: { quota: { bytes: -1, records: 0 } } })).statusCode, 400);
  } finally {
    await server.close();
  }
});

test('an owner with no quota sees their use as it is after writes, updates, deletes and uploads, not as it was', async () => {
  const server = await startTestServer();
  try {
    await server.addUser('kim');
    const cookie = await server.signIn('kim');
    const token = await server.appToken('kim', APP);
    const api = (method: string, url: string, payload?: object) =>
      server.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
    const usage = async () => (await server.app.inject({ method: 'GET', url: '/acctapi/usage', headers: { cookie } })).json() as { records: number; bytes: number };
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await api('POST', `/ceps/write/${APP}`, { i })).json()._id);
    const first = await usage();
    assert.equal(first.records, 5);
    // Within the refresh interval: three more, one deleted, one grown.
    for (let i = 0; i < 3; i++) assert.equal((await api('POST', `/ceps/write/${APP}`, { i })).statusCode, 200);
    assert.equal((await api('DELETE', `/ceps/delete/${APP}/${ids[0]}`)).statusCode, 200);
    assert.equal((await api('PUT', `/ceps/update/${APP}/${ids[1]}`, { i: 'x'.repeat(5000) })).statusCode, 200);
    const now = await usage();
    assert.equal(now.records, 7);
    assert.ok(now.bytes > first.bytes + 4000, `${now.bytes} after ${first.bytes}`);
    const { body, contentType } = multipart([{ name: 'file', value: 'y'.repeat(20_000), filename: 'big.txt' }]);
    assert.equal((await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } })).statusCode, 200);
    const withFile = await usage();
    assert.ok(withFile.bytes >= now.bytes + 20_000, 'the file counts at once');
    assert.equal((await api('DELETE', `/feps/userfiles/${APP}/kim/big.txt`)).statusCode, 200);
    assert.ok((await usage()).bytes <= withFile.bytes - 20_000, 'and its deletion too');
  } finally {
    await server.close();
  }
});

test('an import that would cross a quota is refused whole (507): nothing of it lands', async () => {
  const server = await startTestServer();
  try {
    await server.addUser('alice');
    await server.addUser('erin');
    const records = server.services.stores.records('alice');
    // Two tables: the first alone would fit under the limit, the whole archive not.
    for (let i = 0; i < 10; i++) await records.put('alice', `${APP}.a`, { _id: `a${i}`, _date_created: 1, _date_modified: 1, i });
    for (let i = 0; i < 30; i++) await records.put('alice', `${APP}.b`, { _id: `b${i}`, _date_created: 1, _date_modified: 1, i });
    const exported = await server.app.inject({ method: 'GET', url: '/acctapi/export', headers: { cookie: await server.signIn('alice') } });
    assert.equal(exported.statusCode, 200);
    const importAs = async (user: string) => {
      const { body, contentType } = multipart([{ name: 'file', value: exported.rawPayload, filename: 'export.zip', contentType: 'application/zip' }]);
      return server.app.inject({ method: 'POST', url: '/acctapi/import', payload: body, headers: { 'content-type': contentType, cookie: await server.signIn(user) } });
    };

    await server.services.quota.setQuota('erin', { bytes: 0, records: 20 });
    const refused = await importAs('erin');
    assert.equal(refused.statusCode, 507, refused.body);
    assert.equal(refused.json().error, 'quota_exceeded');
    // What it would add, and who can make room.
    assert.match(refused.json().message, /^Storage quota exceeded: at most 20 records\. Nothing was written: this would add \d+ records and [\d.]+ (KB|MB); delete some data first, or ask the admin to raise the quota \(freehold user quota erin …\)$/);
    assert.deepEqual(await server.services.stores.records('erin').listTables('erin'), []);

    const bytes = await server.services.stores.records('alice').usage('alice');
    await server.services.quota.setQuota('erin', { bytes: Math.floor(bytes.bytes / 2), records: 0 });
    assert.equal((await importAs('erin')).statusCode, 507);
    assert.deepEqual(await server.services.stores.records('erin').listTables('erin'), []);

    // With room for it all, it lands; importing it again adds nothing, so it is admitted at the limit.
    await server.services.quota.setQuota('erin', { bytes: 0, records: 40 });
    assert.equal((await importAs('erin')).statusCode, 200);
    assert.equal((await importAs('erin')).statusCode, 200);
    const tables = Object.fromEntries((await server.services.stores.records('erin').listTables('erin')).map((t) => [t.table, t.count]));
    assert.equal(tables[`${APP}.a`], 10);
    assert.equal(tables[`${APP}.b`], 30);
  } finally {
    await server.close();
  }
});

forEachRecordBackend('quotas under concurrent writes', 'fhquota', (label, start) => {
  test(`${label}: concurrent writes never take an owner past a quota`, async () => {
    const server = await start();
    try {
      await server.addUser('carl');
      const token = await server.appToken('carl', APP);
      const headers = { authorization: `Bearer ${token}` };
      const write = (i: number) => {
        // CEPS writes, FEPS writes with an id, and FEPS upserts: every path that creates.
        const [method, url] = i % 3 === 0 ? ['POST', `/ceps/write/${APP}`] : i % 3 === 1 ? ['POST', `/feps/write/${APP}/w${i}`] : ['POST', `/feps/write/${APP}/u${i}?upsert=true`];
        return server.app.inject({ method: method as 'POST', url, headers, payload: { i, pad: 'x'.repeat(1000) } });
      };
      await server.services.quota.setQuota('carl', { bytes: 0, records: 10 });
      const codes = (await Promise.all(Array.from({ length: 60 }, (_, i) => write(i)))).map((r) => r.statusCode);
      assert.equal(codes.filter((c) => c === 200).length, 10, JSON.stringify(codes));
      assert.equal(codes.filter((c) => c === 507).length, 50);
      assert.equal((await server.services.stores.records('carl').usage('carl')).records, 10);

      // The same with bytes: room for about five more of these records.
      const used = (await server.services.quota.usage('carl')).bytes;
      await server.services.quota.setQuota('carl', { bytes: used + 5_500, records: 0 });
      const more = (await Promise.all(Array.from({ length: 40 }, (_, i) => write(100 + i)))).map((r) => r.statusCode);
      assert.ok(more.filter((c) => c === 200).length <= 5, JSON.stringify(more));
      // As the quota counts records (their JSON text); a store's own measure may differ a little (PostgreSQL's jsonb text).
      const after = (await server.services.quota.usage('carl')).bytes;
      assert.ok(after <= used + 5_500, `the bytes quota held: ${used} then ${after}, ${JSON.stringify(more)}`);

      // Files too: three uploads side by side, room for one of them.
      await server.services.quota.setQuota('carl', { bytes: (await server.services.quota.usage('carl')).bytes + 80_000, records: 0 });
      const upload = (n: number) => {
        const { body, contentType } = multipart([{ name: 'options', value: `{"fileName":"f${n}.bin"}` }, { name: 'file', value: Buffer.alloc(60_000, n), filename: `f${n}.bin` }]);
        return server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { ...headers, 'content-type': contentType } });
      };
      const uploads = (await Promise.all([1, 2, 3].map(upload))).map((r) => r.statusCode);
      assert.deepEqual([...uploads].sort(), [200, 507, 507], JSON.stringify(uploads));
    } finally {
      await server.close();
    }
  });
});

test('a usage re-read that is slow and overlaps writes never lets writes past the quota', async () => {
  const server = await startTestServer({ config: { quotaRecords: 10 } });
  try {
    await server.addUser('dora');
    const token = await server.appToken('dora', APP);
    // The real store, made slow to answer usage: each re-read sees the table as it was when asked.
    const host = server.services.stores.host;
    const usage = host.usage.bind(host);
    host.usage = async (owner: string) => {
      const u = await usage(owner);
      await new Promise((r) => setTimeout(r, Math.random() * 80));
      return u;
    };
    const codes = await Promise.all(Array.from({ length: 30 }, (_, i) => server.app.inject({
      method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { i },
    })));
    host.usage = usage;
    assert.equal((await usage('dora')).records, 10, JSON.stringify(codes.map((r) => r.statusCode)));
  } finally {
    await server.close();
  }
});
