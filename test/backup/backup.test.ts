import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startTestServer } from '../helpers/server.js';
import { startS3Server } from '../helpers/s3.js';
import { createServices } from '../../src/core/services.js';
import { createLogger } from '../../src/logger.js';
import { removeUser } from '../../src/core/accounts/remove-user.js';
import { S3BlobStore } from '../../src/storage/s3/blob-store.js';

const APP = 'com.example.notes';
const root = path.resolve(import.meta.dirname, '..', '..');

test('backups go to an S3 bucket, keep N generations, and restore brings data back', async () => {
  const s3 = await startS3Server();
  const server = await startTestServer({ config: { backupBlobs: s3.url('backups', { createBucket: true }), backupKeep: 2, backupIntervalHours: 24 } });
  try {
    const backups = server.services.backups!;
    assert.ok(backups, 'a backup store is configured');
    await server.addUser('alice');
    await server.services.apps.install('alice', { folder: path.join(root, 'test/fixtures/apps/com.example.notes') });
    const token = await server.appToken('alice', APP);
    const call = (method: string, url: string, payload?: object) =>
      server.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await call('POST', `/ceps/write/${APP}`, { i })).json()._id);

    const g1 = await backups.run('alice');
    await new Promise((r) => setTimeout(r, 5));
    await backups.run('alice');
    await new Promise((r) => setTimeout(r, 5));
    const g3 = await backups.run('alice');
    const list = await backups.list('alice');
    assert.equal(list.length, 2, 'only the newest two are kept');
    assert.equal(list[0]!.name, g3.name);
    assert.ok(!list.some((g) => g.name === g1.name));

    // Lose some data, then bring the newest backup back.
    for (const id of ids.slice(0, 5)) assert.equal((await call('DELETE', `/ceps/delete/${APP}/${id}`)).statusCode, 200);
    await call('PUT', `/ceps/update/${APP}/${ids[10]}`, { i: 'changed' });
    const restored = await backups.restore('alice');
    assert.equal(restored.generation, g3.name);
    for (const id of ids.slice(0, 5)) assert.equal((await call('GET', `/ceps/read/${APP}/${id}`)).statusCode, 200);
    assert.equal((await call('GET', `/ceps/read/${APP}/${ids[10]}`)).json().i, 10);
    assert.equal((await call('GET', `/ceps/query/${APP}`)).json().length, 20);

    await assert.rejects(backups.restore('alice', '2000-01-01T00-00-00-000Z'), /No backup/);
    // Nobody's backup: refused, and nothing stored under that name.
    await assert.rejects(backups.run('nobody'), /No user nobody/);
    assert.deepEqual(await backups.list('nobody'), []);
    // Progress is reported as for an export and an import.
    const phases: string[] = [];
    const seen = (p: { phase: string }) => { if (phases.at(-1) !== p.phase) phases.push(p.phase); };
    await backups.run('alice', seen);
    await backups.restore('alice', undefined, seen);
    assert.deepEqual(phases, ['export', 'verify', 'write']);
  } finally {
    await server.close();
    await s3.close();
  }
});

test('scheduled backups: one process takes each owner per interval', async () => {
  const s3 = await startS3Server();
  const server = await startTestServer({ config: { backupBlobs: s3.url('sched', { createBucket: true }), backupKeep: 3, backupIntervalHours: 1 } });
  const other = await createServices({ ...server.config }, createLogger('silent'));
  try {
    await server.addUser('bob');
    await server.addUser('carol');
    const now = Date.now();
    const [a, b] = await Promise.all([server.services.backups!.runDue(now), other.backups!.runDue(now)]);
    assert.deepEqual([...a, ...b].sort(), ['bob', 'carol'], 'each owner backed up exactly once');
    assert.deepEqual(await server.services.backups!.runDue(now + 1000), [], 'not due again within the interval');
    assert.equal((await server.services.backups!.list('bob')).length, 1);
  } finally {
    await other.close();
    await server.close();
    await s3.close();
  }
});

test("a removed owner's backups are kept, and are not those of a new account of the same name", async () => {
  const s3 = await startS3Server();
  const url = s3.url('kept', { createBucket: true });
  const server = await startTestServer({ config: { backupBlobs: url, backupKeep: 2, backupIntervalHours: 24 } });
  const store = S3BlobStore.fromUrl(url);
  try {
    const backups = server.services.backups!;
    const write = async (owner: string, note: string) => {
      const token = await server.appToken(owner, APP);
      const res = await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { note } });
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as { _id: string })._id;
    };
    await server.addUser('dave');
    await server.services.apps.install('dave', { folder: path.join(root, 'test/fixtures/apps/com.example.notes') });
    const oldId = await write('dave', 'the first dave');
    const old = await backups.run('dave');
    await removeUser(server.services, 'dave');
    await new Promise((r) => setTimeout(r, 5));

    // Another person is given the name.
    await server.addUser('dave');
    await server.services.apps.install('dave', { folder: path.join(root, 'test/fixtures/apps/com.example.notes') });
    await write('dave', 'the second dave');
    assert.deepEqual((await backups.list('dave')).map((g) => [g.name, g.earlierAccount]), [[old.name, true]]);
    await assert.rejects(backups.restore('dave'), /No backups of dave \(1 of an earlier account named dave are kept/);
    await assert.rejects(backups.restore('dave', old.name), (e: Error & { code?: string }) => e.code === 'conflict' && /--earlier-account/.test(e.message));
    const token = await server.appToken('dave', APP);
    assert.equal((await server.app.inject({ url: `/ceps/read/${APP}/${oldId}`, headers: { authorization: `Bearer ${token}` } })).statusCode, 404, 'nothing restored');

    // Its own backups are pruned to the newest two; the earlier account's is kept.
    const own: string[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 5));
      own.push((await backups.run('dave')).name);
    }
    assert.deepEqual((await backups.list('dave')).map((g) => g.name), [own[2], own[1], old.name]);
    assert.equal((await backups.restore('dave')).generation, own[2]);

    // The admin, knowing it is the same person after all, brings the earlier one back by name.
    assert.equal((await backups.restore('dave', old.name, undefined, { earlierAccount: true })).generation, old.name);
    assert.equal((await server.app.inject({ url: `/ceps/read/${APP}/${oldId}`, headers: { authorization: `Bearer ${token}` } })).json().note, 'the first dave');

    // A key below an owner's backups (an owner's own store sharing the bucket) is no backup.
    await store.init();
    await store.put(`backups/dave/x/dave/${APP}/2099-01-01T00-00-00-000Z.zip`, Buffer.from('planted'));
    await store.put('backups/dave/2098-01-01T00-00-00-000Z.zip.part', Buffer.from('planted'));
    assert.deepEqual((await backups.list('dave')).map((g) => g.name), [own[2], own[1], old.name]);
  } finally {
    await store.close();
    await server.close();
    await s3.close();
  }
});

test('a backup named for an impossible time is none; one dated ahead does not stop the schedule; an account made again is backed up in the same slot', async () => {
  const s3 = await startS3Server();
  const url = s3.url('edges', { createBucket: true });
  const server = await startTestServer({ config: { backupBlobs: url, backupKeep: 3, backupIntervalHours: 1 } });
  const store = S3BlobStore.fromUrl(url);
  try {
    const backups = server.services.backups!;
    await store.init();
    await server.addUser('ali');
    await store.put('backups/ali/2099-13-45T99-99-99-999Z.zip', Buffer.from('not a time'));
    assert.deepEqual(await backups.list('ali'), [], 'no clock makes month 13');
    // Taken while the clock ran ahead: listed, but the schedule still backs ali up now.
    await store.put('backups/ali/2099-01-01T00-00-00-000Z.zip', Buffer.from('ahead'));
    const now = Date.now();
    assert.deepEqual(await backups.runDue(now), ['ali']);
    assert.equal((await backups.list('ali')).length, 2);

    // Removed and made again within the same slot: the new account is backed up too.
    await removeUser(server.services, 'ali');
    await new Promise((r) => setTimeout(r, 5));
    await server.addUser('ali');
    assert.deepEqual(await backups.runDue(now + 10), ['ali']);
    assert.equal((await backups.list('ali')).filter((g) => !g.earlierAccount && g.takenAt <= Date.now()).length, 1);
  } finally {
    await store.close();
    await server.close();
    await s3.close();
  }
});
