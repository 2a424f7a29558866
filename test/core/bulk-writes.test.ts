import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestServer } from '../helpers/server.js';
import { forEachRecordBackend } from '../helpers/backends.js';
import { MAX_RECORD_BYTES } from '../../src/core/records/reserved.js';
import type { Access } from '../../src/core/records/access.js';

/**
 * FEPS update and delete by query against a write of one of their matches made at the
 * same moment, on the stores that find and write the matches in one step
 * (RecordStore.updateWhere/deleteWhere): SQLite, in one write transaction; PostgreSQL,
 * in one transaction in its place in the owner's write order; flat files, in a unit
 * of their own in that order. The single write is
 * made right after the bulk one is called. Through a query and then a batch, that
 * single write landed between the two, and the bulk write, built from what it had
 * read, undid it.
 */

const APP = 'com.example.notes';
const alice: Access = { userId: 'alice', ownerId: 'alice', appName: APP };

function bulkTests(label: string, start: () => Promise<TestServer>): void {
  let server: TestServer;

  before(async () => {
    server = await start();
    await server.addUser('alice');
  });
  after(() => server.close());

  test(`${label}: a bulk update keeps a field written to one of its matches at the same moment`, async () => {
    const records = server.services.records;
    const ids = await Promise.all([1, 2, 3].map(async (n) => (await records.create(alice, APP, { kind: 'x', n }))._id));
    const bulk = records.updateWhere(alice, APP, { op: 'eq', path: ['kind'], value: 'x' }, { tagged: true });
    const single = records.updateFields(alice, APP, ids[0]!, { note: 'written meanwhile' });
    assert.deepEqual(await bulk, { nModified: 3 });
    await single;
    const first = await records.read(alice, APP, ids[0]!);
    assert.equal(first.note, 'written meanwhile', 'the single write survived the bulk update');
    assert.equal(first.tagged, true);
    for (const id of ids.slice(1)) assert.equal((await records.read(alice, APP, id)).tagged, true);
  });

  test(`${label}: a bulk delete and a write at the same moment to one of its matches: what each call answered is what happened`, async () => {
    const records = server.services.records;
    const { _id } = await records.create(alice, APP, { kind: 'doomed' });
    const { _id: other } = await records.create(alice, APP, { kind: 'doomed' });
    const bulk = records.deleteWhere(alice, APP, { op: 'eq', path: ['kind'], value: 'doomed' });
    const single = records.updateFields(alice, APP, _id, { kind: 'saved' });
    const [deleted, updated] = await Promise.allSettled([bulk, single]);
    // Either order is fine, as long as what each call answered is what happened.
    if (updated.status === 'fulfilled') {
      assert.equal((await records.read(alice, APP, _id)).kind, 'saved', 'an update that succeeded is not undone by the bulk delete');
      assert.deepEqual(deleted, { status: 'fulfilled', value: { success: true, deleted: 1 } });
    } else {
      assert.deepEqual(deleted, { status: 'fulfilled', value: { success: true, deleted: 2 } });
      await assert.rejects(records.read(alice, APP, _id), { code: 'not_found' });
    }
    await assert.rejects(records.read(alice, APP, other), { code: 'not_found' });
  });

  test(`${label}: a bulk update that would make one match too big writes none of them`, async () => {
    const records = server.services.records;
    const small = await records.create(alice, APP, { kind: 'grow', pad: '' });
    const big = await records.create(alice, APP, { kind: 'grow', pad: 'x'.repeat(MAX_RECORD_BYTES - 200) });
    await assert.rejects(records.updateWhere(alice, APP, { op: 'eq', path: ['kind'], value: 'grow' }, { more: 'y'.repeat(300) }));
    assert.equal((await records.read(alice, APP, small._id)).more, undefined);
    assert.equal((await records.read(alice, APP, big._id)).more, undefined);
  });
}

forEachRecordBackend('bulk writes', 'fh_bw_', bulkTests);
