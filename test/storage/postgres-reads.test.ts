import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { OWNER_LOCK } from '../../src/storage/postgres/sql.js';
import { StatementNames } from '../../src/storage/postgres/statement-names.js';
import type { SharedConnection } from '../../src/storage/postgres/shared-connection.js';
import { validateQuery } from '../../src/query/validate.js';
import type { StoredRecord } from '../../src/storage/types.js';
import { postgresSuite } from '../helpers/postgres.js';

/**
 * How the PostgreSQL store sends queries: as named statements (prepared once per
 * connection), over a shared pipelined connection of their own rather than the
 * write pool, and through the pool while a slow query holds that connection up.
 */

const T = 'com.example.notes';
const rec = (id: string, extra: Record<string, unknown> = {}): StoredRecord => ({ _id: id, _date_created: 1, _date_modified: 1, ...extra });

test('statement names: one name per text, stable, and none past the limit', () => {
  const names = new StatementNames('q', 2);
  const a = names.of('SELECT 1');
  const b = names.of('SELECT 2');
  assert.ok(a && b && a !== b);
  assert.equal(names.of('SELECT 1'), a);
  assert.equal(names.of('SELECT 3'), undefined, 'past the limit a text runs unnamed');
  assert.equal(names.of('SELECT 2'), b, 'named texts keep their names');
});

postgresSuite('postgres reads', 'fh_r_', (scratch) => {
  const { admin } = scratch;
  const withStore = scratch.withStore.bind(scratch);

  /** `p`, or a rejection after `ms`, so a query stuck behind the pool fails the test instead of hanging it. */
  function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: no answer within ${ms} ms`)))]);
  }

  /** Backends of this store's connections waiting on a lock. */
  async function waitingOnLocks(app: string): Promise<number> {
    const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [app]);
    return rows[0].n as number;
  }

  test('postgres reads: a query shape is prepared once, as a named statement', () =>
    withStore({}, async (s) => {
      await s.create('o', T, rec('a', { kind: 'x' }));
      for (const kind of ['x', 'y', 'z']) {
        const { where, options } = validateQuery({ kind }, { count: 10 });
        await s.queryJson('o', T, where, options);
      }
      // The statements a connection has prepared are visible only to that connection.
      const queries = (s as unknown as { queries: SharedConnection }).queries;
      const { rows } = await queries.query<[string, string]>({ text: 'SELECT name, statement FROM pg_prepared_statements', rowMode: 'array' });
      const shapes = rows.filter(([, text]) => /kind/.test(text));
      assert.equal(shapes.length, 1, JSON.stringify(rows));
      assert.match(shapes[0]![0], /^fh_q/);
    }));

  test('postgres reads: queries do not wait for a pooled connection', () =>
    withStore({ pool: '1' }, async (s) => {
      await s.create('o', T, rec('a', { kind: 'x' }));
      const locker = await admin.connect();
      try {
        // The owner's write lock held elsewhere: the store's next write holds its only pooled connection.
        await locker.query('BEGIN');
        await locker.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [OWNER_LOCK, 'o']);
        const write = s.create('o', T, rec('b', { kind: 'x' }));
        await sleep(50);
        const { where, options } = validateQuery({ kind: 'x' }, { count: 10 });
        const got = await within(s.query('o', T, where, options), 2000, 'query while the pool is busy');
        assert.deepEqual(got.map((r) => r._id), ['a']);
        assert.deepEqual(JSON.parse(await within(s.queryJson('o', T, where, options), 2000, 'queryJson while the pool is busy')), [rec('a', { kind: 'x' })]);
        await locker.query('COMMIT');
        await write;
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        locker.release();
      }
    }));

  test('postgres reads: while a slow query holds the query connection, later queries use the pool', () =>
    withStore({}, async (s, app, schema) => {
      await s.create('o', T, rec('a', { kind: 'x' }));
      const { where, options } = validateQuery({ kind: 'x' }, { count: 10 });
      const locker = await admin.connect();
      try {
        // Every read of the table waits for this lock: the first query stalls the shared connection.
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE "${schema}".records IN ACCESS EXCLUSIVE MODE`);
        const first = s.query('o', T, where, options);
        await sleep(100);
        const second = s.query('o', T, where, options);
        // Both wait on the lock, each in its own backend: the second went to the pool, not behind the first.
        let waiting = 0;
        for (let i = 0; i < 100 && waiting < 2; i++) {
          await sleep(20);
          waiting = await waitingOnLocks(app);
        }
        assert.equal(waiting, 2);
        await locker.query('COMMIT');
        assert.deepEqual((await first).map((r) => r._id), ['a']);
        assert.deepEqual((await second).map((r) => r._id), ['a']);
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        locker.release();
      }
    }));
});
