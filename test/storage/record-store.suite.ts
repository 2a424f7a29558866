import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RecordStore, StoredRecord } from '../../src/storage/types.js';
import { FreeholdError } from '../../src/core/errors.js';
import { getRecordJson, queryRecordsJson } from '../../src/storage/record-json.js';
import { validateQuery } from '../../src/query/validate.js';
import { compareForSort, matches } from '../../src/query/evaluate.js';

/**
 * The contract every RecordStore backend must meet. A backend's test file calls
 * `recordStoreSuite('sqlite', () => …)`; `make` returns a fresh, empty, not yet
 * initialised store for each test.
 */
export function recordStoreSuite(name: string, make: () => Promise<RecordStore>): void {
  const O = 'alice';
  const T = 'com.example.notes';

  async function withStore(fn: (s: RecordStore) => Promise<void>): Promise<void> {
    const store = await make();
    await store.init();
    await store.init(); // idempotent
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  function rec(id: string, fields: Record<string, unknown> = {}, created = 1000, modified = created): StoredRecord {
    return { _id: id, _date_created: created, _date_modified: modified, ...fields };
  }

  async function ids(s: RecordStore, q: unknown, sort: unknown = { _id: 1 }, extra: { skip?: number; count?: number } = {}): Promise<string[]> {
    const { where, options } = validateQuery(q, { sort, ...extra });
    return (await s.query(O, T, where, options)).map((r) => r._id);
  }

  const conflict = (e: unknown) => e instanceof FreeholdError && e.code === 'conflict';

  test(`${name}: create, get, replace, put, delete`, () =>
    withStore(async (s) => {
      assert.equal(s.kind.length > 0, true);
      const r = rec('r1', { title: 'hello', n: 1, nested: { a: [1, { b: null }] }, _owner: 'alice' }, 10, 10);
      await s.create(O, T, r);
      assert.deepEqual(await s.get(O, T, 'r1'), r);
      assert.equal(await s.get(O, T, 'nope'), null);
      assert.equal(await s.get(O, 'com.example.other', 'r1'), null);

      await assert.rejects(s.create(O, T, rec('r1', { title: 'again' })), conflict);
      assert.deepEqual(await s.get(O, T, 'r1'), r, 'a refused create changes nothing');

      const r2 = rec('r1', { title: 'replaced' }, 10, 20);
      assert.equal(await s.replace(O, T, r2), true);
      assert.deepEqual(await s.get(O, T, 'r1'), r2, 'replace drops fields not in the new record');
      assert.equal(await s.replace(O, T, rec('missing')), false);
      assert.equal(await s.get(O, T, 'missing'), null, 'replace never upserts');

      await s.put(O, T, rec('p1', { v: 1 }));
      await s.put(O, T, rec('p1', { v: 2 }, 1000, 2000));
      assert.deepEqual(await s.get(O, T, 'p1'), rec('p1', { v: 2 }, 1000, 2000));

      assert.deepEqual(await s.delete(O, T, 'r1'), r2);
      assert.equal(await s.delete(O, T, 'r1'), null);
      assert.equal(await s.get(O, T, 'r1'), null);
    }));

  test(`${name}: reads as JSON text say exactly what get and query say`, () =>
    withStore(async (s) => {
      const records = [
        rec('j1', { s: 'plain', n: 1.5, big: 1e21, neg: -0.25, b: true, z: null, o: { a: [1, 'x', { y: false }] } }, 1, 3),
        rec('j2', { nul: 'a \u0000 b', one: 'c \u0001 d', esc: 'quote " \\ \n end', 'clé😀': '中文' }, 2, 2),
        rec('j3', {}, 3, 1),
      ];
      for (const r of records) await s.create(O, T, r);
      for (const r of records) {
        const text = await getRecordJson(s, O, T, r._id);
        assert.ok(text !== null);
        assert.deepEqual(JSON.parse(text), await s.get(O, T, r._id));
        assert.deepEqual(JSON.parse(text), r);
      }
      assert.equal(await getRecordJson(s, O, T, 'missing'), null);
      const { where, options } = validateQuery({}, { sort: { _date_modified: -1 } });
      const list = await queryRecordsJson(s, O, T, where, options);
      assert.deepEqual(JSON.parse(list), await s.query(O, T, where, options));
      assert.deepEqual((JSON.parse(list) as StoredRecord[]).map((r) => r._id), ['j1', 'j2', 'j3']);
      const none = validateQuery({ s: 'nothing' }, {});
      assert.equal(await queryRecordsJson(s, O, T, none.where, none.options), '[]');
    }));

  test(`${name}: unicode values and keys, large records`, () =>
    withStore(async (s) => {
      const r = rec('u1', { 'clé': 'valeur', 'emoji😀': '😀 ✓ 中文', s: 'héllo wörld', q: 'quote " \' \\ \n \u0000 end' });
      await s.create(O, T, r);
      assert.deepEqual(await s.get(O, T, 'u1'), r);
      assert.deepEqual(await ids(s, { s: 'héllo wörld' }), ['u1']);
      assert.deepEqual(await ids(s, { s: { $regex: 'wör' } }), ['u1']);
      assert.deepEqual(await ids(s, { q: 'quote " \' \\ \n \u0000 end' }), ['u1']);

      const big = rec('big', { body: 'x'.repeat(2 * 1024 * 1024), nested: { list: Array.from({ length: 1000 }, (_, i) => ({ i })) } });
      await s.create(O, T, big);
      assert.deepEqual(await s.get(O, T, 'big'), big);
      assert.deepEqual(await ids(s, { 'nested.list': { $exists: true } }), ['big']);
    }));

  // a..f cover every type bracket; created = 1..6.
  const fixtures: StoredRecord[] = [
    rec('a', { n: 1, s: 'apple', b: true, o: { x: 1, y: 'a' }, arr: [1, 2] }, 1),
    rec('b', { n: 2, s: 'Banana', b: false, o: { x: 2 }, tags: ['x', 'Yz', 2, null, true, [5], { k: 1 }] }, 2),
    rec('c', { n: '2', s: 'cherry', z: null, tags: 'x' }, 3),
    rec('d', { n: 3.5, s: 'apple pie', o: 'flat' }, 4),
    rec('e', { s: 5, b: 1 }, 5),
    rec('f', { n: true, z: 0, o: { x: null } }, 6),
  ];
  const operatorCases: Array<[unknown, string]> = [
    [{}, 'a b c d e f'],
    [{ n: 2 }, 'b'],
    [{ n: '2' }, 'c'],
    [{ n: true }, 'f'],
    [{ b: true }, 'a'],
    [{ b: 1 }, 'e'],
    [{ z: 0 }, 'f'],
    [{ z: false }, ''],
    [{ z: null }, 'a b c d e'],
    [{ n: null }, 'e'],
    [{ n: { $eq: 3.5 } }, 'd'],
    [{ n: { $ne: 2 } }, 'a c d e f'],
    [{ n: { $ne: null } }, 'a b c d f'],
    [{ n: { $gt: 1 } }, 'b d'],
    [{ n: { $gte: 1 } }, 'a b d'],
    [{ n: { $lt: 3.5 } }, 'a b'],
    [{ n: { $lte: 3.5 } }, 'a b d'],
    [{ n: { $gt: '1' } }, 'c'],
    [{ s: { $lt: 'b' } }, 'a b d'],
    [{ s: { $gte: 'apple p' } }, 'c d'],
    [{ n: { $in: [1, '2', true] } }, 'a c f'],
    [{ n: { $in: [2, null] } }, 'b e'],
    [{ n: { $in: [] } }, ''],
    [{ n: { $nin: [1, 2] } }, 'c d e f'],
    [{ n: { $nin: [] } }, 'a b c d e f'],
    [{ z: { $exists: true } }, 'c f'],
    [{ z: { $exists: false } }, 'a b d e'],
    [{ 'o.x': 1 }, 'a'],
    [{ 'o.x': null }, 'c d e f'],
    [{ 'o.x': { $exists: true } }, 'a b f'],
    [{ 'o.y': { $exists: true } }, 'a'],
    [{ 'o.x': { $gte: 1 } }, 'a b'],
    [{ o: { $exists: true } }, 'a b d f'],
    [{ o: { $ne: 'flat' } }, 'a b c e f'],
    [{ 'o.flat': { $exists: true } }, ''],
    // An array matches a comparing leaf through any of its elements (as in MongoDB and NeDB).
    [{ arr: 1 }, 'a'],
    [{ arr: 2 }, 'a'],
    [{ arr: 3 }, ''],
    [{ arr: '1' }, ''],
    [{ arr: { $ne: 1 } }, 'b c d e f'],
    [{ arr: { $in: [3, 2] } }, 'a'],
    [{ arr: { $nin: [2] } }, 'b c d e f'],
    [{ arr: { $gt: 1 } }, 'a'],
    [{ arr: { $gt: 2 } }, ''],
    [{ arr: { $gt: 1, $lt: 2 } }, 'a'],
    [{ tags: 'x' }, 'b c'],
    [{ tags: 'Yz' }, 'b'],
    [{ tags: 2 }, 'b'],
    [{ tags: true }, 'b'],
    [{ tags: 1 }, ''],
    [{ tags: null }, 'a b d e f'],
    [{ tags: { $in: [null] } }, 'a b d e f'],
    [{ tags: { $in: ['Yz', 'nope'] } }, 'b'],
    [{ tags: { $ne: 'x' } }, 'a d e f'],
    [{ tags: { $nin: ['x', 'y'] } }, 'a d e f'],
    [{ tags: { $lt: 'y' } }, 'b c'],
    [{ tags: { $gte: 2 } }, 'b'],
    [{ tags: { $regex: 'z' } }, 'b'],
    [{ tags: { $regex: '^y', $options: 'i' } }, 'b'],
    [{ tags: { $exists: true } }, 'b c'],
    // Nested arrays are not searched, paths do not step into arrays, look-alikes stay apart.
    [{ tags: 5 }, ''],
    [{ tags: '[5]' }, ''],
    [{ tags: '{"k":1}' }, ''],
    [{ 'tags.k': 1 }, ''],
    [{ $or: [{ tags: 'Yz' }, { n: 3.5 }] }, 'b d'],
    [{ $not: { tags: 'x' } }, 'a d e f'],
    // Look-alikes of other JSON types: an object's or array's JSON text, and 0/1 for booleans.
    [{ o: '{"x":1,"y":"a"}' }, ''],
    [{ arr: '[1,2]' }, ''],
    [{ o: { $in: ['{"x":2}', 'flat'] } }, 'd'],
    [{ b: 0 }, ''],
    [{ b: { $in: [0, 1] } }, 'e'],
    [{ b: { $in: [1, 2] } }, 'e'],
    [{ arr: { $exists: true } }, 'a'],
    [{ 'arr.0': { $exists: true } }, ''],
    [{ s: { $regex: 'apple' } }, 'a d'],
    [{ s: { $regex: '^apple ' } }, 'd'],
    [{ s: { $regex: 'an' } }, 'b'],
    [{ s: { $regex: 'BAN', $options: 'i' } }, 'b'],
    [{ s: { $regex: '^b', $options: 'i' } }, 'b'],
    [{ s: { $regex: '^b' } }, ''],
    [{ s: { $regex: '' } }, 'a b c d'],
    [{ s: { $not: { $regex: 'apple' } } }, 'b c e f'],
    [{ $or: [{ n: 1 }, { s: 'cherry' }] }, 'a c'],
    [{ $and: [{ n: { $gt: 0 } }, { n: { $lt: 3 } }] }, 'a b'],
    [{ $not: { n: { $gt: 1 } } }, 'a c e f'],
    [{ n: { $not: { $gt: 1 } } }, 'a c e f'],
    [{ $or: [{ $not: { z: { $exists: true } } }, { z: null }] }, 'a b c d e'],
    [{ n: { $gt: 0 }, s: { $regex: 'p' } }, 'a d'],
    [{ _id: 'c' }, 'c'],
    [{ _id: { $in: ['a', 'f', 'zz'] } }, 'a f'],
    [{ _id: { $gt: 'd' } }, 'e f'],
    [{ _id: { $ne: 'a' } }, 'b c d e f'],
    [{ _id: 5 }, ''],
    [{ _id: null }, ''],
    [{ _id: { $exists: false } }, ''],
    [{ _id: { $regex: '^B', $options: 'i' } }, 'b'],
    [{ _date_created: { $gte: 3 } }, 'c d e f'],
    [{ _date_created: { $in: [1, 6] } }, 'a f'],
    [{ _date_created: '3' }, ''],
    [{ _id: { $in: [1, 2, 'a'] } }, 'a'],
    [{ _id: { $nin: [1, 2] } }, 'a b c d e f'],
    [{ _date_created: { $in: ['1', 'x', 2, 3] } }, 'b c'],
    [{ _date_created: { $regex: '1' } }, ''],
    [{ _date_modified: { $lt: 3 } }, 'a b'],
  ];

  for (const indexed of [false, true]) {
    test(`${name}: every query operator${indexed ? ', every field indexed' : ''}`, () =>
      withStore(async (s) => {
        if (indexed) for (const f of ['n', 's', 'b', 'z', 'o', 'o.x', 'arr', 'tags']) await s.ensureIndex(O, T, [f.split('.')]);
        await operatorTable(s);
      }));
  }

  async function operatorTable(s: RecordStore): Promise<void> {
    {
      for (const r of fixtures) await s.create(O, T, r);
      for (const [q, expected] of operatorCases) {
        const want = expected ? expected.split(' ') : [];
        assert.deepEqual(await ids(s, q), want, `query ${JSON.stringify(q)}`);
        const { where } = validateQuery(q);
        assert.equal(await s.count(O, T, where), want.length, `count ${JSON.stringify(q)}`);
        // The in-memory reference must agree too, so this table also pins evaluate.ts.
        assert.deepEqual(fixtures.filter((r) => matches(r, where)).map((r) => r._id), want, `evaluate ${JSON.stringify(q)}`);
      }
    }
  }

  test(`${name}: an indexed field that gains an array is searched in it from the next query on`, () =>
    withStore(async (s) => {
      await s.ensureIndex(O, T, [['tags']]);
      for (let i = 0; i < 20; i++) await s.create(O, T, rec(`s${i}`, { tags: `t${i % 4}` }, i + 1));
      assert.deepEqual(await ids(s, { tags: 't1' }), ['s1', 's13', 's17', 's5', 's9']);
      assert.deepEqual(await ids(s, { tags: { $in: ['t9', 'home'] } }), []);
      await s.create(O, T, rec('arr', { tags: ['home', 't1'] }, 100));
      assert.deepEqual(await ids(s, { tags: 't1' }), ['arr', 's1', 's13', 's17', 's5', 's9']);
      assert.deepEqual(await ids(s, { tags: { $in: ['t9', 'home'] } }), ['arr']);
      assert.equal(await s.count(O, T, validateQuery({ tags: 'home' }).where), 1);
      const { where, options } = validateQuery({ tags: 'home' }, { sort: { _id: 1 } });
      assert.deepEqual(JSON.parse(await queryRecordsJson(s, O, T, where, options)), [await s.get(O, T, 'arr')]);
      // And stops matching once the array is gone.
      await s.put(O, T, rec('arr', { tags: 'work' }, 100, 101));
      assert.deepEqual(await ids(s, { tags: 'home' }), []);
      assert.deepEqual(await ids(s, { tags: { $ne: 't1' } }, { _id: 1 }, { count: 3 }), ['arr', 's0', 's10']);
    }));

  test(`${name}: sort, skip, limit, default order`, () =>
    withStore(async (s) => {
      for (const r of fixtures) await s.create(O, T, r);
      // missing/null, numbers, strings, booleans, objects
      assert.deepEqual(await ids(s, {}, { n: 1, _id: 1 }), ['e', 'a', 'b', 'd', 'c', 'f']);
      assert.deepEqual(await ids(s, {}, { n: -1, _id: 1 }), ['f', 'c', 'd', 'b', 'a', 'e']);
      assert.deepEqual(await ids(s, {}, { o: 1, _id: 1 }), ['c', 'e', 'd', 'a', 'b', 'f']);
      assert.deepEqual(await ids(s, {}, { b: 1, s: -1 }), ['c', 'd', 'f', 'e', 'b', 'a']);
      assert.deepEqual(await ids(s, {}, { b: 'asc', s: 'desc' }), ['c', 'd', 'f', 'e', 'b', 'a']);
      assert.deepEqual(await ids(s, {}, { 'o.x': -1, _date_created: -1 }), ['b', 'a', 'f', 'e', 'd', 'c']);
      assert.deepEqual(await ids(s, {}, { _id: -1 }), ['f', 'e', 'd', 'c', 'b', 'a']);
      assert.deepEqual(await ids(s, {}, { _id: 1 }, { skip: 2, count: 2 }), ['c', 'd']);
      assert.deepEqual(await ids(s, {}, { _id: 1 }, { skip: 5, count: 10 }), ['f']);
      assert.deepEqual(await ids(s, {}, { _id: 1 }, { skip: 6 }), []);
      assert.deepEqual(await ids(s, { n: { $exists: true } }, { _date_created: -1 }, { count: 2 }), ['f', 'd']);

      await s.put(O, T, rec('m1', {}, 1, 50));
      await s.put(O, T, rec('m0', {}, 1, 50));
      // Empty sort: newest _date_modified first, then _id.
      assert.deepEqual(await ids(s, {}, null, { count: 4 }), ['m0', 'm1', 'f', 'e']);
    }));

  test(`${name}: strings sort and compare by code point`, () =>
    withStore(async (s) => {
      const values = ['a', 'B', 'b', 'a\uFFFD', 'a😀', 'é', 'É', '', 'aa', 'Z'];
      for (const [i, v] of values.entries()) await s.create(O, T, rec(`k${i}`, { v }));
      const sorted = [...values].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const got = (await s.query(O, T, { op: 'true' }, { sort: [{ path: ['v'], direction: 1 }], skip: 0, limit: 100 })).map((r) => r.v);
      assert.deepEqual(got, sorted);
      assert.deepEqual(await ids(s, { v: { $gt: 'a\uFFFD' } }), ['k2', 'k4', 'k5', 'k6']);
      // ASCII-only case folding, the same in every backend.
      assert.deepEqual(await ids(s, { v: { $regex: 'é', $options: 'i' } }), ['k5']);
      assert.deepEqual(await ids(s, { v: { $regex: '^b', $options: 'i' } }), ['k1', 'k2']);
      assert.deepEqual(await ids(s, { v: { $regex: '^a😀' } }), ['k4']);
    }));

  test(`${name}: parallel writers`, () =>
    withStore(async (s) => {
      const before = (await s.changes(O, 0, 100000)).length;
      await Promise.all(
        Array.from({ length: 20 }, async (_, w) => {
          for (let i = 0; i < 50; i++) {
            await s.create(O, T, rec(`w${w}-${i}`, { w, i }));
            if (i % 10 === 0) await s.put(O, T, rec(`w${w}-${i}`, { w, i, again: true }));
          }
        }),
      );
      assert.equal(await s.count(O, T, { op: 'true' }), 1000);
      assert.equal(await s.count(O, T, validateQuery({ again: true }).where), 100);
      assert.equal((await s.changes(O, 0, 100000)).length - before, 1100);
    }));

  test(`${name}: a failing write does not affect concurrent writes`, () =>
    withStore(async (s) => {
      await s.create(O, T, rec('taken'));
      const results = await Promise.allSettled([
        s.create(O, T, rec('n1')),
        s.create(O, T, rec('taken', { v: 'again' })),
        s.batch(O, [{ kind: 'put', table: T, record: rec('n2') }, { kind: 'create', table: T, record: rec('taken') }]),
        s.put(O, T, rec('n3')),
        s.delete(O, T, 'taken'),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled']);
      assert.ok(results.filter((r) => r.status === 'rejected').every((r) => conflict((r as PromiseRejectedResult).reason)));
      assert.ok(await s.get(O, T, 'n1'));
      assert.equal(await s.get(O, T, 'n2'), null);
      assert.ok(await s.get(O, T, 'n3'));
      assert.equal(await s.get(O, T, 'taken'), null);
      // Concurrent writes may commit in any order; only the set of changes is part of the contract.
      assert.deepEqual((await s.changes(O, 0, 100)).map((c) => c.op + ':' + c.id).sort(), ['delete:taken', 'put:n1', 'put:n3', 'put:taken']);
    }));

  test(`${name}: change sequence`, () =>
    withStore(async (s) => {
      const base = (await s.changes(O, 0, 100000)).at(-1)?.seq ?? 0;
      await s.create(O, T, rec('x'));
      await s.create('bob', T, rec('y'));
      await s.replace(O, T, rec('x', { v: 1 }));
      await s.replace(O, T, rec('nope'));
      await s.put(O, 'com.example.notes.tags', rec('t'));
      await s.delete(O, T, 'x');
      await s.delete(O, T, 'x');
      const ch = await s.changes(O, base, 100);
      assert.deepEqual(
        ch.map((c) => [c.table, c.id, c.op]),
        [
          [T, 'x', 'put'],
          [T, 'x', 'put'],
          ['com.example.notes.tags', 't', 'put'],
          [T, 'x', 'delete'],
        ],
      );
      for (let i = 1; i < ch.length; i++) assert.ok(ch[i]!.seq > ch[i - 1]!.seq, 'seq strictly increasing');
      for (const c of ch) assert.ok(typeof c.at === 'number' && c.at > 1e12, 'at is epoch ms');
      assert.deepEqual(await s.changes(O, ch[1]!.seq, 1), [ch[2]]);
      assert.deepEqual((await s.changes('bob', 0, 100)).map((c) => c.id), ['y']);
    }));

  test(`${name}: batch is atomic`, () =>
    withStore(async (s) => {
      await s.create(O, T, rec('keep'));
      await s.create(O, T, rec('taken'));
      const seqBefore = (await s.changes(O, 0, 100000)).length;
      await assert.rejects(
        s.batch(O, [
          { kind: 'put', table: T, record: rec('new1') },
          { kind: 'create', table: T, record: rec('taken', { v: 'overwritten?' }) },
          { kind: 'delete', table: T, id: 'keep' },
        ]),
        conflict,
      );
      assert.equal(await s.get(O, T, 'new1'), null);
      assert.deepEqual(await s.get(O, T, 'taken'), rec('taken'));
      assert.deepEqual(await s.get(O, T, 'keep'), rec('keep'));
      assert.equal((await s.changes(O, 0, 100000)).length, seqBefore, 'no change rows from a failed batch');

      await s.batch(O, [
        { kind: 'create', table: T, record: rec('new1') },
        { kind: 'put', table: 'com.example.notes.b', record: rec('new2') },
        { kind: 'delete', table: T, id: 'keep' },
        { kind: 'delete', table: T, id: 'absent' },
      ]);
      assert.deepEqual(await s.get(O, T, 'new1'), rec('new1'));
      assert.deepEqual(await s.get(O, 'com.example.notes.b', 'new2'), rec('new2'));
      assert.equal(await s.get(O, T, 'keep'), null);
      assert.equal((await s.changes(O, 0, 100000)).length, seqBefore + 3);
      await s.batch(O, []);
    }));

  test(`${name}: ensureIndex, listTables, dropTable`, () =>
    withStore(async (s) => {
      await s.ensureIndex(O, T, [['n'], ['o', 'x']]);
      await s.ensureIndex(O, T, [['n'], ['o', 'x']]);
      await s.ensureIndex(O, T, [['_date_modified']]);
      await assert.rejects(s.ensureIndex(O, T, [["x'); DROP TABLE records; --"]]));
      for (const r of fixtures) await s.create(O, T, r);
      assert.deepEqual(await ids(s, { n: 2 }), ['b']);
      assert.deepEqual(await ids(s, { 'o.x': { $gte: 1 } }), ['a', 'b']);

      await s.create(O, 'com.example.notes.tags', rec('t1'));
      await s.create('bob', 'com.example.bob', rec('b1'));
      assert.deepEqual(await s.listTables(O), [
        { table: T, count: 6 },
        { table: 'com.example.notes.tags', count: 1 },
      ]);
      const base = (await s.changes(O, 0, 100000)).at(-1)!.seq;
      assert.equal(await s.dropTable(O, T), 6);
      assert.deepEqual(await s.listTables(O), [{ table: 'com.example.notes.tags', count: 1 }]);
      assert.equal(await s.get(O, T, 'a'), null);
      assert.equal(await s.count(O, T, { op: 'true' }), 0);
      const ch = await s.changes(O, base, 100);
      assert.deepEqual(ch.map((c) => c.op + ':' + c.id).sort(), ['a', 'b', 'c', 'd', 'e', 'f'].map((i) => 'delete:' + i));
      assert.equal(await s.dropTable(O, T), 0);
      assert.deepEqual(await s.listTables('bob'), [{ table: 'com.example.bob', count: 1 }]);
    }));

  test(`${name}: usage counts an owner's records and their bytes`, () =>
    withStore(async (s) => {
      assert.deepEqual(await s.usage('carl'), { records: 0, bytes: 0 });
      await s.create('carl', T, rec('u1', { text: 'x'.repeat(1000) }));
      await s.create('carl', 'com.example.notes.other', rec('u2', { text: 'y'.repeat(3000) }));
      await s.create('dana', T, rec('u3', { text: 'z'.repeat(50_000) }));
      const u = await s.usage('carl');
      assert.equal(u.records, 2);
      assert.ok(u.bytes >= 4000 && u.bytes < 20_000, `bytes ${u.bytes}`);
      await s.delete('carl', T, 'u1');
      const after = await s.usage('carl');
      assert.equal(after.records, 1);
      assert.ok(after.bytes < u.bytes);
    }));

  test(`${name}: owners are isolated`, () =>
    withStore(async (s) => {
      await s.create('alice', T, rec('same', { who: 'alice' }));
      await s.create('bob', T, rec('same', { who: 'bob' }));
      await s.create('alice', T, rec('only-alice'));
      assert.equal((await s.get('bob', T, 'same'))!.who, 'bob');
      assert.equal(await s.get('bob', T, 'only-alice'), null);
      const all = { op: 'true' } as const;
      const opts = { sort: [], skip: 0, limit: 100 };
      assert.deepEqual((await s.query('bob', T, all, opts)).map((r) => r.who), ['bob']);
      assert.equal(await s.count('bob', T, all), 1);
      assert.equal(await s.replace('bob', T, rec('only-alice')), false);
      assert.equal(await s.delete('bob', T, 'only-alice'), null);
      assert.equal(await s.dropTable('bob', T), 1);
      assert.equal(await s.count('alice', T, all), 2);
      assert.deepEqual(await s.listTables('bob'), []);
      assert.deepEqual((await s.changes('bob', 0, 100)).map((c) => c.op), ['put', 'delete']);
    }));

  for (const indexed of [false, true]) test(`${name}: differential against evaluate.ts${indexed ? ', fields indexed' : ''}`, () =>
    withStore(async (s) => {
      if (indexed) for (const f of ['a', 'b', 'ç d', 'n.x']) await s.ensureIndex(O, T, [f.split('.')]);
      // FREEHOLD_DIFF_SEED explores other seeds; the default keeps runs reproducible.
      const rnd = mulberry32(Number(process.env.FREEHOLD_DIFF_SEED ?? 0xf4ee));
      const records = Array.from({ length: 300 }, (_, i) => randomRecord(rnd, i));
      // The reference sees exactly what JSON can carry, as a store does.
      const reference = JSON.parse(JSON.stringify(records)) as StoredRecord[];
      for (const r of records) await s.create(O, T, r);
      let selective = 0;
      for (let q = 0; q < 200; q++) {
        const json = randomQuery(rnd, 0);
        const sort = randomSort(rnd);
        const extra = rnd() < 0.3 ? { skip: Math.floor(rnd() * 50), count: 1 + Math.floor(rnd() * 100) } : { count: 5000 };
        const { where, options } = validateQuery(json, { sort, ...extra });
        const want = reference
          .filter((r) => matches(r, where))
          .sort((a, b) => compareForSort(a, b, options.sort))
          .slice(options.skip, options.skip + options.limit)
          .map((r) => r._id);
        const got = (await s.query(O, T, where, options)).map((r) => r._id);
        assert.deepEqual(got, want, `query ${JSON.stringify(json)} sort ${JSON.stringify(sort)} ${JSON.stringify(extra)}`);
        const n = reference.filter((r) => matches(r, where)).length;
        assert.equal(await s.count(O, T, where), n, `count ${JSON.stringify(json)}`);
        if (n > 0 && n < reference.length) selective++;
      }
      // Guard against a degenerate generator (everything or nothing matching proves little).
      assert.ok(selective > 100, `only ${selective} of 200 random queries were selective`);
    }));
}

// --- random data for the differential test ---

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ['', 'a', 'A', 'ab', 'Ab', 'abc', 'b', 'B', 'ba', 'é', 'É', '😀', 'a\uFFFD', 'a😀', '5', 'true', 'null', 'x y', 'Zebra'];
const NUMBERS = [-3, -1.5, 0, 1, 2, 2.5, 5, 10, 100, 1e21, 0.1];

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)]!;
}

function randomScalar(rnd: () => number): string | number | boolean | null {
  const r = rnd();
  if (r < 0.4) return pick(rnd, NUMBERS);
  if (r < 0.8) return pick(rnd, STRINGS);
  if (r < 0.92) return rnd() < 0.5;
  return null;
}

function randomValue(rnd: () => number, depth: number): unknown {
  const r = rnd();
  if (r < 0.8 || depth > 1) return randomScalar(rnd);
  if (r < 0.9) return { x: randomValue(rnd, depth + 1), y: randomScalar(rnd) };
  return [randomScalar(rnd), randomScalar(rnd)];
}

// 'ç d': a field name of another script with a space, as apps write them (validate.ts PATH_SEGMENT).
const FIELDS = ['a', 'b', 'ç d', 'n'];

function randomRecord(rnd: () => number, i: number): StoredRecord {
  const r: StoredRecord = {
    _id: `id${String(i).padStart(3, '0')}`,
    _date_created: 1 + Math.floor(rnd() * 20),
    _date_modified: 1 + Math.floor(rnd() * 20),
  };
  for (const f of FIELDS) {
    if (rnd() < 0.2) continue; // missing
    r[f] = f === 'n' && rnd() < 0.6 ? { x: randomScalar(rnd), y: rnd() < 0.5 ? randomScalar(rnd) : { z: randomScalar(rnd) } } : randomValue(rnd, 0);
  }
  return r;
}

const PATHS = ['a', 'b', 'ç d', 'n', 'n.x', 'n.y', 'n.y.z', 'a.x', 'missing', '_id', '_date_created', '_date_modified'];

function randomLeaf(rnd: () => number): Record<string, unknown> {
  const path = pick(rnd, PATHS);
  const r = rnd();
  const cmpValue = () => (path === '_id' ? `id${String(Math.floor(rnd() * 300)).padStart(3, '0')}` : rnd() < 0.5 ? pick(rnd, NUMBERS) : pick(rnd, STRINGS));
  if (r < 0.25) return { [path]: path === '_id' && rnd() < 0.7 ? cmpValue() : randomScalar(rnd) };
  if (r < 0.55) return { [path]: { [pick(rnd, ['$lt', '$lte', '$gt', '$gte'])]: path.startsWith('_date') ? Math.floor(rnd() * 22) : cmpValue() } };
  if (r < 0.65) return { [path]: { $ne: randomScalar(rnd) } };
  if (r < 0.75) return { [path]: { [rnd() < 0.5 ? '$in' : '$nin']: Array.from({ length: Math.floor(rnd() * 4) }, () => (rnd() < 0.3 ? cmpValue() : randomScalar(rnd))) } };
  if (r < 0.83) return { [path]: { $exists: rnd() < 0.5 } };
  const needle = pick(rnd, ['a', 'A', 'b', 'é', '😀', '', 'ab', 'id1', 'id0']);
  return { [path]: { $regex: (rnd() < 0.4 ? '^' : '') + needle, ...(rnd() < 0.4 ? { $options: 'i' } : {}) } };
}

function randomQuery(rnd: () => number, depth: number): Record<string, unknown> {
  const r = rnd();
  if (depth >= 3 || r < 0.5) return randomLeaf(rnd);
  const items = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => randomQuery(rnd, depth + 1));
  if (r < 0.7) return { $and: items };
  if (r < 0.88) return { $or: items };
  if (r < 0.94) return { $not: items[0] };
  const leaf = randomLeaf(rnd);
  const [path, cond] = Object.entries(leaf)[0]!;
  return typeof cond === 'object' && cond !== null ? { [path]: { $not: cond } } : leaf;
}

function randomSort(rnd: () => number): Record<string, 1 | -1> {
  const sort: Record<string, 1 | -1> = {};
  const n = Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) sort[pick(rnd, ['a', 'b', 'ç d', 'n', 'n.x', 'n.y', '_date_created', '_date_modified'])] = rnd() < 0.5 ? 1 : -1;
  sort._id = rnd() < 0.5 ? 1 : -1; // a total order, so results are comparable
  return sort;
}
