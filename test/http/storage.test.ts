import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestServer, TEST_PASSWORD } from '../helpers/server.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3Server } from '../helpers/s3.js';
import { until } from '../helpers/until.js';

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

test("an owner's own store brings its own credentials, is on a public address, names no host file, and overlaps no store in use", async () => {
  const s3 = await startS3Server();
  const backups = s3.url('backups', { createBucket: true });
  const server = await startTestServer({ config: { ownerStorage: true, backupBlobs: backups } });
  try {
    await server.addUser('root1', TEST_PASSWORD, true);
    await server.addUser('erin');
    const erin = await server.signIn('erin');
    const refused = async (payload: object, message: RegExp) => {
      const res = await server.app.inject({ method: 'PUT', url: '/acctapi/storage', headers: { cookie: erin }, payload });
      assert.equal(res.statusCode, 403, `${JSON.stringify(payload)}: ${res.body}`);
      assert.match(res.json().message, message, JSON.stringify(payload));
    };
    const creds = `accessKeyId=${S3RVER_KEY}&secretAccessKey=${S3RVER_SECRET}`;

    // The server's own credentials (environment, ~/.pgpass) are not the owner's.
    await refused({ blobs: `s3://erin-files?endpoint=${encodeURIComponent(s3.endpoint)}` }, /needs its own credentials/);
    await refused({ records: 'postgres://db.example.com/erin' }, /needs its own user and password/);
    // Loopback, private and link-local addresses answer alike, open port or not: no probing the host's network.
    const notPublic = /is not a public address/;
    for (const endpoint of [s3.endpoint, 'http://127.0.0.1:1', 'http://10.1.2.3:9000', 'http://169.254.169.254', 'http://[::1]:9000', 'http://localhost:9000']) {
      await refused({ blobs: `s3://erin-files?endpoint=${encodeURIComponent(endpoint)}&${creds}` }, notPublic);
    }
    for (const host of ['127.0.0.1:1', '192.168.1.10', '[::ffff:127.0.0.1]', 'localhost']) await refused({ records: `postgres://u:p@${host}/erin` }, notPublic);
    // Parameters naming host files or other hosts, and a pool big enough to use up the host's connections.
    for (const param of ['sslrootcert=/etc/passwd', 'sslkey=/etc/shadow', 'host=/var/run/postgresql', 'hostaddr=127.0.0.1', 'options=-c%20x']) {
      await refused({ records: `postgres://u:p@db.example.com/erin?${param}` }, /is not available for your own store/);
    }
    await refused({ records: 'postgres://u:p@db.example.com/erin?pool=100' }, /pool may be at most 20/);
    assert.equal(server.services.stores.storageOf('erin').blobs, server.config.blobs, 'nothing was recorded');
  } finally {
    await server.close();
  }

  // Where the admin allows the host's own network, a store still may not overlap one in use.
  const lan = await startTestServer({ config: { ownerStorage: true, ownerStoragePrivate: true, backupBlobs: backups } });
  try {
    await lan.addUser('root1', TEST_PASSWORD, true);
    await lan.addUser('erin');
    await lan.addUser('bob');
    const admin = await lan.signIn('root1');
    const erin = await lan.signIn('erin');
    const put = (payload: object, cookie: string, url: string) => lan.app.inject({ method: 'PUT', url, headers: { cookie }, payload });
    const at = (bucketAndPrefix: string) => `${s3.url(bucketAndPrefix, { createBucket: true })}`;
    assert.equal((await put({ blobs: at('owners/bob') }, admin, '/acctapi/users/bob/storage')).statusCode, 200);
    for (const [blobs, what] of [[at('backups/backups/erin/x'), 'the backup store'], [at('backups'), 'the backup store'], [at('owners/bob/erin'), "another owner's store"], [at('owners'), "another owner's store"]] as const) {
      const res = await put({ blobs }, erin, '/acctapi/storage');
      assert.equal(res.statusCode, 403, `${blobs}: ${res.body}`);
      assert.equal(res.json().message, `That store overlaps ${what}: choose a bucket, prefix or folder of its own`);
    }
    // The admin is held to it too: a folder inside the host's file store.
    const inside = await put({ blobs: `fs:${path.join(lan.config.blobs.slice('fs:'.length), 'bob2')}` }, admin, '/acctapi/users/erin/storage');
    assert.equal(inside.statusCode, 403, inside.body);
    assert.match(inside.json().message, /overlaps the host's file store/);
    // The very root of the host's store is shared by design: every key there starts with its owner.
    assert.equal((await put({ blobs: lan.config.blobs }, admin, '/acctapi/users/erin/storage')).statusCode, 200);
    // A prefix of its own in the same bucket is fine, with the owner's own credentials.
    const own = await put({ blobs: at('owners/erin') }, erin, '/acctapi/storage');
    assert.equal(own.statusCode, 200, own.body);
    assert.equal(lan.services.stores.storageOf('erin').blobs, at('owners/erin'));
    // Marked as the owner's own choice, to which the host's rules apply whenever it is opened; bob's, the admin's, is not.
    assert.deepEqual(lan.services.stores.storageOf('erin').ownerChosen, [at('owners/erin')]);
    assert.equal(lan.services.stores.storageOf('bob').ownerChosen, undefined);
  } finally {
    await lan.close();
    await s3.close();
  }
});

test("a server starts although one owner's stores cannot be opened: that owner gets 503 until they open, everyone else works", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'freehold-shut-'));
  const config = { records: `sqlite:${path.join(dir, 'host.db')}`, blobs: `fs:${path.join(dir, 'files')}` };
  const bobStores = { records: `flatfile:${path.join(dir, 'bob', 'records')}`, blobs: `fs:${path.join(dir, 'bob', 'files')}` };
  try {
    const first = await startTestServer({ config });
    try {
      await first.addUser('root1', TEST_PASSWORD, true);
      await first.addUser('bob');
      await first.addUser('alice');
      const admin = await first.signIn('root1');
      const res = await first.app.inject({ method: 'PUT', url: '/acctapi/users/bob/storage', headers: { cookie: admin }, payload: bobStores });
      assert.equal(res.statusCode, 200, res.body);
    } finally {
      await first.close();
    }
    // Bob's folders are gone and a file stands where they were: his stores cannot be made again.
    rmSync(path.join(dir, 'bob'), { recursive: true });
    writeFileSync(path.join(dir, 'bob'), '');

    const lines: string[] = [];
    const server = await startTestServer({ config: { ...config, storagePollMs: 20, storageReopenMs: 20 }, logTo: { write: (line: string) => void lines.push(line) } });
    try {
      const logged = lines.map((l) => JSON.parse(l) as { owner?: string; msg: string; reason?: string }).find((l) => l.owner === 'bob');
      assert.match(logged?.msg ?? '', /cannot open this owner's stores; their requests answer 503/);
      const write = async (user: string) => server.app.inject({
        method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${await server.appToken(user, APP)}` }, payload: { n: 1 },
      });
      const shut = await write('bob');
      assert.equal(shut.statusCode, 503, shut.body);
      assert.deepEqual(shut.json(), { error: 'unavailable', message: "This account's storage cannot be reached just now; try again in a minute" });
      assert.equal((await write('alice')).statusCode, 200, 'everyone else works');

      rmSync(path.join(dir, 'bob'));
      await until("bob's stores open again", async () => (await write('bob')).statusCode === 200);
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
