import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresRecordStore, parsePostgresUrl, scopeOf } from '../../src/storage/postgres/record-store.js';
import { openRecordStore } from '../../src/storage/urls.js';
import { recordStoreSuite } from './record-store.suite.js';
import { compilePostgres, compilePostgresOrder, decodeText, encodeText, fromJsonb, toJsonb } from '../../src/query/postgres.js';
import { validateQuery, validateWhere } from '../../src/query/validate.js';
import { compareForSort, compareStrings, matches } from '../../src/query/evaluate.js';
import { FreeholdError } from '../../src/core/errors.js';
import type { StoredRecord } from '../../src/storage/types.js';

/**
 * The backend suite against a real PostgreSQL (DATABASE_URL; scripts/pg-dev.sh
 * starts a throwaway one), each store in its own fresh schema, plus what is
 * particular to PostgreSQL: index use, concurrent init, the pool parameter, the
 * change feed under concurrent writers, and the text encoding for U+0000.
 */

const DATABASE_URL = process.env.DATABASE_URL;

// Compiler tests need no database.
test('postgres compiler: paths are literals only when safe, params match placeholders', () => {
  assert.throws(() => compilePostgres({ op: 'eq', path: ["a'b"], value: 1 }, 'data', []), /Unsafe/);
  assert.throws(() => compilePostgres({ op: 'eq', path: ['a'], value: 1 }, 'data; DROP', []), /Unsafe/);
  assert.throws(() => compilePostgresOrder([{ path: ['a"'], direction: 1 }], 'data'), /Unsafe/);
  const aliased = compilePostgres(validateWhere({ _id: 'x', 'a.b': 'y' }), 'r.data', ['owner', 'tbl']);
  assert.match(aliased, /r\.id = \$3/);
  assert.match(aliased, /\(r\.data -> 'a' -> 'b'\) = \$4::jsonb/);
  const params: unknown[] = ['o', 't'];
  const sql = compilePostgres(validateWhere({
    $or: [{ a: { $in: [1, 2, 'x', 'y', null, true] } }, { _id: { $in: [1, 2] } }, { _date_created: { $regex: 'x' } }],
    b: { $not: { $regex: '^Ab%_\\\\', $options: 'i' } },
    c: { $nin: ['p', 'q'] },
  }), 'data', params);
  const placeholders = [...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
  assert.equal(Math.max(...placeholders), params.length);
  assert.ok(params.includes('ab\\%\\_\\\\%'), 'LIKE wildcards are escaped');
});

test('postgres text encoding: order, prefixes and equality survive; round trip is exact', () => {
  const samples = ['', '\u0000', '\u0001', '\u0002', 'a\u0000', 'a\u0001b', 'a\u0002', '\u0001\u0001', 'a', 'ab\u0000\u0000'];
  for (const s of samples) assert.equal(decodeText(encodeText(s)), s);
  for (const a of samples) {
    for (const b of samples) {
      assert.equal(Math.sign(compareStrings(encodeText(a), encodeText(b))), Math.sign(compareStrings(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
      assert.equal(encodeText(a).startsWith(encodeText(b)), a.startsWith(b));
    }
  }
  const rec = { '\u0000k': ['\u0001', { x: 'a\u0000b' }], plain: 'no escapes \\u0001', lone: '\uD800x' };
  assert.deepEqual(fromJsonb(toJsonb(rec)), { ...rec, lone: '\uFFFDx' });
  assert.equal(toJsonb({ a: 'plain' }), '{"a":"plain"}', 'the common case is plain JSON.stringify');
});

test('postgres URL parameters', () => {
  assert.deepEqual(parsePostgresUrl('postgres://u:p%40ss@h:5432/db?pool=3&schema=fh_x&sslmode=disable'), {
    connectionString: 'postgres://u:p%40ss@h:5432/db?sslmode=disable',
    poolSize: 3,
    schema: 'fh_x',
  });
  assert.deepEqual(parsePostgresUrl('postgresql://h/db'), { connectionString: 'postgresql://h/db', poolSize: 10, schema: null });
  assert.throws(() => parsePostgresUrl('postgres://h/db?pool=0'), /pool/);
  assert.throws(() => parsePostgresUrl('postgres://h/db?pool=abc'), /pool/);
  assert.throws(() => parsePostgresUrl('postgres://h/db?schema=Bad-Name'), /schema/);
  assert.throws(() => parsePostgresUrl('postgres://h/db?schema=x%22%3B%20drop'), /schema/);
  assert.equal(openRecordStore('postgresql://h/db?pool=2').kind, 'postgres');
  assert.equal(openRecordStore('POSTGRES://h/db').kind, 'postgres');
});

if (!DATABASE_URL) {
  if (process.env.CI) {
    test('postgres backend', () => {
      assert.fail('DATABASE_URL is not set: CI must run the PostgreSQL suite (.ci/run starts a cluster and sets it)');
    });
  } else {
    test.skip('postgres backend: DATABASE_URL is not set (run `export DATABASE_URL=$(scripts/pg-dev.sh start)`)');
  }
} else {
  postgresTests(DATABASE_URL);
}

function postgresTests(databaseUrl: string): void {
  const schemas: string[] = [];
  const admin = new pg.Pool({ connectionString: databaseUrl, max: 2 });

  /** A URL for a store in a new schema of its own (created by the store's init). */
  function freshUrl(params: Record<string, string> = {}): string {
    const schema = `fh_test_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    const u = new URL(databaseUrl);
    u.searchParams.set('schema', schema);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.toString();
  }

  after(async () => {
    for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await admin.end();
  });

  recordStoreSuite('postgres', async () => new PostgresRecordStore(freshUrl()));

  test('postgres: an app-declared index serves equality queries in CEPS order; point reads use the primary key', async () => {
    const url = freshUrl();
    const store = new PostgresRecordStore(url);
    await store.init();
    try {
      await store.ensureIndex('o', 'com.a.b', [['kind']]);
      const ops = [];
      for (let i = 0; i < 5000; i++) {
        ops.push({ kind: 'put' as const, table: i % 2 ? 'com.a.b' : 'com.a.c', record: { _id: `r${i}`, _date_created: i, _date_modified: i, kind: `k${i % 100}` } });
      }
      await store.batch('o', ops);
      const schema = parsePostgresUrl(url).schema!;
      const { where, options } = validateQuery({ kind: 'k7' }, { sort: { _date_modified: -1, _id: 1 }, count: 50 });
      const params: unknown[] = [scopeOf('o', 'com.a.b')];
      const cond = compilePostgres(where, 'data', params);
      const order = compilePostgresOrder(options.sort, 'data');
      const explain = async (sql: string, values: unknown[]) => {
        const { rows } = await admin.query(`EXPLAIN (FORMAT JSON) ${sql}`, values);
        return JSON.stringify(rows[0]['QUERY PLAN']);
      };
      // Before statistics exist (a new index) and after ANALYZE: the query reads the field index
      // (in order, or with a sort of the few matches: the planner's choice), never a walk of
      // records_by_modified. A point read uses the primary key, also for an owner the statistics
      // have never seen.
      for (const when of ['before ANALYZE', 'after ANALYZE']) {
        if (when === 'after ANALYZE') await admin.query(`ANALYZE "${schema}".records`);
        const plan = await explain(`SELECT data FROM "${schema}".records WHERE scope = $1 AND ${cond} ORDER BY ${order} LIMIT 50`, params);
        assert.match(plan, /"Index Name":"records_x_[0-9a-f]+"/, `${when}: ${plan}`);
        assert.doesNotMatch(plan, /records_by_modified/, `${when}: ${plan}`);
        for (const owner of ['o', 'new-owner']) {
          const get = await explain(`SELECT data FROM "${schema}".records WHERE owner = $1 AND tbl = $2 AND id = $3`, [owner, 'com.a.b', 'r7']);
          assert.match(get, /"Index Name":"records_pkey"/, `${when}, get for ${owner}: ${get}`);
        }
      }
      const got = await store.query('o', 'com.a.b', where, options);
      assert.equal(got.length, 50);
      assert.deepEqual(got.map((r) => r._id), [...got].sort((a, b) => b._date_modified - a._date_modified).map((r) => r._id));

      // The statements the store runs: the page without array branches beside a guard (is there
      // an array in `kind`?), and once there is, two arms behind that guard of which PostgreSQL
      // runs one; by the field index either way, never a walk of records_by_modified.
      type Page = { text: string; values: unknown[] };
      const statement = (mode: string) => (store as unknown as { pageStatement: (...a: unknown[]) => Page }).pageStatement('o', 'com.a.b', where, options, mode);
      const nodes = async (page: Page): Promise<Array<Record<string, unknown>>> => {
        const { rows } = await admin.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${page.text}`, page.values);
        const all: Array<Record<string, unknown>> = [];
        const walk = (n: Record<string, unknown>): void => {
          all.push(n);
          for (const c of (n.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(c);
        };
        walk(rows[0]['QUERY PLAN'][0].Plan);
        return all;
      };
      const arrayScan = (n: Record<string, unknown>) => n['Function Name'] === 'jsonb_array_elements';
      const usesIndex = (plan: Array<Record<string, unknown>>) => plan.some((n) => /^records_x_/.test(String(n['Index Name'])) && n['Actual Loops'] === 1 && !String(n['Index Cond']).includes("'{}'"));
      const bare = await nodes(statement('bare'));
      assert.ok(usesIndex(bare), JSON.stringify(bare));
      assert.ok(bare.every((n) => n['Index Name'] !== 'records_by_modified' && !arrayScan(n)), JSON.stringify(bare));
      const { rows: guarded } = await admin.query({ text: statement('bare').text, values: statement('bare').values, rowMode: 'array' });
      assert.equal(guarded[0][0], false, 'the guard finds no array');
      const arms = await nodes(statement('arms'));
      assert.ok(usesIndex(arms), JSON.stringify(arms));
      assert.ok(arms.every((n) => n['Index Name'] !== 'records_by_modified'), JSON.stringify(arms));
      assert.ok(arms.filter(arrayScan).every((n) => n['Actual Loops'] === 0), `no array: the array arm never runs: ${JSON.stringify(arms)}`);
      await store.put('o', 'com.a.b', { _id: 'arr', _date_created: 9000, _date_modified: 9000, kind: ['x', 'k7'] });
      const { rows: guardedNow } = await admin.query({ text: statement('bare').text, values: statement('bare').values, rowMode: 'array' });
      assert.equal(guardedNow[0][0], true, 'the guard finds the array');
      const withArrays = await nodes(statement('arms'));
      assert.ok(withArrays.every((n) => n['Index Name'] !== 'records_by_modified'), JSON.stringify(withArrays));
      assert.ok(withArrays.some((n) => arrayScan(n) && Number(n['Actual Loops']) > 0), JSON.stringify(withArrays));
      assert.equal((await store.query('o', 'com.a.b', where, options))[0]!._id, 'arr');
    } finally {
      await store.close();
    }
  });

  test('postgres: two stores initialise one schema concurrently', async () => {
    const url = freshUrl();
    const stores = Array.from({ length: 4 }, () => new PostgresRecordStore(url));
    await Promise.all(stores.map((s) => s.init()));
    await Promise.all(stores.map((s) => s.ensureIndex('o', 't.a.b', [['x'], ['y', 'z']])));
    await stores[0]!.create('o', 'com.a.b', { _id: 'one', _date_created: 1, _date_modified: 1 });
    assert.ok(await stores[3]!.get('o', 'com.a.b', 'one'));
    await Promise.all(stores.map((s) => s.close()));
  });

  test('postgres: the pool parameter bounds connections; other URL parameters reach pg', async () => {
    const app = `fh_pool_${randomBytes(4).toString('hex')}`;
    const store = openRecordStore(freshUrl({ pool: '2', application_name: app }));
    await store.init();
    try {
      // 12 parallel reads: with pool=2 they queue for two connections.
      await Promise.all(Array.from({ length: 12 }, () => store.count('o', 'com.a.b', { op: 'true' })));
      // Beside the pool: the connection listening for changes to system records (change-listener.ts).
      const { rows } = await admin.query("SELECT count(*)::int AS n, count(*) FILTER (WHERE query LIKE 'LISTEN%')::int AS listening FROM pg_stat_activity WHERE application_name = $1", [app]);
      assert.deepEqual(rows[0], { n: 3, listening: 1 });
    } finally {
      await store.close();
    }
  });

  test('postgres: every session the store opens runs without JIT', async () => {
    const store = new PostgresRecordStore(freshUrl());
    await store.init();
    try {
      // Reaching into the store for its connections: nothing public says how they are set up.
      const inner = store as unknown as {
        pool: { query: (sql: string) => Promise<{ rows: Array<{ jit: string }> }> };
        reads: { query: (c: object) => Promise<{ rows: string[][] }> };
        queries: { query: (c: object) => Promise<{ rows: string[][] }> };
      };
      assert.equal((await inner.pool.query('SHOW jit')).rows[0]!.jit, 'off');
      for (const shared of [inner.reads, inner.queries]) {
        assert.deepEqual((await shared.query({ text: 'SHOW jit', rowMode: 'array' })).rows, [['off']]);
      }
    } finally {
      await store.close();
    }
  });

  test('postgres: a change-feed reader never skips a change while two stores write', async () => {
    const url = freshUrl();
    const a = new PostgresRecordStore(url);
    const b = new PostgresRecordStore(url);
    await a.init();
    await b.init();
    const seen = new Set<string>();
    let cursor = 0;
    let writing = true;
    const reader = (async () => {
      for (;;) {
        const done = !writing;
        const batch = await a.changes('o', cursor, 1000);
        for (const c of batch) seen.add(c.id);
        if (batch.length > 0) cursor = batch.at(-1)!.seq;
        if (done && batch.length === 0) break;
      }
    })();
    const writer = (s: PostgresRecordStore, prefix: string) =>
      Promise.all(Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 40; i++) await s.create('o', 'com.a.b', { _id: `${prefix}${w}-${i}`, _date_created: 1, _date_modified: 1 });
      }));
    await Promise.all([writer(a, 'a'), writer(b, 'b')]);
    writing = false;
    await reader;
    assert.equal(seen.size, 640);
    await a.close();
    await b.close();
  });

  test('postgres: strings with U+0000..U+0002 behave as in evaluate.ts', async () => {
    const store = new PostgresRecordStore(freshUrl());
    await store.init();
    try {
      const values = ['', '\u0000', '\u0001', '\u0002', 'a\u0000', 'a\u0001b', 'a\u0002', '\u0001\u0001', '\u0000\u0002', 'x\u0001\u0002', 'A\u0000B'];
      const records: StoredRecord[] = values.map((v, i) => ({ _id: `v${String(i).padStart(2, '0')}`, _date_created: i, _date_modified: i, v, [`k${v}`]: i }));
      for (const r of records) await store.create('o', 'com.a.b', r);
      for (const r of records) assert.deepEqual(await store.get('o', 'com.a.b', r._id), r);
      const needles = ['\u0000', '\u0001', '\u0002', '\u0000\u0002', '\u0001\u0002', '\u0002B', 'a', 'b\u0000'];
      const queries: unknown[] = [
        ...needles.flatMap((n) => [{ v: { $regex: escapeRegex(n) } }, { v: { $regex: '^' + escapeRegex(n) } }, { v: { $regex: escapeRegex(n), $options: 'i' } }]),
        ...values.flatMap((v) => [{ v }, { v: { $gt: v } }, { v: { $lte: v } }, { _id: { $lt: 'v05' + v } }, { _id: { $gte: v } }]),
        { v: { $in: values.slice(0, 5) } },
      ];
      for (const q of queries) {
        const { where, options } = validateQuery(q, { sort: { v: 1, _id: 1 } });
        const want = records.filter((r) => matches(r, where)).sort((x, y) => compareForSort(x, y, options.sort)).map((r) => r._id);
        assert.deepEqual((await store.query('o', 'com.a.b', where, options)).map((r) => r._id), want, JSON.stringify(q));
      }
    } finally {
      await store.close();
    }
  });

  test('postgres: an oversized value in an indexed field is refused as too_large, alone', async () => {
    const store = new PostgresRecordStore(freshUrl());
    await store.init();
    try {
      await store.ensureIndex('o', 'com.a.b', [['big']]);
      // Random text does not compress, so the index entry really is too big.
      const big = randomBytes(6000).toString('base64');
      const results = await Promise.allSettled([
        store.create('o', 'com.a.b', { _id: 'ok1', _date_created: 1, _date_modified: 1 }),
        store.create('o', 'com.a.b', { _id: 'big', _date_created: 1, _date_modified: 1, big }),
        store.create('o', 'com.a.b', { _id: 'ok2', _date_created: 1, _date_modified: 1 }),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
      const reason = (results[1] as PromiseRejectedResult).reason;
      assert.ok(reason instanceof FreeholdError && reason.code === 'too_large', String(reason));
      assert.equal(await store.count('o', 'com.a.b', { op: 'true' }), 2);
    } finally {
      await store.close();
    }
  });
}

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, (c) => '\\' + c);
}
