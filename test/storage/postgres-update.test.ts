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

  test('postgres update: updates queued together go as one statement, each answered as if alone', () =>
    withStore({}, async (s) => {
      const big: StoredRecord = { _id: 'big', _date_created: 5, _date_modified: 7, text: 'y'.repeat(300) };
      await s.batch('o', [
        ...['a', 'b', 'c'].map((id) => ({ kind: 'put' as const, table: T, record: { _id: id, _date_created: 5, _date_modified: 7, _publicid: `p-${id}`, v: 0, w: 0 } })),
        { kind: 'put', table: 'com.example.other', record: { _id: 'a', _date_created: 6, _date_modified: 8, v: 0 } },
        { kind: 'put', table: T, record: big },
      ]);
      const before = s.combinedWrites;
      // The first finds the queue idle and goes at once; the rest queue behind it.
      const first = s.update('o', T, 'c', change({ v: 9 }, 'all', 900));
      const merges = await Promise.all([
        s.update('o', T, 'a', change({ v: 1 }, 'all', 1000)),
        s.update('o', T, 'b', change({ v: 2 }, 'all', 1000)),
        s.update('o', 'com.example.other', 'a', change({ v: 3 }, 'all', 1000)),
        s.update('o', T, 'missing', change({ v: 4 }, 'all', 1000)),
        s.update('o', T, 'big', { fields: { v: 5 }, keep: 'all', modified: 1000, maxBytes: 200, build: inSql }),
        // The same record again: it must see the first update of it, so it goes in a statement after it.
        s.update('o', T, 'a', change({ w: 6 }, 'all', 1000)),
      ]);
      await first;
      assert.deepEqual(merges, [
        { _date_created: 5, _date_modified: 1000 }, { _date_created: 5, _date_modified: 1000 }, { _date_created: 6, _date_modified: 1000 },
        null, null, { _date_created: 5, _date_modified: 1001 },
      ]);
      assert.deepEqual(await s.get('o', T, 'a'), { _id: 'a', _date_created: 5, _date_modified: 1001, _publicid: 'p-a', v: 1, w: 6 });
      assert.deepEqual(await s.get('o', 'com.example.other', 'a'), { _id: 'a', _date_created: 6, _date_modified: 1000, v: 3 });
      assert.deepEqual(await s.get('o', T, 'big'), big);
      assert.ok(s.combinedWrites - before >= 5, `combined ${s.combinedWrites - before}`);
      // Replacements (a CEPS update) combine too, keeping the listed fields of each record.
      const replaced = await Promise.all([
        s.update('o', T, 'a', change({ n: 1 }, ['_publicid'], 2000)),
        s.update('o', T, 'b', change({ n: 2 }, ['_publicid'], 2000)),
        s.update('o', T, 'c', change({ n: 3 }, ['_publicid'], 2000)),
      ]);
      assert.deepEqual(replaced.map((d) => d?._date_modified), [2000, 2000, 2000]);
      for (const [id, n] of [['a', 1], ['b', 2], ['c', 3]] as const) {
        assert.deepEqual(await s.get('o', T, id), { _id: id, _date_created: 5, _date_modified: 2000, _publicid: `p-${id}`, n });
      }
      const feed = (await s.changes('o', 0, 100)).map((c) => `${c.table === T ? '' : 'other:'}${c.id}`);
      assert.deepEqual(feed.slice(5), ['c', 'a', 'b', 'other:a', 'a', 'a', 'b', 'c'], 'one change per record updated, in call order');
    }));

  test('postgres update: replacements keeping different fields are never combined into one', () =>
    withStore({}, async (s) => {
      for (const id of ['a', 'b', 'c']) await s.put('o', T, { _id: id, _date_created: 5, _date_modified: 7, '': 'empty', x: 1, n: 0 });
      const first = s.update('o', T, 'a', change({ n: 1 }, ['x'], 1000));
      // [] and [''] must not read as the same list.
      await Promise.all([s.update('o', T, 'b', change({ n: 2 }, [], 1000)), s.update('o', T, 'c', change({ n: 3 }, [''], 1000))]);
      await first;
      assert.deepEqual(await s.get('o', T, 'a'), { _id: 'a', _date_created: 5, _date_modified: 1000, x: 1, n: 1 });
      assert.deepEqual(await s.get('o', T, 'b'), { _id: 'b', _date_created: 5, _date_modified: 1000, n: 2 });
      assert.deepEqual(await s.get('o', T, 'c'), { _id: 'c', _date_created: 5, _date_modified: 1000, '': 'empty', n: 3 });
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
