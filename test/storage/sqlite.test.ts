import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteRecordStore } from '../../src/storage/sqlite/record-store.js';
import type { RecordUpdate, StoredRecord } from '../../src/storage/types.js';
import { recordStoreSuite } from './record-store.suite.js';
import { compileSqlite, compileSqliteOrder } from '../../src/query/sqlite.js';
import { validateWhere } from '../../src/query/validate.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-sqlite-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

recordStoreSuite('sqlite', async () => new SqliteRecordStore(join(dir, `t${n++}.db`)));
recordStoreSuite('sqlite :memory:', async () => new SqliteRecordStore(':memory:'));

test('sqlite compiler: paths are literals only when safe, params match placeholders', () => {
  assert.throws(() => compileSqlite({ op: 'eq', path: ["a'b"], value: 1 }, 'data'), /Unsafe/);
  assert.throws(() => compileSqlite({ op: 'eq', path: ['a'], value: 1 }, 'data; DROP'), /Unsafe/);
  assert.throws(() => compileSqliteOrder([{ path: ['a"'], direction: 1 }], 'data'), /Unsafe/);
  const aliased = compileSqlite(validateWhere({ _id: 'x', 'a.b': 'y' }), 'r.data');
  assert.match(aliased.sql, /r\.id = \?/);
  assert.match(aliased.sql, /json_extract\(r\.data, '\$\."a"\."b"'\)/);
  const q = validateWhere({
    $or: [{ a: { $in: [1, 2, 'x', 'y', null, true] } }, { _id: { $in: [1, 2] } }, { _date_created: { $regex: 'x' } }],
    b: { $not: { $regex: '^Ab', $options: 'i' } },
    c: { $nin: ['p', 'q'] },
  });
  const { sql, params } = compileSqlite(q, 'data');
  assert.equal(sql.split('?').length - 1, params.length);
  assert.ok(!params.some((p) => typeof p === 'boolean'), 'booleans are never bound (better-sqlite3 refuses them)');
});

test('an app-declared index serves equality queries in CEPS order, even on a big table', async () => {
  const file = join(dir, 'plan.db');
  const store = new SqliteRecordStore(file);
  await store.init();
  await store.ensureIndex('o', 'com.a.b', [['kind']]);
  const ops = [];
  for (let i = 0; i < 3000; i++) ops.push({ kind: 'put' as const, table: 'com.a.b', record: { _id: `r${i}`, _date_created: i, _date_modified: i, kind: `k${i % 100}` } });
  await store.batch('o', ops);
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(file, { readonly: true });
  // The plan of the statement the store itself prepared for the query (its statement cache).
  const planOfLastQuery = (): string[] => {
    const cached = [...(store as unknown as { cache: Map<string, unknown> }).cache.keys()].filter((sql) => sql.startsWith('SELECT data FROM records WHERE owner = ? AND tbl = ? AND'));
    const sql = cached.at(-1)!;
    const where = compileSqlite(validateWhere({ kind: 'k7' }), 'data', () => sql.includes('json_each'));
    return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('o', 'com.a.b', ...where.params, 50, 0) as Array<{ detail: string }>).map((p) => p.detail);
  };
  const query = () => store.query('o', 'com.a.b', validateWhere({ kind: 'k7' }), { sort: [{ path: ['_date_modified'], direction: -1 }], skip: 0, limit: 50 });
  assert.equal((await query()).length, 30);
  const plan = planOfLastQuery();
  assert.ok(plan.some((p) => /USING INDEX records_x_/.test(p)), JSON.stringify(plan));
  assert.ok(!plan.some((p) => /TEMP B-TREE/.test(p)), `the index already gives CEPS order: ${JSON.stringify(plan)}`);
  assert.ok(!plan.some((p) => /VIRTUAL TABLE/.test(p)), `no array in the field, no array branch: ${JSON.stringify(plan)}`);
  // Once the field holds an array, equality also looks into arrays, still through the index.
  await store.put('o', 'com.a.b', { _id: 'arr', _date_created: 5000, _date_modified: 5000, kind: ['k7', 'x'] });
  assert.equal((await query()).length, 31);
  const withArrays = planOfLastQuery();
  assert.ok(withArrays.some((p) => /VIRTUAL TABLE/.test(p)), JSON.stringify(withArrays));
  assert.ok(withArrays.every((p) => !/^SCAN records/.test(p)), `served by the index, no scan: ${JSON.stringify(withArrays)}`);
  db.close();
  await store.close();
});

test('sqlite URLs: durability=full turns on synchronous=FULL; unknown parameters are refused', async () => {
  const { openRecordStore } = await import('../../src/storage/urls.js');
  const file = join(dir, 'durable.db');
  const store = openRecordStore(`sqlite:${file}?durability=full`);
  await store.init();
  const { default: Database } = await import('better-sqlite3');
  // synchronous is per connection: ask the store's own connection through a write and a pragma read.
  const db = (store as unknown as { db: InstanceType<typeof Database> }).db;
  assert.equal(db.pragma('synchronous', { simple: true }), 2);
  await store.close();
  assert.throws(() => openRecordStore(`sqlite:${file}?durability=maybe`), /durability/);
  assert.throws(() => openRecordStore(`sqlite:${file}?foo=1`), /durability/);
});

test('sqlite update: builds the record inside the write, logs a put, declines when absent or over the limit', async () => {
  const s = new SqliteRecordStore(join(dir, `t${n++}.db`));
  await s.init();
  try {
    const T = 'com.example.notes';
    await s.put('o', T, { _id: 'a', _date_created: 5, _date_modified: 7, _publicid: 'p1', title: 'old' });
    const seen: StoredRecord[] = [];
    const change = (build: (old: StoredRecord) => StoredRecord, maxBytes = 1000): RecordUpdate =>
      ({ fields: {}, keep: 'all', modified: 0, maxBytes, build: (old) => { seen.push(old); return build(old); } });
    const dates = await s.update('o', T, 'a', change((old) => ({ ...old, title: 'new', _date_modified: 9 })));
    assert.deepEqual(dates, { _date_created: 5, _date_modified: 9 });
    assert.deepEqual(seen, [{ _id: 'a', _date_created: 5, _date_modified: 7, _publicid: 'p1', title: 'old' }], 'built from the stored record');
    assert.deepEqual(await s.get('o', T, 'a'), { _id: 'a', _date_created: 5, _date_modified: 9, _publicid: 'p1', title: 'new' });
    assert.deepEqual((await s.changes('o', 0, 10)).map((c) => `${c.op}:${c.id}`), ['put:a', 'put:a']);
    assert.equal(await s.update('o', T, 'missing', change((old) => old)), null);
    assert.equal(await s.update('o', T, 'a', change((old) => ({ ...old, title: 'x'.repeat(2000) }), 1000)), null);
    assert.equal((await s.get('o', T, 'a'))!.title, 'new', 'nothing written when over the limit');
    assert.equal((await s.changes('o', 0, 10)).length, 2);
  } finally {
    await s.close();
  }
});

test('sqlite change stamp: read once per event-loop turn; another connection\'s commit shows in the next turn', async () => {
  const file = join(dir, 'stamp.db');
  const store = new SqliteRecordStore(file);
  await store.init();
  const other = new Database(file);
  try {
    const before = store.changeStamp();
    assert.equal(typeof before, 'number');
    other.exec('CREATE TABLE IF NOT EXISTS elsewhere (x); INSERT INTO elsewhere VALUES (1)');
    assert.equal(store.changeStamp(), before, 'within the turn, the stamp read at its start');
    await new Promise((resolve) => setImmediate(resolve));
    const after = store.changeStamp();
    assert.notEqual(after, before, 'the next turn reads it again and sees the commit');
    await store.put('o', 't', { _id: 'mine', _date_created: 1, _date_modified: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(store.changeStamp(), after, 'the store\'s own commits do not move it');
  } finally {
    other.close();
    await store.close();
  }
});

test('sqlite reads: one snapshot per event-loop turn; the next turn, and the store\'s own writes, see new commits; nothing is held between turns', async () => {
  const file = join(dir, 'turns.db');
  const store = new SqliteRecordStore(file);
  await store.init();
  await store.put('o', 't', { _id: 'x', _date_created: 1, _date_modified: 1, v: 1 });
  const other = new Database(file);
  const otherWrite = (v: number) => other.prepare("UPDATE records SET data = json_set(data, '$.v', ?) WHERE id = 'x'").run(v);
  try {
    assert.equal((await store.get('o', 't', 'x'))?.v, 1);
    otherWrite(2);
    assert.equal((await store.get('o', 't', 'x'))?.v, 1, 'the same turn reads the snapshot it began with');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal((await store.get('o', 't', 'x'))?.v, 2, 'the next turn sees the other connection\'s commit');
    await store.put('o', 't', { _id: 'x', _date_created: 1, _date_modified: 2, v: 3 });
    assert.equal((await store.get('o', 't', 'x'))?.v, 3, 'a write of this store is read back at once');
    await store.ensureIndex('o', 't', [['v']]); // a schema change right after a read in the same turn
    assert.deepEqual((await store.query('o', 't', { op: 'eq', path: ['v'], value: 3 }, { sort: [], skip: 0, limit: 10 })).map((r) => r._id), ['x']);
    await new Promise((resolve) => setImmediate(resolve));
    // With no read transaction left open, another connection can checkpoint and empty the whole WAL.
    const [result] = other.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number }>;
    assert.deepEqual({ busy: result!.busy, log: result!.log }, { busy: 0, log: 0 });
  } finally {
    other.close();
    await store.close();
  }
});
