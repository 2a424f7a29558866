import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lookup as systemLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicAddressesOnly } from '../../src/core/storage-policy.js';
import { S3BlobStore } from '../../src/storage/s3/blob-store.js';
import { parseS3Url } from '../../src/storage/s3/url.js';
import { PostgresRecordStore } from '../../src/storage/postgres/record-store.js';
import { StoreRegistry, type RegistryOptions } from '../../src/storage/registry.js';
import { openBlobStore, openRecordStore } from '../../src/storage/urls.js';
import { startS3Server, type TestS3Server } from '../helpers/s3.js';
import { postgresSuite } from '../helpers/postgres.js';
import { until } from '../helpers/until.js';
import { FreeholdError } from '../../src/core/errors.js';

/**
 * Stores an owner chose resolve names at every connection through the host's rules
 * (storage-policy.ts publicAddressesOnly): a name that answered a public address when
 * the owner chose it cannot lead the server to a private one later. Here the stores'
 * servers are on loopback under the name `localhost`, which the system resolver
 * answers with loopback addresses: refused through the rule, reached without it.
 */

/** The system resolver, noting each name it is asked (to see that a store's connections go through it). */
function noting(asked: string[]): LookupFunction {
  return (hostname, options, callback) => {
    asked.push(hostname);
    // The overloads of dns.lookup cannot be matched by one call with net's options and callback.
    (systemLookup as (h: string, o: object, cb: typeof callback) => void)(hostname, options, callback);
  };
}

const notPublic = /"localhost" is not a public address this server can reach/;

let s3: TestS3Server;
before(async () => {
  s3 = await startS3Server();
});
after(() => s3.close());

/** s3rver's URL for `bucket`, its endpoint named `localhost` instead of 127.0.0.1. */
const byName = (bucket: string) => s3.url(bucket).replace(encodeURIComponent('127.0.0.1'), 'localhost');

test('S3: with the public-only rule a store whose endpoint name answers loopback is refused at its first connection; through a plain lookup it works', async () => {
  assert.match(byName('x'), /localhost/);
  const refused = new S3BlobStore(parseS3Url(byName('guarded')), { connect: { lookup: publicAddressesOnly() } });
  await assert.rejects(refused.init(), notPublic);
  await refused.close();
  assert.equal(existsSync(join(s3.directory, 'guarded')), false, 'no bucket was made through the refused store');

  const asked: string[] = [];
  const store = openBlobStore(byName('plain'), { lookup: noting(asked) });
  await store.init();
  await store.put('o/k', Buffer.from('hello'));
  assert.equal((await store.head('o/k'))?.size, 5);
  await store.close();
  assert.ok(asked.includes('localhost'), `the store's connections resolved through the given lookup: ${JSON.stringify(asked)}`);
});

postgresSuite('PostgreSQL connections through a lookup', 'fh_guard_', (scratch) => {
  /** A fresh schema's store URL, the server named `localhost`. */
  const byHostName = () => {
    const u = new URL(scratch.schemaUrl());
    u.hostname = 'localhost';
    return { url: u.toString(), schema: u.searchParams.get('schema')! };
  };

  test('PostgreSQL: refused under the public-only rule before anything is made; every connection of a store resolves through its lookup', async () => {
    const refused = byHostName();
    const guarded = new PostgresRecordStore(refused.url, { lookup: publicAddressesOnly() });
    await assert.rejects(guarded.init(), notPublic);
    await guarded.close();
    const made = await scratch.admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [refused.schema]);
    assert.equal(made.rowCount, 0, 'the refused store created no schema');

    const asked: string[] = [];
    const { url } = byHostName();
    const store = openRecordStore(url, { lookup: noting(asked) });
    await store.init();
    try {
      // The pool, the shared read and query connections and the change listener each connect once.
      await store.put('o', 't', { _id: 'a', _date_created: 1, _date_modified: 1, v: 1 });
      assert.equal((await store.get('o', 't', 'a'))?.v, 1);
      assert.equal((await store.query('o', 't', { op: 'true' }, { sort: [], skip: 0, limit: 10 })).length, 1);
      const opened = asked.length;
      assert.ok(opened >= 4, `four kinds of connection went through the lookup (${opened})`);
      assert.ok(asked.every((h) => h === 'localhost'));
    } finally {
      await store.close();
    }
  });

  test('the registry opens the stores an owner chose under the host rules (checked again, and resolved at each connection), and the admin\'s as they are', async () => {
    const host = openRecordStore('sqlite::memory:');
    const hostBlobs = openBlobStore(s3.url('host-files'));
    await host.init();
    await hostBlobs.init();
    // A check that lets everything through, so that what refuses below is the connections' lookup.
    const checked: string[] = [];
    const rules = { check: async (url: string) => void checked.push(url), connect: { lookup: publicAddressesOnly() } };
    const stores = new StoreRegistry(host, hostBlobs, { hostRecordsUrl: 'sqlite::memory:', hostBlobsUrl: s3.url('host-files'), pollMs: 0, ownerChosen: rules });
    await stores.start();
    try {
      const { url: owned } = byHostName();
      await assert.rejects(stores.setOwnerStorage('erin', { records: owned, blobs: s3.url('host-files'), state: 'active', ownerChosen: [owned] }), notPublic);
      assert.deepEqual(checked, [owned], 'only the store the owner chose was checked');
      assert.equal(stores.storageOf('erin').records, 'sqlite::memory:', 'nothing was recorded for erin');
      // The same kind of address chosen by the admin is the admin's business.
      const { url: adminChosen } = byHostName();
      await stores.setOwnerStorage('bob', { records: adminChosen, blobs: s3.url('host-files'), state: 'active' });
      assert.equal(stores.storageOf('bob').records, adminChosen);
      assert.equal(stores.storageOf('bob').ownerChosen, undefined);
      await stores.records('bob').put('bob', 't', { _id: 'a', _date_created: 1, _date_modified: 1 });
      assert.equal((await stores.records('bob').get('bob', 't', 'a'))?._id, 'a');
      assert.deepEqual(checked, [owned]);
    } finally {
      await stores.close();
    }
  });
});

test("an owner's choice stays marked while its store is in use; a registry started later opens what it can, refuses the rest with 503 and opens it once it can", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fh-chosen-'));
  const hostUrl = `sqlite:${join(dir, 'host.db')}`;
  const registry = async (ownerChosen?: RegistryOptions['ownerChosen'], more: Partial<RegistryOptions> = {}) => {
    const host = openRecordStore(hostUrl);
    const hostBlobs = openBlobStore(`fs:${join(dir, 'host-files')}`);
    await host.init();
    await hostBlobs.init();
    const made = new StoreRegistry(host, hostBlobs, { hostRecordsUrl: hostUrl, hostBlobsUrl: `fs:${join(dir, 'host-files')}`, pollMs: 0, ...(ownerChosen ? { ownerChosen } : {}), ...more });
    await made.start().catch(async (error: unknown) => {
      await made.close();
      throw error;
    });
    return made;
  };
  const stores = await registry();
  const host = stores.host;
  try {
    const mine = `sqlite:${join(dir, 'mine.db')}`;
    const target = `sqlite:${join(dir, 'target.db')}`;
    const blobs = `fs:${join(dir, 'host-files')}`;
    await stores.setOwnerStorage('carol', { records: mine, blobs, state: 'active', ownerChosen: [mine] });
    await stores.setOwnerStorage('carol', { records: mine, blobs, state: 'migrating', target: { records: target, blobs } });
    assert.deepEqual(stores.storageOf('carol').ownerChosen, [mine], 'kept while the store is in use');
    await stores.setOwnerStorage('carol', { records: target, blobs, state: 'active', previous: { records: mine, blobs } });
    assert.equal(stores.storageOf('carol').ownerChosen, undefined, 'the admin\'s target is not the owner\'s choice');
    // The mark is in the host's record, so every process (and the next start) sees it.
    await stores.setOwnerStorage('dan', { records: mine, blobs, state: 'active', ownerChosen: [mine, 'fs:/elsewhere'] });
    assert.deepEqual((await host.get('_system', 'system.storage', 'dan'))?.ownerChosen, [mine], 'only stores in use are marked');
    await stores.close();
    // A server started later under stricter rules checks them again: dan's stores stay shut (503) while the
    // start, and everyone else, go on; they are tried again later and open once the rules let them.
    // Erin's stores (the admin's) sit where a file blocks their folders: they cannot open until it goes.
    const blocked = join(dir, 'blocked');
    writeFileSync(blocked, '');
    const erin = { records: `flatfile:${join(blocked, 'records')}`, blobs: `fs:${join(blocked, 'files')}`, state: 'active' as const };
    const seeded = await registry();
    await seeded.host.put('_system', 'system.storage', { _id: 'erin', _date_created: 1, _date_modified: 1, ...erin });
    await seeded.close();
    let strictNow = true;
    const strict = { check: async (url: string) => { if (strictNow && url === mine) throw new Error('not allowed any more'); }, connect: {} };
    const told: string[] = [];
    const later = await registry(strict, { reopenMs: 20, onUnreachable: (owner, e) => told.push(`${owner}: ${(e as Error).message}`) });
    try {
      assert.deepEqual(told.map((t) => t.replace(/:.*/s, '')).sort(), ['dan', 'erin']);
      assert.ok(told.includes('dan: not allowed any more'), told.join('; '));
      const shut = (e: unknown) => e instanceof FreeholdError && e.code === 'unavailable' && /storage cannot be reached/.test(e.message);
      await assert.rejects(later.records('dan').get('dan', 't', 'a'), shut);
      await assert.rejects(later.records('erin').put('erin', 't', { _id: 'a', _date_created: 1, _date_modified: 1 }), shut);
      await assert.rejects(later.blobs('erin').put('erin/x', Buffer.from('x')), shut);
      await assert.rejects((async () => { for await (const _ of later.blobs('erin').list('erin/')) break; })(), shut);
      assert.equal(later.storageOf('dan').records, mine, 'the setting itself is known (overlap checks see it)');
      assert.deepEqual(await later.records('carol').listTables('carol'), [], 'everyone else works');
      const opens = (owner: string) => async () => {
        try {
          await later.records(owner).listTables(owner);
          for await (const _ of later.blobs(owner).list(`${owner}/`)) break;
          return true;
        } catch {
          return false;
        }
      };
      strictNow = false;
      await until("dan's stores open once the rules allow them", opens('dan'));
      rmSync(blocked);
      await until("erin's stores open once their folders can be made", opens('erin'));
      await later.records('erin').put('erin', 't', { _id: 'a', _date_created: 1, _date_modified: 1 });
      assert.equal((await later.records('erin').get('erin', 't', 'a'))?._id, 'a');
    } finally {
      await later.close();
    }
  } finally {
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
