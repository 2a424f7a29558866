import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startTestServer } from '../helpers/server.js';
import { multipart } from '../helpers/multipart.js';
import { abortMigration, migrateOwner, confirmMigration } from '../../src/core/migration/migrate.js';
import { compareDigests, digestOwner } from '../../src/core/migration/copy.js';
import { createServices } from '../../src/core/services.js';
import { createLogger } from '../../src/logger.js';

const APP = 'com.example.notes';
const root = path.resolve(import.meta.dirname, '..', '..');

test('an owner moves to other stores with everything; others follow; the old copy stays until confirmed', async () => {
  const server = await startTestServer({ config: { storagePollMs: 50 } });
  const dest = mkdtempSync(path.join(tmpdir(), 'freehold-dest-'));
  try {
    await server.addUser('alice');
    await server.addUser('bob');
    await server.services.apps.install('alice', { folder: path.join(root, 'test/fixtures/apps/com.example.notes') });
    const token = await server.appToken('alice', APP);
    const bobToken = await server.appToken('bob', APP);
    const call = (method: string, url: string, payload?: object, t = token) =>
      server.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${t}` }, ...(payload ? { payload } : {}) });
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push((await call('POST', `/ceps/write/${APP}`, { i, text: `note ${i} ✓` })).json()._id);
    await call('POST', `/ceps/write/${APP}.tags`, { name: 'x', nested: { deep: [1, 2] } });
    await call('POST', `/ceps/write/${APP}`, { bob: true }, bobToken);
    const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"a.txt"}' }, { name: 'file', value: 'hello file', filename: 'a.txt' }]);
    assert.equal((await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } })).statusCode, 200);

    // A second process on the same host store, which must follow the move.
    const other = await createServices({ ...server.config }, createLogger('silent'));
    try {
      const target = { records: `sqlite:${path.join(dest, 'alice.db')}`, blobs: `fs:${path.join(dest, 'files')}` };
      const before = await digestOwner(server.services.stores.records('alice'), server.services.stores.blobs('alice'), 'alice');
      const result = await migrateOwner(server.services.stores, 'alice', target, { propagationMs: 150 });
      assert.equal(result.records, before.tables[APP]!.count + before.tables[`${APP}.tags`]!.count + before.tables[`${APP}.files`]!.count + before.tables['system.apps']!.count);
      assert.deepEqual(server.services.stores.storageOf('alice').records, target.records);

      // Served from the new stores: reads, the app page's files, user files; new writes land there only.
      assert.equal((await call('GET', `/ceps/read/${APP}/${ids[7]}`)).json().text, 'note 7 ✓');
      assert.equal((await call('GET', `/feps/userfiles/${APP}/alice/a.txt`)).body, 'hello file');
      const w = (await call('POST', `/ceps/write/${APP}`, { after: 'move' })).json();
      const dst = await server.services.stores.openRecords(target.records);
      assert.ok(await dst.get('alice', APP, w._id));
      assert.equal(await server.services.stores.host.get('alice', APP, w._id), null);
      // Bob never moved.
      assert.equal((await call('GET', `/ceps/query/${APP}`, undefined, bobToken)).json().length, 1);

      await other.stores.poll();
      assert.equal(other.stores.storageOf('alice').records, target.records);
      assert.ok(await other.stores.records('alice').get('alice', APP, w._id), 'the other process reads the new store');

      // The old copy is still there until the owner confirms.
      assert.equal((await server.services.stores.host.listTables('alice')).length > 0, true);
      const confirmed = await confirmMigration(server.services.stores, 'alice');
      assert.ok(confirmed.tables > 0 && confirmed.files > 0);
      assert.deepEqual(await server.services.stores.host.listTables('alice'), []);
      assert.equal((await call('GET', `/ceps/read/${APP}/${ids[7]}`)).statusCode, 200);
    } finally {
      await other.close();
    }
  } finally {
    await server.close();
    rmSync(dest, { recursive: true, force: true });
  }
});

test('while an owner is being moved, writes answer 503 and reads still work', async () => {
  const server = await startTestServer();
  try {
    await server.addUser('carol');
    const token = await server.appToken('carol', APP);
    const id = (await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { a: 1 } })).json()._id;
    const current = server.services.stores.storageOf('carol');
    await server.services.stores.setOwnerStorage('carol', { ...current, state: 'migrating', target: current });
    const w = await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { a: 2 } });
    assert.equal(w.statusCode, 503);
    assert.equal(w.json().error, 'unavailable');
    assert.equal(w.headers['retry-after'], '30');
    assert.equal((await server.app.inject({ method: 'DELETE', url: `/ceps/delete/${APP}/${id}`, headers: { authorization: `Bearer ${token}` } })).statusCode, 503);
    assert.equal((await server.app.inject({ method: 'GET', url: `/ceps/read/${APP}/${id}`, headers: { authorization: `Bearer ${token}` } })).json().a, 1);
  } finally {
    await server.close();
  }
});

test('a store under another address is the same store: a move there is refused, and --confirm never deletes what is in use', async () => {
  const server = await startTestServer();
  const dest = mkdtempSync(path.join(tmpdir(), 'freehold-dest-'));
  try {
    await server.addUser('erin');
    const token = await server.appToken('erin', APP);
    for (let i = 0; i < 5; i++) await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { i } });
    const { body, contentType } = multipart([{ name: 'options', value: '{"fileName":"a.txt"}' }, { name: 'file', value: 'kept', filename: 'a.txt' }]);
    assert.equal((await server.app.inject({ method: 'PUT', url: `/feps/upload/${APP}`, payload: body, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } })).statusCode, 200);
    const stores = server.services.stores;
    const current = stores.storageOf('erin');
    const before = await digestOwner(stores.records('erin'), stores.blobs('erin'), 'erin');
    // The same SQLite file and folder, spelled with `./` in the middle.
    const respell = (url: string) => url.replace(server.dataDir, `${server.dataDir}/.`);
    const same = { records: respell(current.records), blobs: respell(current.blobs) };
    assert.notEqual(same.records, current.records);
    await assert.rejects(migrateOwner(stores, 'erin', same, { propagationMs: 10 }), /already uses these stores \(under other addresses\)/);
    assert.deepEqual(stores.storageOf('erin'), current, 'nothing recorded');

    // Records "moving" to themselves under another address, files really moving: only the files move.
    const filesDir = `fs:${path.join(dest, 'files')}`;
    const r = await migrateOwner(stores, 'erin', { records: same.records, blobs: filesDir }, { propagationMs: 10 });
    assert.deepEqual(r.to, { records: current.records, blobs: filesDir });
    const confirmed = await confirmMigration(stores, 'erin');
    assert.equal(confirmed.tables, 0, 'no table dropped from the store in use');
    assert.ok(confirmed.files > 0);
    assert.deepEqual(compareDigests(before, await digestOwner(stores.records('erin'), stores.blobs('erin'), 'erin')), []);

    // A state that names the store in use as "previous" (as an older version could record): nothing is deleted.
    const now = stores.storageOf('erin');
    await stores.setOwnerStorage('erin', { ...now, previous: { records: respell(now.records), blobs: `fs:${path.join(dest, '.', 'files')}` } });
    await assert.rejects(confirmMigration(stores, 'erin'), /nothing was deleted/);
    assert.deepEqual(compareDigests(before, await digestOwner(stores.records('erin'), stores.blobs('erin'), 'erin')), []);
  } finally {
    await server.close();
    rmSync(dest, { recursive: true, force: true });
  }
});

test("a move into a store that holds the owner's data is refused, and nothing changes", async () => {
  const server = await startTestServer();
  const dest = mkdtempSync(path.join(tmpdir(), 'freehold-dest-'));
  try {
    await server.addUser('fay');
    const token = await server.appToken('fay', APP);
    await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { mine: true } });
    const target = { records: `sqlite:${path.join(dest, 'other.db')}`, blobs: `fs:${path.join(dest, 'files')}` };
    // Another server's fay already lives there.
    const theirs = await server.services.stores.openRecords(target.records);
    await theirs.put('fay', APP, { _id: 'someone-elses', _date_created: 1, _date_modified: 1, theirs: true });
    const current = server.services.stores.storageOf('fay');
    await assert.rejects(migrateOwner(server.services.stores, 'fay', target, { propagationMs: 10 }), /already holds data of fay/);
    assert.deepEqual(server.services.stores.storageOf('fay'), current);
    assert.ok(await theirs.get('fay', APP, 'someone-elses'), 'their record is untouched');
    assert.deepEqual((await theirs.listTables('fay')).map((t) => t.table), [APP]);
    // Nor into a folder inside the host's file store, or around the backup store: keys there are laid out by owner.
    const inside = { records: current.records, blobs: `fs:${path.join(server.config.blobs.slice('fs:'.length), 'fay-files')}` };
    await assert.rejects(migrateOwner(server.services.stores, 'fay', inside, { propagationMs: 10 }), /overlaps the host's file store/);
    const around = { records: current.records, blobs: `fs:${dest}` };
    await assert.rejects(migrateOwner(server.services.stores, 'fay', around, { propagationMs: 10, backupBlobs: `fs:${path.join(dest, 'backups')}` }), /overlaps the backup store/);
    assert.deepEqual(server.services.stores.storageOf('fay'), current);
  } finally {
    await server.close();
    rmSync(dest, { recursive: true, force: true });
  }
});

test('one move per owner at a time; --abort deletes what a move copied; addresses are never shown with their secrets', async () => {
  const server = await startTestServer();
  const dest = mkdtempSync(path.join(tmpdir(), 'freehold-dest-'));
  try {
    await server.addUser('gus');
    const token = await server.appToken('gus', APP);
    for (let i = 0; i < 20; i++) await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { i } });
    const stores = server.services.stores;
    const before = await digestOwner(stores.records('gus'), stores.blobs('gus'), 'gus');
    const target = { records: `sqlite:${path.join(dest, 'gus.db')}`, blobs: `fs:${path.join(dest, 'files')}` };
    // Two runs at once: the second is refused while the first holds the owner's lease.
    const first = migrateOwner(stores, 'gus', target, { propagationMs: 300 });
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(migrateOwner(stores, 'gus', target, { propagationMs: 10, leaseWaitMs: 100 }), /Another move of gus is running/);
    await assert.rejects(abortMigration(stores, 'gus', 100), /Another move of gus is running/);
    await first;
    assert.equal(stores.storageOf('gus').records, target.records);
    assert.deepEqual(compareDigests(before, await digestOwner(stores.records('gus'), stores.blobs('gus'), 'gus')), []);

    // A second move while the first one's old copy is kept is refused: nothing would delete that copy afterwards.
    const next = { records: `sqlite:${path.join(dest, 'next.db')}`, blobs: `fs:${path.join(dest, 'next-files')}` };
    await assert.rejects(migrateOwner(stores, 'gus', next, { propagationMs: 10 }), /copy left by the last move .* is still kept: delete it with migrate --confirm/);
    assert.equal(stores.storageOf('gus').target, undefined, 'the refused move left no trace');
    await confirmMigration(stores, 'gus');

    // A move whose first copy was cut short: --abort deletes the partial copy, and the target can be used again.
    const partial = await stores.openRecords(next.records);
    await partial.put('gus', APP, { _id: 'copied-before-the-crash', _date_created: 1, _date_modified: 1 });
    await stores.setOwnerStorage('gus', { ...stores.storageOf('gus'), target: next });
    const removed = await abortMigration(stores, 'gus');
    assert.deepEqual(removed, { tables: 1, files: 0 });
    assert.deepEqual(await partial.listTables('gus'), []);
    assert.equal(stores.storageOf('gus').target, undefined);
    assert.equal((await migrateOwner(stores, 'gus', next, { propagationMs: 10 })).records, before.tables[APP]!.count);

    // A pending move to an address with a password is named without it.
    await stores.setOwnerStorage('gus', { ...stores.storageOf('gus'), target: { records: 'postgres://fh:sekrit-pw@127.0.0.1:1/db', blobs: next.blobs } });
    await assert.rejects(migrateOwner(stores, 'gus', target, { propagationMs: 10 }), (err: Error) => {
      assert.match(err.message, /under way/);
      assert.doesNotMatch(err.message, /sekrit-pw/);
      return true;
    });
  } finally {
    await server.close();
    rmSync(dest, { recursive: true, force: true });
  }
});

test('a run started in another process after a move finished sees the move, and changes nothing', async () => {
  const server = await startTestServer({ config: { storagePollMs: 3_600_000 } });
  const dest = mkdtempSync(path.join(tmpdir(), 'freehold-dest-'));
  // Another process, which has not looked at the host store since before the move.
  const other = await createServices({ ...server.config }, createLogger('silent'));
  try {
    await server.addUser('hana');
    const token = await server.appToken('hana', APP);
    const write = async (i: number) => (await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${token}` }, payload: { i } })).json()._id as string;
    for (let i = 0; i < 5; i++) await write(i);
    const target = { records: `sqlite:${path.join(dest, 'hana.db')}`, blobs: `fs:${path.join(dest, 'files')}` };
    await other.stores.poll();
    await migrateOwner(server.services.stores, 'hana', target, { propagationMs: 10 });
    const after = await write(99);
    await assert.rejects(migrateOwner(other.stores, 'hana', target, { propagationMs: 10 }), /already uses these stores/);
    const moved = await server.services.stores.openRecords(target.records);
    assert.ok(await moved.get('hana', APP, after), 'the write made after the move is still there');
  } finally {
    await other.close();
    await server.close();
    rmSync(dest, { recursive: true, force: true });
  }
});

test('a move killed with SIGKILL mid-way finishes on rerun with nothing lost or duplicated', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'freehold-mig-'));
  const env = { ...process.env, FREEHOLD_DATA: dataDir, FREEHOLD_CONFIG: '', FREEHOLD_LOG_LEVEL: 'silent', FREEHOLD_STORAGE_POLL: '100' };
  const target = { records: `sqlite:${path.join(dataDir, 'moved.db')}`, blobs: `fs:${path.join(dataDir, 'moved-files')}` };
  try {
    const { loadConfig } = await import('../../src/config.js');
    const seedServices = await createServices(loadConfig(env), createLogger('silent'));
    await seedServices.accounts.create('dave', 'a long passphrase', false);
    const store = seedServices.stores.records('dave');
    const now = Date.now();
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 20000; i += 2000) {
        await store.batch('dave', Array.from({ length: 2000 }, (_, j) => ({
          kind: 'put' as const, table: `${APP}.t${t}`,
          record: { _id: `r${String(i + j).padStart(6, '0')}`, _date_created: now, _date_modified: now + i + j, n: i + j, s: 'x'.repeat(200) },
        })));
      }
    }
    for (let i = 0; i < 20; i++) await seedServices.stores.blobs('dave').put(`dave/files/${APP}/f${i}.bin`, Buffer.alloc(50_000, i));
    const expected = await digestOwner(store, seedServices.stores.blobs('dave'), 'dave');
    await seedServices.close();

    const cli = (args: string[]) => spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], { cwd: root, env });
    const args = ['migrate', '--user', 'dave', '--records', target.records, '--blobs', target.blobs];
    // Kill the first run as soon as it reports copying progress.
    const first = cli(args);
    await new Promise<void>((resolve) => {
      createInterface({ input: first.stderr }).on('line', (line) => {
        if (/^records/.test(line)) first.kill('SIGKILL');
      });
      first.once('exit', () => resolve());
    });
    assert.equal(first.signalCode, 'SIGKILL', 'the first run was killed mid-way');

    const second = cli(args);
    let out = '';
    let err = '';
    second.stdout.on('data', (d: Buffer) => { out += d; });
    second.stderr.on('data', (d: Buffer) => { err += d; });
    const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
    assert.equal(code, 0, out);
    assert.match(out, /verified/);
    // The killed run's lease is still live when the rerun starts: it says what it waits for.
    assert.match(err, /^waiting for an earlier run to let go: 0\/1$/m);

    const after = await createServices(loadConfig(env), createLogger('silent'));
    try {
      assert.equal(after.stores.storageOf('dave').records, target.records);
      const moved = await digestOwner(after.stores.records('dave'), after.stores.blobs('dave'), 'dave');
      assert.deepEqual(compareDigests(expected, moved), []);
      assert.equal(moved.tables[`${APP}.t0`]!.count, 20000);
    } finally {
      await after.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
