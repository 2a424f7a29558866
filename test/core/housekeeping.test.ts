import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { housekeeping } from '../../src/core/housekeeping.js';
import { SYSTEM_OWNER, SystemTable } from '../../src/core/system-tables.js';

/**
 * `freehold serve`'s hourly housekeeping: tokens (app tokens, entry codes, app
 * passwords) and sign-ins whose time is up are removed from the store; live ones stay
 * and keep working.
 */

const APP = 'com.example.notes';
let server: TestServer;

before(async () => {
  server = await startTestServer({ config: { sessionTtlMs: 3 * 3600_000 } });
  await server.addUser('alice');
});
after(() => server.close());

const rows = async (table: string) => (await server.services.stores.host.query(SYSTEM_OWNER, table, { op: 'true' }, { sort: [], skip: 0, limit: 1000 })).length;

test('housekeeping removes expired tokens and sessions, and only those', async () => {
  const { tokens, sessions } = server.services;
  const { session } = await sessions.create('alice');
  const live = await tokens.issue({ kind: 'app', userId: 'alice', ownerId: 'alice', appName: APP, expiresAt: Date.now() + 3600_000 });
  await tokens.issue({ kind: 'app', userId: 'alice', ownerId: 'alice', appName: APP, expiresAt: Date.now() - 1 });
  await tokens.issueAppEntry(session.hash, 'alice', APP);
  await tokens.issueAppPassword('alice', APP, 3600_000, false);
  const stale = await sessions.create('alice');
  const tokensBefore = await rows(SystemTable.tokens);
  const sessionsBefore = await rows(SystemTable.sessions);

  // Now: only the token issued already expired is due.
  assert.deepEqual(await housekeeping(server.services), { tokens: 1, sessions: 0 });
  assert.equal(await rows(SystemTable.tokens), tokensBefore - 1);
  assert.equal((await tokens.check(live, 'app')).ok, true);

  // Two hours on: the entry code (60 s), the app password and the live token (1 h) are due;
  // the sign-ins (3 h) are not.
  const hour = 3600_000;
  assert.deepEqual(await housekeeping(server.services, Date.now() + 2 * hour), { tokens: 3, sessions: 0 });
  assert.equal(await rows(SystemTable.tokens), tokensBefore - 4);
  assert.equal(await rows(SystemTable.sessions), sessionsBefore);
  assert.ok(await sessions.byHash(stale.session.hash));
  // Four hours on, the sign-ins too.
  assert.deepEqual(await housekeeping(server.services, Date.now() + 4 * hour), { tokens: 0, sessions: 2 });
  assert.equal(await rows(SystemTable.sessions), sessionsBefore - 2);
});

test("the files of an install that never went live (a killed install or import) are swept once old; the live one's stay", async () => {
  const path = await import('node:path');
  const folder = path.resolve(import.meta.dirname, '..', 'fixtures', 'apps', APP);
  await server.services.apps.install('alice', { folder });
  const blobs = server.services.stores.blobs('alice');
  const keys = async () => { const out: string[] = []; for await (const { key } of blobs.list('alice/apps')) out.push(key); return out; };
  const live = await keys();
  assert.ok(live.length > 0);
  // What a process killed in the middle of writing a new version leaves.
  await blobs.put(`alice/apps/${APP}/0000deadinstall0000000000/index.html`, Buffer.from('half of v2'));
  await blobs.put(`alice/apps/${APP}/0000deadinstall0000000000/app.js`, Buffer.from('half of v2'));
  await blobs.put('alice/apps/com.example.gone/0000deadinstall0000000001/index.html', Buffer.from('never installed'));
  assert.equal(await server.services.apps.sweepOrphanedInstalls('alice'), 0, 'young: maybe still under way');
  assert.equal(await server.services.apps.sweepOrphanedInstalls('alice', 0), 3);
  assert.deepEqual((await keys()).sort(), live.sort(), 'the live install is untouched');
  const page = await server.services.apps.openFile('alice', APP, 'index.html').catch(() => null);
  assert.ok(page, 'and still serves');
});

test('housekeeping sweeps the temp files killed writes left in the file store', async () => {
  const { mkdirSync, writeFileSync, utimesSync, existsSync } = await import('node:fs');
  const path = await import('node:path');
  const root = server.config.blobs.slice('fs:'.length);
  const debris = path.join(root, 'blobs', 'alice', 'filedata', '.tmp-killed-upload');
  mkdirSync(path.dirname(debris), { recursive: true });
  writeFileSync(debris, 'half an upload');
  const old = Date.now() / 1000 - 7200;
  utimesSync(debris, old, old);
  await housekeeping(server.services);
  assert.equal(existsSync(debris), false);
});

test('an owner a killed move left read-only is skipped, and the pass goes on for everyone else', async () => {
  const { utimesSync, existsSync } = await import('node:fs');
  const path = await import('node:path');
  await server.addUser('bob');
  const root = server.config.blobs.slice('fs:'.length);
  const orphan = (owner: string) => `${owner}/apps/com.example.gone/0000deadinstall0000000002/index.html`;
  const old = Date.now() / 1000 - 7200;
  for (const owner of ['alice', 'bob']) {
    await server.services.stores.blobs(owner).put(orphan(owner), Buffer.from('never went live'));
    for (const tree of ['blobs', 'meta']) utimesSync(path.join(root, tree, orphan(owner)), old, old);
  }
  const before = server.services.stores.storageOf('alice');
  await server.services.stores.setOwnerStorage('alice', { ...before, state: 'migrating', target: { records: before.records, blobs: before.blobs } });
  try {
    await housekeeping(server.services);
    assert.equal(existsSync(path.join(root, 'blobs', orphan('alice'))), true, "a read-only owner's keys are left alone");
    assert.equal(existsSync(path.join(root, 'blobs', orphan('bob'))), false, "the next owner's are swept all the same");
  } finally {
    await server.services.stores.setOwnerStorage('alice', before);
  }
});
