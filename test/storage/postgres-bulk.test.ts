import { test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import type { Condition } from '../../src/query/types.js';
import type { StoredRecord } from '../../src/storage/types.js';
import { postgresSuite } from '../helpers/postgres.js';
import { until } from '../helpers/until.js';

/**
 * The PostgreSQL store's update and delete by query (RecordStore.updateWhere and
 * deleteWhere): each a transaction of its own, in its place in the owner's write
 * order, reading its matches after the owner's lock and locking them, so a write
 * called before it is seen, one called after it is not undone, and a row another
 * connection is changing is judged on what that connection commits.
 */

const T = 'com.example.notes';
const kindIs = (value: string): Condition => ({ op: 'eq', path: ['kind'], value });
const rec = (id: string, fields: Record<string, unknown>): StoredRecord => ({ _id: id, _date_created: 1, _date_modified: 1, ...fields });
/** Some backend waits on another transaction: a row lock. */
const waitingOnRowLock = (admin: pg.Pool) => async (): Promise<boolean> =>
  (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'`)).rows[0]!.n > 0;
const tag = (r: StoredRecord): StoredRecord => ({ ...r, tagged: true, _date_modified: r._date_modified + 1 });

postgresSuite('postgres bulk writes', 'fh_bk_', (scratch) => {
  const withStore = scratch.withStore.bind(scratch);

  /**
   * Runs `bulk` while another connection, outside the owner's lock, has record `a`
   * changed by `patch` (merged into its data) and not yet committed; commits once `bulk`
   * waits on that row, and answers what `bulk` answered.
   */
  async function racingAnotherConnection<T>(schema: string, patch: object, bulk: () => Promise<T>): Promise<T> {
    const other = await scratch.admin.connect();
    try {
      await other.query('BEGIN');
      await other.query(`UPDATE "${schema}".records SET data = data || $1::jsonb WHERE owner = 'o' AND id = 'a'`, [JSON.stringify(patch)]);
      const answer = bulk();
      await until('the bulk write waits on the row lock', waitingOnRowLock(scratch.admin));
      await other.query('COMMIT');
      return await answer;
    } finally {
      other.release();
    }
  }

  test('postgres deleteWhere/updateWhere: in call order with the writes around them, and in the change feed in that order', () =>
    withStore({}, async (s) => {
      await s.put('o', T, rec('a', { kind: 'x' }));
      // Called together without waiting: b is written before the delete, c after it.
      const b = s.put('o', T, rec('b', { kind: 'x' }));
      const deleted = s.deleteWhere('o', T, kindIs('x'), 100);
      const c = s.put('o', T, rec('c', { kind: 'x' }));
      const updated = s.updateWhere('o', T, kindIs('x'), 100, tag);
      const d = s.put('o', T, rec('d', { kind: 'x' }));
      await Promise.all([b, c, d]);
      assert.equal(await deleted, 2);
      assert.equal(await updated, 1);
      assert.equal(await s.get('o', T, 'a'), null);
      assert.equal(await s.get('o', T, 'b'), null);
      assert.equal((await s.get('o', T, 'c'))!.tagged, true);
      assert.deepEqual(await s.get('o', T, 'd'), rec('d', { kind: 'x' }));
      const feed = (await s.changes('o', 0, 100)).map((ch) => `${ch.op}:${ch.id}`);
      assert.deepEqual(feed.slice(0, 2), ['put:a', 'put:b']);
      assert.deepEqual(feed.slice(2, 4).sort(), ['delete:a', 'delete:b']);
      assert.deepEqual(feed.slice(4), ['put:c', 'put:c', 'put:d']);
    }));

  test('postgres deleteWhere: a match another connection is changing is judged on what it commits', () =>
    withStore({}, async (s, _app, schema) => {
      await s.put('o', T, rec('a', { kind: 'x' }));
      await s.put('o', T, rec('b', { kind: 'x' }));
      assert.equal(await racingAnotherConnection(schema, { kind: 'kept' }, () => s.deleteWhere('o', T, kindIs('x'), 100)), 1);
      assert.equal((await s.get('o', T, 'a'))!.kind, 'kept', 'no longer a match when its change committed: not deleted');
      assert.equal(await s.get('o', T, 'b'), null);
    }));

  test('postgres updateWhere: builds on the version another connection commits; a refused record rolls back all', () =>
    withStore({}, async (s, _app, schema) => {
      await s.put('o', T, rec('a', { kind: 'x' }));
      await s.put('o', T, rec('b', { kind: 'x' }));
      assert.equal(await racingAnotherConnection(schema, { note: 'meanwhile' }, () => s.updateWhere('o', T, kindIs('x'), 100, tag)), 2);
      assert.deepEqual(await s.get('o', T, 'a'), { ...rec('a', { kind: 'x', note: 'meanwhile', tagged: true }), _date_modified: 2 });

      const refuse = (r: StoredRecord): StoredRecord => {
        if (r._id === 'b') throw new Error('too large');
        return { ...r, more: true };
      };
      await assert.rejects(s.updateWhere('o', T, kindIs('x'), 100, refuse), /too large/);
      assert.equal((await s.get('o', T, 'a'))!.more, undefined);
      assert.equal((await s.get('o', T, 'b'))!.more, undefined);
      // The owner's writes go on after a refused one.
      await s.put('o', T, rec('c', { kind: 'y' }));
      assert.equal(await s.deleteWhere('o', T, kindIs('y'), 100), 1);
    }));
});
