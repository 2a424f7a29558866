import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresRecordStore } from '../../src/storage/postgres/record-store.js';
import type { RecordUpdate, StoredRecord } from '../../src/storage/types.js';
import { postgresSuite } from '../helpers/postgres.js';

/**
 * The PostgreSQL store's single-statement update (RecordStore.update): what it writes,
 * when it declines (no record; a result that might be over the size limit), and that
 * concurrent merges from two processes' stores lose nothing.
 */

const T = 'com.example.notes';
const MAX = 2 * 1024 * 1024;
/** PostgreSQL builds the new record in SQL: a store that called `build` would be taking the JS path. */
const inSql = (): never => { throw new Error('the PostgreSQL store must not build the record in JS'); };
const change = (fields: Record<string, unknown>, keep: RecordUpdate['keep'], modified = 1000): RecordUpdate => ({ fields, keep, modified, maxBytes: MAX, build: inSql });

postgresSuite('postgres update', 'fh_u_', (scratch) => {
  const withStore = scratch.withStore.bind(scratch);

  test('postgres update: replaces the fields, keeps the id, creation date and the listed fields; logs a put', () =>
    withStore({}, async (s) => {
      await s.put('o', T, { _id: 'a', _date_created: 5, _date_modified: 7, _publicid: 'p1', _owner: 'x', title: 'old', n: 1 });
      const dates = await s.update('o', T, 'a', change({ title: 'new' }, ['_publicid'], 1000));
      assert.deepEqual(dates, { _date_created: 5, _date_modified: 1000 });
      assert.deepEqual(await s.get('o', T, 'a'), { _id: 'a', _date_created: 5, _date_modified: 1000, _publicid: 'p1', title: 'new' });
      assert.deepEqual((await s.changes('o', 0, 10)).map((c) => `${c.op}:${c.id}`), ['put:a', 'put:a']);
      const { where, options } = { where: { op: 'eq', path: ['_date_modified'], value: 1000 } as const, options: { sort: [], skip: 0, limit: 10 } };
      assert.deepEqual((await s.query('o', T, where, options)).map((r) => r._id), ['a'], 'the modified column moved with the data');
    }));

  test('postgres update: a merge keeps every stored field, the new ones winning', () =>
    withStore({}, async (s) => {
      await s.put('o', T, { _id: 'a', _date_created: 5, _date_modified: 7, _publicid: 'p1', a: 1, b: { c: 2 } });
      assert.deepEqual(await s.update('o', T, 'a', change({ b: 3, d: 'x' }, 'all', 1000)), { _date_created: 5, _date_modified: 1000 });
      assert.deepEqual(await s.get('o', T, 'a'), { _id: 'a', _date_created: 5, _date_modified: 1000, _publicid: 'p1', a: 1, b: 3, d: 'x' });
    }));

  test('postgres update: the modification date is the stored one + 1 when that is later', () =>
    withStore({}, async (s) => {
      await s.put('o', T, { _id: 'a', _date_created: 5, _date_modified: 5000, v: 0 });
      assert.deepEqual(await s.update('o', T, 'a', change({ v: 1 }, [], 1000)), { _date_created: 5, _date_modified: 5001 });
      assert.deepEqual(await s.update('o', T, 'a', change({ v: 2 }, 'all', 1000)), { _date_created: 5, _date_modified: 5002 });
      assert.equal((await s.get('o', T, 'a'))!._date_modified, 5002);
    }));

  test('postgres update: no record, or a result that might be over maxBytes: null, and nothing written', () =>
    withStore({}, async (s) => {
      assert.equal(await s.update('o', T, 'missing', change({ v: 1 }, [])), null);
      assert.equal(await s.get('o', T, 'missing'), null);
      const stored: StoredRecord = { _id: 'a', _date_created: 5, _date_modified: 7, text: 'y'.repeat(300) };
      await s.put('o', T, stored);
      // Replacing with small fields fits; merging into the stored 300 bytes might not.
      assert.equal(await s.update('o', T, 'a', { fields: { text: 'y'.repeat(300) }, keep: 'all', modified: 1000, maxBytes: 500, build: inSql }), null);
      assert.equal(await s.update('o', T, 'a', { fields: { text: 'z'.repeat(600) }, keep: [], modified: 1000, maxBytes: 500, build: inSql }), null);
      assert.deepEqual(await s.get('o', T, 'a'), stored);
      assert.deepEqual((await s.changes('o', 0, 10)).length, 1);
      assert.ok(await s.update('o', T, 'a', { fields: { text: 'z' }, keep: [], modified: 1000, maxBytes: 500, build: inSql }));
    }));

  test('postgres update: strings PostgreSQL cannot hold as they are round-trip', () =>
    withStore({}, async (s) => {
      await s.put('o', T, { _id: 'a', _date_created: 1, _date_modified: 1, 'k\u0000': 'v\u0001' });
      await s.update('o', T, 'a', change({ 'n\u0000': 'w\u0000\u0001' }, 'all'));
      assert.deepEqual(await s.get('o', T, 'a'), { _id: 'a', _date_created: 1, _date_modified: 1000, 'k\u0000': 'v\u0001', 'n\u0000': 'w\u0000\u0001' });
    }));

  test('postgres update: merges from two stores at once (two processes) all land', () =>
    withStore({}, async (s, _app, schema) => {
      const u = new URL(scratch.databaseUrl);
      u.searchParams.set('schema', schema);
      const other = new PostgresRecordStore(u.toString());
      await other.init();
      try {
        await s.put('o', T, { _id: 'a', _date_created: 1, _date_modified: 1 });
        const writes = [];
        for (let i = 0; i < 40; i++) writes.push((i % 2 ? s : other).update('o', T, 'a', change({ [`f${i}`]: i }, 'all', 1000)));
        const dates = await Promise.all(writes);
        const record = (await s.get('o', T, 'a'))!;
        for (let i = 0; i < 40; i++) assert.equal(record[`f${i}`], i, `f${i} was lost`);
        // Every merge got its own, strictly later date.
        assert.equal(new Set(dates.map((d) => d!._date_modified)).size, 40);
        assert.equal(record._date_modified, Math.max(...dates.map((d) => d!._date_modified)));
      } finally {
        await other.close();
      }
    }));
});
