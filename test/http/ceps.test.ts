import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';

const APP = 'com.example.notes';
let server: TestServer;
let alice: string; // app token for alice / APP
let bob: string; // app token for bob / APP
let aliceOther: string; // alice's token for another app

function call(method: string, url: string, token: string | undefined, payload?: unknown, headers: Record<string, string> = {}) {
  return server.app.inject({
    method: method as 'GET', url, ...(payload === undefined ? {} : { payload: payload as object }),
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
}

before(async () => {
  server = await startTestServer();
  await server.addUser('alice');
  await server.addUser('bob');
  alice = await server.appToken('alice', APP);
  bob = await server.appToken('bob', APP);
  aliceOther = await server.appToken('alice', 'com.example.other');
});
after(() => server.close());

describe('ping', () => {
  test('without a token says not logged in', async () => {
    const res = await call('GET', '/ceps/ping', undefined);
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.logged_in, false);
    assert.equal(body.server_type, 'freehold');
    assert.equal(body.ceps_version, '2.0');
    assert.equal(typeof body.server_version, 'string');
  });
  test('with a bad token is not an error', async () => {
    const res = await call('GET', '/ceps/ping', 'not-a-real-token-but-long-enough');
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().logged_in, false);
  });
  test('with a good token names the user', async () => {
    const res = await call('GET', '/ceps/ping', alice);
    assert.deepEqual([res.json().logged_in, res.json().user_id], [true, 'alice']);
  });
  test('the answer is written byte for byte as the response schema it describes would serialise it', async () => {
    const doc = (await server.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const { default: build } = await import('fast-json-stringify');
    for (const api of ['ceps', 'feps']) {
      const schema = doc.paths[`/${api}/ping`].get.responses['200'].content['application/json'].schema;
      const serialise = build(schema);
      for (const token of [undefined, 'not-a-real-token-but-long-enough', alice]) {
        const res = await call('GET', `/${api}/ping`, token);
        assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
        assert.equal(res.body, serialise(res.json()), `${api} with ${token ? 'a token' : 'none'}`);
        // Nothing the schema would drop: every field of the answer is in the schema.
        assert.deepEqual(Object.keys(res.json()).filter((k) => !(k in schema.properties)), []);
      }
    }
  });
  test('also at /feps/ping, as freezr serves it', async () => {
    const res = await call('GET', '/feps/ping', alice);
    assert.equal(res.statusCode, 200);
    assert.deepEqual([res.json().logged_in, res.json().user_id, res.json().server_type], [true, 'alice', 'freehold']);
    assert.equal((await call('GET', '/feps/ping', undefined)).json().logged_in, false);
  });
});

describe('write, read, update, delete', () => {
  test('full lifecycle keeps reserved fields straight', async () => {
    const w = await call('POST', `/ceps/write/${APP}`, alice, { title: 'hello', n: 1 });
    assert.equal(w.statusCode, 200);
    const created = w.json();
    assert.match(created._id, /^[A-Za-z0-9_-]{22,}$/);
    assert.equal(created._date_created, created._date_modified);
    assert.ok(Math.abs(created._date_created - Date.now()) < 60_000, 'dates are epoch ms');

    const r = await call('GET', `/ceps/read/${APP}/${created._id}`, alice);
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { title: 'hello', n: 1, ...created });

    const u = await call('PUT', `/ceps/update/${APP}/${created._id}`, alice, { title: 'bye' });
    assert.equal(u.statusCode, 200);
    const updated = u.json();
    assert.equal(updated._id, created._id);
    assert.equal(updated._date_created, created._date_created);
    assert.ok(updated._date_modified > created._date_modified);
    const r2 = (await call('GET', `/ceps/read/${APP}/${created._id}`, alice)).json();
    assert.equal(r2.title, 'bye');
    assert.equal('n' in r2, false, 'update replaces every non-reserved field');

    const d = await call('DELETE', `/ceps/delete/${APP}/${created._id}`, alice);
    assert.equal(d.statusCode, 200);
    assert.deepEqual(d.json(), { _id: created._id, _date_created: created._date_created, _date_modified: updated._date_modified, success: true });
    assert.equal((await call('GET', `/ceps/read/${APP}/${created._id}`, alice)).statusCode, 404);
    assert.equal((await call('DELETE', `/ceps/delete/${APP}/${created._id}`, alice)).statusCode, 404);
  });

  test("a DELETE sent as freezr's library sends it (Content-Type JSON, no body) works; an empty JSON body to write is still 400", async () => {
    const id = (await call('POST', `/ceps/write/${APP}`, alice, { gone: 'soon' })).json()._id as string;
    const d = await call('DELETE', `/ceps/delete/${APP}/${id}`, alice, undefined, { 'content-type': 'application/json' });
    assert.equal(d.statusCode, 200, d.body);
    assert.equal(d.json().success, true);
    const empty = await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, payload: '' });
    assert.equal(empty.statusCode, 400);
    assert.equal(empty.json().error, 'bad_request');
    // Fastify's own checks still apply to bodies that are there.
    const poisoned = await server.app.inject({ method: 'DELETE', url: `/feps/delete/${APP}`, headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1}}' });
    assert.equal(poisoned.statusCode, 400);
  });

  test('a body that is not UTF-8, or holds a number beyond a double, is refused and nothing is stored', async () => {
    const send = (payload: Buffer | string) => server.app.inject({
      method: 'POST', url: `/ceps/write/${APP}.strict`, headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, payload,
    });
    const latin1 = await send(Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]));
    assert.equal(latin1.statusCode, 400, latin1.body);
    assert.deepEqual(Object.keys(latin1.json()).sort(), ['error', 'message']);
    assert.equal(latin1.json().error, 'bad_request');
    assert.match(latin1.json().message, /UTF-8/);
    for (const big of ['{"n":1e400}', '{"a":{"b":[1,-2E+999]}}', `{"n":${'9'.repeat(400)}}`]) {
      const res = await send(big);
      assert.equal(res.statusCode, 400, big);
      assert.match(res.json().message, /too large/, big);
    }
    // The same shapes within range, and such text inside strings, are ordinary records.
    const fine = await send(`{"n":1e300,"m":-1.5e-400,"s":"1e400 and ${'9'.repeat(400)}","u":"café 😀"}`);
    assert.equal(fine.statusCode, 200, fine.body);
    const stored = (await call('GET', `/ceps/read/${APP}.strict/${fine.json()._id}`, alice)).json();
    assert.deepEqual([stored.n, stored.m, stored.u], [1e300, 0, 'café 😀'], 'an underflow reads as 0, as any JSON reader gives it');
    const all = (await call('GET', `/ceps/query/${APP}.strict`, alice)).json() as unknown[];
    assert.equal(all.length, 1, 'only the good record was stored');
  });

  test("accepts freezr's { _entity } wrapper and collections", async () => {
    const w = await call('POST', `/ceps/write/${APP}.tasks`, alice, { _entity: { done: false } });
    assert.equal(w.statusCode, 200);
    const r = await call('GET', `/ceps/read/${APP}.tasks/${w.json()._id}`, alice);
    assert.equal(r.json().done, false);
  });

  test('reserved fields from the client are ignored, other _ fields refused', async () => {
    const w = await call('POST', `/ceps/write/${APP}`, alice, { _id: 'mine', _date_created: 1, _owner: 'bob', a: 1 });
    assert.equal(w.statusCode, 200);
    assert.notEqual(w.json()._id, 'mine');
    const r = (await call('GET', `/ceps/read/${APP}/${w.json()._id}`, alice)).json();
    assert.notEqual(r._date_created, 1);
    assert.equal(r._owner, undefined);
    const bad = await call('POST', `/ceps/write/${APP}`, alice, { _secret: 1 });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error, 'invalid_record');
  });

  test('update never upserts', async () => {
    const res = await call('PUT', `/ceps/update/${APP}/doesnotexist`, alice, { a: 1 });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error, 'not_found');
  });

  test('every update date is strictly greater', async () => {
    const id = (await call('POST', `/ceps/write/${APP}`, alice, { i: 0 })).json()._id;
    let last = 0;
    for (let i = 1; i <= 5; i++) {
      const m = (await call('PUT', `/ceps/update/${APP}/${id}`, alice, { i })).json()._date_modified;
      assert.ok(m > last);
      last = m;
    }
  });
});

describe('queries', () => {
  const T = `${APP}.q`;
  before(async () => {
    for (const [i, rec] of [{ k: 'a', n: 5 }, { k: 'b', n: '5' }, { k: 'c', n: 7, tag: 'x' }, { k: 'd', n: 9, tag: 'y', nest: { deep: 'z' } }].entries()) {
      await call('POST', `/ceps/write/${T}`, alice, { ...rec, i });
    }
  });

  test('GET returns an array, newest first', async () => {
    const res = await call('GET', `/ceps/query/${T}`, alice);
    assert.equal(res.statusCode, 200);
    const rows = res.json();
    assert.ok(Array.isArray(rows));
    assert.equal(rows.length, 4);
    type Row = { _id: string; _date_modified: number };
    const expected = [...rows].sort((a: Row, b: Row) => b._date_modified - a._date_modified || (a._id < b._id ? -1 : 1));
    assert.deepEqual(rows.map((r: Row) => r._id), expected.map((r: Row) => r._id));
  });

  test('field names of any script, with spaces, are queried and sorted as they are written', async () => {
    const table = `${APP}.intl`;
    for (const rec of [{ 'ключ': 'значение', 'prix (€)': 3, 'nested': { '名前': 'a' } }, { 'ключ': 'другое', 'prix (€)': 1, 'nested': { '名前': 'b' } }]) {
      assert.equal((await call('POST', `/ceps/write/${table}`, alice, rec)).statusCode, 200);
    }
    const post = async (body: object) => {
      const res = await call('POST', `/ceps/query/${table}`, alice, body);
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as Array<Record<string, unknown>>).map((r) => r['ключ']);
    };
    assert.deepEqual(await post({ q: { 'ключ': 'значение' } }), ['значение']);
    assert.deepEqual(await post({ q: { 'nested.名前': 'b' } }), ['другое']);
    assert.deepEqual(await post({ q: { 'prix (€)': { $gt: 0 } }, sort: { 'prix (€)': 1 } }), ['другое', 'значение']);
    const get = await call('GET', `/ceps/query/${table}?${encodeURIComponent('ключ')}=${encodeURIComponent('другое')}`, alice);
    assert.deepEqual((get.json() as Array<Record<string, unknown>>).map((r) => r['prix (€)']), [1]);
    const quoted = await call('POST', `/ceps/query/${table}`, alice, { q: { "it's": 1 } });
    assert.equal(quoted.statusCode, 400, 'quotes stay out of field paths');
    assert.equal(quoted.json().error, 'invalid_query');
  });

  test('GET equality with true or false matches the boolean or the string', async () => {
    const table = `${APP}.flags`;
    for (const rec of [{ k: 'no', done: false }, { k: 'yes', done: true }, { k: 'text', done: 'false' }, { k: 'zero', done: 0 }]) {
      assert.equal((await call('POST', `/ceps/write/${table}`, alice, rec)).statusCode, 200);
    }
    const keys = async (qs: string) => ((await call('GET', `/ceps/query/${table}?${qs}`, alice)).json() as Array<{ k: string }>).map((r) => r.k).sort();
    assert.deepEqual(await keys('done=false'), ['no', 'text']);
    assert.deepEqual(await keys('done=true'), ['yes']);
    assert.deepEqual(await keys('done=False'), [], 'only the exact words');
  });

  test('GET equality with numeric-looking values matches string or number', async () => {
    const rows = (await call('GET', `/ceps/query/${T}?n=5`, alice)).json();
    assert.deepEqual(rows.map((r: { k: string }) => r.k).sort(), ['a', 'b']);
    const rows2 = (await call('GET', `/ceps/query/${T}?tag=x`, alice)).json();
    assert.deepEqual(rows2.map((r: { k: string }) => r.k), ['c']);
  });

  test('GET _count, _skip and modified bounds', async () => {
    const all = (await call('GET', `/ceps/query/${T}`, alice)).json();
    const page = (await call('GET', `/ceps/query/${T}?_count=2&_skip=1`, alice)).json();
    assert.deepEqual(page.map((r: { _id: string }) => r._id), all.slice(1, 3).map((r: { _id: string }) => r._id));
    const oldest = all[all.length - 1];
    const after = (await call('GET', `/ceps/query/${T}?_modified_after=${oldest._date_modified}`, alice)).json();
    assert.ok(after.every((r: { _date_modified: number }) => r._date_modified > oldest._date_modified));
    const before2 = (await call('GET', `/ceps/query/${T}?_modified_before=${oldest._date_modified}`, alice)).json();
    assert.equal(before2.length, 0);
  });

  test('GET bad parameters are refused', async () => {
    for (const qs of ['_count=0', '_count=5001', '_count=abc', '_skip=-1', '_modified_after=yesterday', '$where=1', '_secret=1', 'a=1&a=2', 'a=%ZZ', 'a%2=1', 'a=50%']) {
      const res = await call('GET', `/ceps/query/${T}?${qs}`, alice);
      assert.equal(res.statusCode, 400, qs);
      assert.equal(typeof res.json().message, 'string');
    }
  });

  test('GET filters are capped at 200 conditions, as POST queries are', async () => {
    const filters = (n: number) => Array.from({ length: n }, (_, i) => `f${i}=${i}`).join('&');
    const at = await call('GET', `/ceps/query/${T}?${filters(200)}`, alice);
    assert.equal(at.statusCode, 200, at.body);
    for (const n of [201, 1000]) {
      const over = await call('GET', `/ceps/query/${T}?${filters(n)}`, alice);
      assert.equal(over.statusCode, 400, `${n} filters`);
      assert.deepEqual(over.json(), { error: 'invalid_query', message: 'Query has more than 200 conditions' });
    }
  });

  test('POST q with operators, sort, count, skip', async () => {
    const res = await call('POST', `/ceps/query/${T}`, alice, { q: { n: { $gt: 5 } }, sort: { n: 1 } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json().map((r: { k: string }) => r.k), ['c', 'd']);
    const or = (await call('POST', `/ceps/query/${T}`, alice, { q: { $or: [{ k: 'a' }, { tag: 'y' }] }, sort: { k: -1 } })).json();
    assert.deepEqual(or.map((r: { k: string }) => r.k), ['d', 'a']);
    const nested = (await call('POST', `/ceps/query/${T}`, alice, { q: { 'nest.deep': 'z' } })).json();
    assert.deepEqual(nested.map((r: { k: string }) => r.k), ['d']);
    const paged = (await call('POST', `/ceps/query/${T}`, alice, { q: {}, sort: { i: 1 }, count: 2, skip: 1 })).json();
    assert.deepEqual(paged.map((r: { k: string }) => r.k), ['b', 'c']);
  });

  test('POST blocked operators and bad shapes are 400', async () => {
    for (const body of [
      { q: { $where: 'this.a' } }, { q: { a: { $function: {} } } }, { q: { $expr: {} } }, { q: { a: { $accumulator: 1 } } },
      { q: { a: { $regex: '.*(a+)+$' } } }, { q: { a: { $bogus: 1 } } }, { q: 'string' }, { q: {}, count: 5001 }, { q: {}, sort: { a: 2 } },
    ]) {
      const res = await call('POST', `/ceps/query/${T}`, alice, body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.equal(res.json().error, 'invalid_query');
    }
  });
});

describe('auth and isolation', () => {
  test('missing, garbage and expired tokens are 401', async () => {
    const expired = await server.appToken('alice', APP, -1000);
    for (const token of [undefined, 'garbage', 'x'.repeat(43), expired]) {
      const res = await call('POST', `/ceps/write/${APP}`, token, { a: 1 });
      assert.equal(res.statusCode, 401, String(token));
      assert.ok(['unauthorized', 'token_expired'].includes(res.json().error));
    }
    const exp = await call('GET', `/ceps/query/${APP}`, await server.appToken('alice', APP, -1));
    assert.equal(exp.json().error, 'token_expired');
  });

  test('a cookie never authenticates CEPS', async () => {
    const cookie = await server.signIn('alice');
    const res = await call('GET', `/ceps/query/${APP}`, undefined, undefined, { cookie });
    assert.equal(res.statusCode, 401);
  });

  test("an app's token cannot reach another app's tables", async () => {
    const id = (await call('POST', `/ceps/write/${APP}`, alice, { secret: 's' })).json()._id;
    for (const [m, url, body] of [
      ['GET', `/ceps/read/${APP}/${id}`], ['GET', `/ceps/query/${APP}`], ['POST', `/ceps/query/${APP}`, { q: {} }],
      ['PUT', `/ceps/update/${APP}/${id}`, { x: 1 }], ['DELETE', `/ceps/delete/${APP}/${id}`], ['POST', `/ceps/write/${APP}`, { x: 1 }],
    ] as Array<[string, string, unknown?]>) {
      const res = await call(m, url, aliceOther, body);
      assert.equal(res.statusCode, 403, `${m} ${url}`);
    }
    assert.equal((await call('GET', `/ceps/read/${APP}/${id}`, alice)).json().secret, 's');
  });

  test("user B can never read, query, update or delete user A's records", async () => {
    const id = (await call('POST', `/ceps/write/${APP}`, alice, { mine: 'alice' })).json()._id;
    assert.equal((await call('GET', `/ceps/read/${APP}/${id}`, bob)).statusCode, 404);
    assert.equal((await call('GET', `/ceps/read/${APP}/${id}?owner_id=alice`, bob)).statusCode, 404);
    const q = (await call('GET', `/ceps/query/${APP}?mine=alice`, bob)).json();
    assert.deepEqual(q, []);
    assert.deepEqual((await call('POST', `/ceps/query/${APP}`, bob, { q: {}, owner_id: 'alice' })).statusCode, 404);
    assert.equal((await call('PUT', `/ceps/update/${APP}/${id}`, bob, { mine: 'bob' })).statusCode, 404);
    assert.equal((await call('DELETE', `/ceps/delete/${APP}/${id}`, bob)).statusCode, 404);
    assert.equal((await call('GET', `/ceps/read/${APP}/${id}`, alice)).json().mine, 'alice');
  });

  test('owner_id on a write is refused, never applied to the caller\'s own store', async () => {
    const id = (await call('POST', `/ceps/write/${APP}`, alice, { mine: 'alice' })).json()._id;
    for (const [method, url, body] of [
      ['DELETE', `/ceps/delete/${APP}/${id}?owner_id=bob`, undefined],
      ['PUT', `/ceps/update/${APP}/${id}?owner_id=bob`, { mine: 'changed' }],
      ['POST', `/ceps/write/${APP}?owner_id=bob`, { mine: 'new' }],
      ['DELETE', `/feps/delete/${APP}/${id}?owner_id=bob`, undefined],
      ['DELETE', `/ceps/delete/${APP}/${id}?owner_id[]=bob`, undefined],
      ['DELETE', `/ceps/delete/${APP}/${id}?owner_id=alice&owner_id=bob`, undefined],
    ] as const) {
      const res = await call(method, url, alice, body);
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      assert.equal(res.json().error, 'forbidden');
    }
    // freezr's client sends it beside the record or query in a FEPS body.
    for (const [method, url, body] of [
      ['DELETE', `/feps/delete/${APP}`, { q: {}, owner_id: 'bob' }],
      ['DELETE', `/feps/delete/${APP}/${id}`, { owner_id: 'bob' }],
      ['PUT', `/feps/update/${APP}/${id}?replaceAllFields=true`, { _entity: { mine: 'changed' }, owner_id: 'bob' }],
      ['PUT', `/feps/update/${APP}`, { q: {}, keys: { mine: 'changed' }, owner_id: 'bob' }],
      ['POST', `/feps/write/${APP}`, { _entity: { mine: 'new' }, owner_id: 'bob' }],
      // The same route, its path percent-encoded.
      ['DELETE', `/%66eps/delete/${APP}`, { q: {}, owner_id: 'bob' }],
    ] as const) {
      const res = await call(method, url, alice, body);
      assert.equal(res.statusCode, 403, `${method} ${url} ${JSON.stringify(body)}`);
    }
    assert.equal((await call('GET', `/ceps/read/${APP}/${id}`, alice)).json().mine, 'alice', 'the record is untouched');
    // A read by POST may name another owner (who then decides: here, nothing to see).
    assert.equal((await call('POST', `/ceps/query/${APP}?owner_id=bob`, alice, { q: {} })).statusCode !== 403, true);
    assert.equal((await call('DELETE', `/ceps/delete/${APP}/${id}?owner_id=alice`, alice)).statusCode, 200, 'naming oneself is fine');
  });
});

describe('bad input', () => {
  test('malformed JSON is a JSON 400', async () => {
    const res = await call('POST', `/ceps/write/${APP}`, alice, '{"a":', { 'content-type': 'application/json' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, 'bad_request');
  });
  test('wrong body types are 400', async () => {
    for (const body of ['[1,2]', '"str"', '42', 'null']) {
      const res = await call('POST', `/ceps/write/${APP}`, alice, body, { 'content-type': 'application/json' });
      assert.equal(res.statusCode, 400, body);
    }
  });
  test('bad table names and ids are refused', async () => {
    for (const table of ['notes', 'com..example.x', '-com.example.x', `${APP}.files`, `${APP}.Files`, `${APP}.JOBS`, `${APP}.bad_name`, `${APP}.-x`, 'a'.repeat(101)]) {
      const res = await call('POST', `/ceps/write/${encodeURIComponent(table)}`, alice, { a: 1 });
      assert.ok([400, 403].includes(res.statusCode), table);
    }
    for (const id of ['..', '%2e%2e', 'a%00b', '$where', 'a%2Fb']) {
      const res = await call('GET', `/ceps/read/${APP}/${id}`, alice);
      assert.ok([400, 404].includes(res.statusCode), id);
      assert.equal(typeof res.json().error, 'string');
    }
    // `<app>.` is no collection: refused on every route, never a table of its own.
    for (const [method, url] of [['POST', `/ceps/write/${APP}.`], ['GET', `/ceps/query/${APP}.`], ['POST', `/ceps/query/${APP}.`],
      ['GET', `/ceps/read/${APP}./x`], ['PUT', `/ceps/update/${APP}./x`], ['DELETE', `/ceps/delete/${APP}./x`]] as const) {
      const res = await call(method, url, alice, method === 'GET' || method === 'DELETE' ? undefined : { a: 1 });
      assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`);
      assert.equal(res.json().error, 'invalid_name');
    }
  });
  test('records over 2 MB are 413, nothing written', async () => {
    const before = (await call('GET', `/ceps/query/${APP}.big`, alice)).json().length;
    const res = await call('POST', `/ceps/write/${APP}.big`, alice, { blob: 'x'.repeat(2 * 1024 * 1024 + 10) });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error, 'too_large');
    assert.equal((await call('GET', `/ceps/query/${APP}.big`, alice)).json().length, before);
    // The limit is the record the app sends: a body of exactly 2 MB is taken (the server's id and dates come on top),
    // by write, full update and partial update; one byte more is not.
    const exactly = (n: number) => ({ blob: 'x'.repeat(n - '{"blob":""}'.length) });
    const limit = 2 * 1024 * 1024;
    assert.equal(JSON.stringify(exactly(limit)).length, limit);
    const made = await call('POST', `/ceps/write/${APP}.big`, alice, exactly(limit));
    assert.equal(made.statusCode, 200, made.body);
    assert.equal((await call('POST', `/ceps/write/${APP}.big`, alice, exactly(limit + 1))).statusCode, 413);
    const id = made.json()._id as string;
    assert.equal((await call('PUT', `/ceps/update/${APP}.big/${id}`, alice, exactly(limit))).statusCode, 200);
    assert.equal((await call('PUT', `/ceps/update/${APP}.big/${id}`, alice, exactly(limit + 1))).statusCode, 413);
    assert.equal((await call('PUT', `/feps/update/${APP}.big/${id}`, alice, { blob: 'y'.repeat(limit - '{"blob":""}'.length) })).statusCode, 200);
    assert.equal((await call('PUT', `/feps/update/${APP}.big/${id}`, alice, { blob: 'y'.repeat(limit + 1 - '{"blob":""}'.length) })).statusCode, 413);
  });
  test('records of more than 20,000 fields (nested objects counted) are 400, nothing written', async () => {
    const wide = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 1]));
    const before = (await call('GET', `/ceps/query/${APP}.wide`, alice)).json().length;
    assert.equal((await call('POST', `/ceps/write/${APP}.wide`, alice, wide(19_999))).statusCode, 200, "the record's own fields and nested ones: 19,999 is fine");
    for (const body of [wide(20_001), { a: wide(10_000), b: wide(10_001) }, { list: [wide(15_000), wide(6_000)] }]) {
      const res = await call('POST', `/ceps/write/${APP}.wide`, alice, body);
      assert.equal(res.statusCode, 400);
      assert.deepEqual(res.json(), { error: 'invalid_record', message: "A record may have at most 20000 fields, its nested objects' included" });
    }
    // Arrays' elements are not fields.
    assert.equal((await call('POST', `/ceps/write/${APP}.wide`, alice, { list: Array.from({ length: 50_000 }, (_, i) => i) })).statusCode, 200);
    assert.equal((await call('GET', `/ceps/query/${APP}.wide`, alice)).json().length, before + 2);
  });

  test('bodies over the request limit are 413', async () => {
    const res = await call('POST', `/ceps/write/${APP}`, alice, JSON.stringify({ blob: 'x'.repeat(4 * 1024 * 1024) }), { 'content-type': 'application/json' });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error, 'too_large');
  });
  test('unknown API routes are JSON 404s', async () => {
    for (const url of ['/ceps/nope', '/feps/nope', '/acctapi/nope', '/oauth/nope']) {
      const res = await call('GET', url, alice);
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().error, 'not_found');
    }
  });
});
