import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestServer } from '../helpers/server.js';
import { forEachRecordBackend } from '../helpers/backends.js';
import { MAX_RECORD_BYTES } from '../../src/core/records/reserved.js';

/**
 * CEPS and FEPS updates over the stores that apply them in one step (RecordStore.update:
 * one UPDATE statement on PostgreSQL, one write transaction on SQLite, one journalled
 * unit on flat files): the same answers
 * as the general path, exactly at the size limit too, and concurrent merges of one
 * record all kept.
 */

const APP = 'com.example.notes';

function updateTests(label: string, start: () => Promise<TestServer>): void {
  let server: TestServer;
  let token: string;
  const call = (method: string, url: string, payload?: unknown) => server.app.inject({
    method: method as 'GET', url, ...(payload === undefined ? {} : { payload: payload as object }), headers: { authorization: `Bearer ${token}` },
  });
  const write = async (payload: object): Promise<{ _id: string; _date_created: number; _date_modified: number }> => {
    const res = await call('POST', `/ceps/write/${APP}`, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  /** JSON bytes of a record's own fields: what the limit counts (the server's id and dates come on top). */
  const recordBytes = (fields: object) => Buffer.byteLength(JSON.stringify(fields));

  before(async () => {
    server = await start();
    await server.addUser('alice');
    token = await server.appToken('alice', APP);
  });
  after(() => server.close());

  test(`${label} CEPS update: the dates answered, the fields replaced, 404 without creating`, async () => {
    const created = await write({ title: 'hi', n: 1 });
    const res = await call('PUT', `/ceps/update/${APP}/${created._id}`, { title: 'bye', _date_created: 1, _id: 'other' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ['_id', '_date_created', '_date_modified']);
    assert.equal(body._id, created._id);
    assert.equal(body._date_created, created._date_created);
    assert.ok(body._date_modified > created._date_modified);
    const read = (await call('GET', `/ceps/read/${APP}/${created._id}`)).json();
    assert.deepEqual(read, { _id: created._id, _date_created: created._date_created, _date_modified: body._date_modified, title: 'bye' });

    const missing = await call('PUT', `/ceps/update/${APP}/doesnotexist`, { a: 1 });
    assert.equal(missing.statusCode, 404);
    assert.equal((await call('GET', `/ceps/read/${APP}/doesnotexist`)).statusCode, 404);
  });

  test(`${label} CEPS update: each date strictly later than the last`, async () => {
    const { _id } = await write({ i: -1 });
    let last = 0;
    for (let i = 0; i < 20; i++) {
      const m = (await call('PUT', `/ceps/update/${APP}/${_id}`, { i })).json()._date_modified as number;
      assert.ok(m > last);
      last = m;
    }
  });

  test(`${label} CEPS update: a record of exactly the limit is written, one byte more is 413 and writes nothing`, async () => {
    const { _id } = await write({ blob: '' });
    const fill = MAX_RECORD_BYTES - recordBytes({ blob: '' });
    const fits = await call('PUT', `/ceps/update/${APP}/${_id}`, { blob: 'x'.repeat(fill) });
    assert.equal(fits.statusCode, 200, fits.body.slice(0, 200));
    const over = await call('PUT', `/ceps/update/${APP}/${_id}`, { blob: 'y'.repeat(fill + 1) });
    assert.equal(over.statusCode, 413);
    assert.equal(over.json().error, 'too_large');
    assert.equal((await call('GET', `/ceps/read/${APP}/${_id}`)).json().blob, 'x'.repeat(fill));
  });

  test(`${label} FEPS merge: exactly at the limit after merging is written, one byte more is 413`, async () => {
    const { _id } = await write({ a: 'x'.repeat(1000) });
    const fill = MAX_RECORD_BYTES - recordBytes({ a: 'x'.repeat(1000), b: '' });
    const over = await call('PUT', `/feps/update/${APP}/${_id}`, { b: 'y'.repeat(fill + 1) });
    assert.equal(over.statusCode, 413);
    assert.equal(over.json().error, 'too_large');
    assert.equal('b' in (await call('GET', `/ceps/read/${APP}/${_id}`)).json(), false);
    const fits = await call('PUT', `/feps/update/${APP}/${_id}`, { b: 'y'.repeat(fill) });
    assert.equal(fits.statusCode, 200, fits.body.slice(0, 200));
    const read = (await call('GET', `/ceps/read/${APP}/${_id}`)).json();
    assert.equal(read.a.length + read.b.length, 1000 + fill);
  });

  test(`${label} FEPS merge: concurrent merges of one record all land; absent is 404`, async () => {
    const { _id } = await write({ base: true });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => call('PUT', `/feps/update/${APP}/${_id}`, { [`f${i}`]: i })));
    for (const a of answers) assert.equal(a.statusCode, 200, a.body);
    const read = (await call('GET', `/ceps/read/${APP}/${_id}`)).json();
    for (let i = 0; i < 20; i++) assert.equal(read[`f${i}`], i, `f${i} was lost`);
    assert.equal(read.base, true);
    assert.equal((await call('PUT', `/feps/update/${APP}/nope`, { b: 2 })).statusCode, 404);
  });

  test(`${label} FEPS merge: concurrent merges by dotted keys all land, with a replace among them; absent is 404`, async () => {
    const { _id } = await write({ m: {} });
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => call('PUT', `/feps/update/${APP}/${_id}`, { [`m.k${i}`]: i, [`n${i % 7}.v${i}`]: i })));
    for (const a of answers) assert.equal(a.statusCode, 200, a.body);
    const read = (await call('GET', `/ceps/read/${APP}/${_id}`)).json();
    for (let i = 0; i < 40; i++) {
      assert.equal(read.m[`k${i}`], i, `m.k${i} was lost`);
      assert.equal(read[`n${i % 7}`][`v${i}`], i, `n${i % 7}.v${i} was lost`);
    }
    // A replace racing merges: whatever order they land in, the last write's view wins whole.
    const raced = await Promise.all([
      ...Array.from({ length: 12 }, (_, i) => call('PUT', `/feps/update/${APP}/${_id}`, { [`m.r${i}`]: i })),
      call('PUT', `/ceps/update/${APP}/${_id}`, { m: 5 }),
    ]);
    // A merge after the replace meets m: 5 and is refused (a path through a number); one
    // before it is undone by it. No merge may write back a record it read before the replace.
    for (const r of raced.slice(0, -1)) assert.ok([200, 400].includes(r.statusCode), r.body);
    assert.equal(raced.at(-1)!.statusCode, 200);
    const final = (await call('GET', `/ceps/read/${APP}/${_id}`)).json();
    assert.deepEqual([final.m, final._date_modified], [5, raced.at(-1)!.json()._date_modified]);
    assert.equal((await call('PUT', `/feps/update/${APP}/nope`, { 'b.c': 2 })).statusCode, 404);
  });

  test(`${label} FEPS merge: a dotted key sets the nested field, as freezr's $set does; whole writes keep dots as they are`, async () => {
    const { _id } = await write({ extra: { nested: true, other: 1 }, scalar: 5, list: [1] });
    const merged = await call('PUT', `/feps/update/${APP}/${_id}`, { 'extra.nested': false, 'extra.deep.er': 'x', 'fresh.one': 1, top: 't' });
    assert.equal(merged.statusCode, 200, merged.body);
    const read = async (id: string) => (await call('GET', `/ceps/read/${APP}/${encodeURIComponent(id)}`)).json();
    const after = await read(_id);
    assert.deepEqual([after.extra, after.fresh, after.top, after['extra.nested']], [{ nested: false, other: 1, deep: { er: 'x' } }, { one: 1 }, 't', undefined]);
    for (const [key, why] of [['scalar.x', /"scalar" holds a number/], ['list.0', /"list" holds an array/], ['a..b', /empty part/], ['__proto__.polluted', /__proto__/], ['extra.__proto__', /__proto__/]] as const) {
      const refused = await call('PUT', `/feps/update/${APP}/${_id}`, { [key]: 1, top: 'changed' });
      assert.equal(refused.statusCode, 400, key);
      assert.equal(refused.json().error, 'invalid_record');
      assert.match(refused.json().message, why);
    }
    assert.deepEqual(await read(_id), after, 'a refused merge changes nothing');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // Other names of Object.prototype are ordinary fields.
    assert.equal((await call('PUT', `/feps/update/${APP}/${_id}`, { 'constructor.prototype': 1 })).statusCode, 200);
    assert.deepEqual((await read(_id)).constructor, { prototype: 1 });

    // By query, every match; and a partial upsert that creates nests too.
    const second = await write({ group: 'g', extra: { nested: true } });
    const byQuery = await call('PUT', `/feps/update/${APP}`, { q: { group: 'g' }, keys: { 'extra.flag': 2 } });
    assert.equal(byQuery.json().nModified, 1, byQuery.body);
    assert.deepEqual((await read(second._id)).extra, { nested: true, flag: 2 });
    const upserted = await call('POST', `/feps/write/${APP}/made-by-upsert?upsert=true`, { 'a.b': 1 });
    assert.equal(upserted.statusCode, 200, upserted.body);
    assert.deepEqual((await read('made-by-upsert')).a, { b: 1 });

    // A field and a path into it in one update are refused whatever their order, as MongoDB does.
    for (const patch of [{ extra: 5, 'extra.b': 2 }, { 'extra.b': 2, extra: 5 }, { 'extra.b': 1, 'extra.b.c': 2 }]) {
      const res = await call('PUT', `/feps/update/${APP}/${second._id}`, patch);
      assert.equal(res.statusCode, 400, JSON.stringify(patch));
      assert.match(res.json().message, /overlaps/);
    }
    // A dotted key nests as deep as its path: past the record depth limit it is refused (a whole write would be).
    const deep = (n: number) => Array.from({ length: n }, (_, i) => `d${i}`).join('.');
    for (const [n, value] of [[99, { leaf: { x: 1 } }], [100, 1], [150, 1], [3000, 1]] as const) {
      const res = await call('PUT', `/feps/update/${APP}/${second._id}`, { [deep(n)]: value });
      assert.equal(res.statusCode, 400, `${n} segments: ${res.body}`);
      assert.match(res.json().message, /nested|deeper/);
    }
    // Exactly the limit: the record, 98 objects on the path, the value's object is the 100th level.
    assert.equal((await call('PUT', `/feps/update/${APP}/${second._id}`, { [deep(99)]: { leaf: 1 } })).statusCode, 200);
    const many = Object.fromEntries(Array.from({ length: 8000 }, (_, i) => [`wide.k${i}`, i]));
    assert.equal((await call('PUT', `/feps/update/${APP}/${second._id}`, many)).statusCode, 200);
    const wide = (await read(second._id)).wide as Record<string, number>;
    assert.deepEqual([Object.keys(wide).length, wide.k0, wide.k7999], [8000, 0, 7999]);
    const query = await call('POST', `/ceps/query/${APP}`, { q: { group: 'g' } });
    assert.equal(query.statusCode, 200, 'the table stays queryable');

    // A record written whole keeps a dotted key as a key.
    const literal = await write({ 'a.b': 1 });
    assert.equal((await read(literal._id))['a.b'], 1);
  });
}

forEachRecordBackend('updates over HTTP', 'fh_hu_', updateTests);
