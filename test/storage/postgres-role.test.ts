import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PostgresRecordStore } from '../../src/storage/postgres/record-store.js';
import { postgresSuite } from '../helpers/postgres.js';

/**
 * A store run as a role that may only read and write the tables, as hosts that keep
 * DDL to an owner role do: once the owner has made the schema, the store starts, reads,
 * writes, hears revocations, and declares indexes the owner already made; an index that
 * is not there yet is refused with what to run instead.
 */

const T = 'com.example.notes';

postgresSuite('postgres as a role without DDL rights', 'fh_role_', (scratch) => {
  test('postgres: a store runs as a role that may only read and write the tables', () =>
    scratch.withStore({}, async (owner, _app, schema) => {
      await owner.ensureIndex('o', T, [['kind']]);
      const role = `fh_rw_${randomBytes(4).toString('hex')}`;
      const admin = scratch.admin;
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      try {
        await admin.query(`GRANT USAGE ON SCHEMA "${schema}" TO ${role}`);
        await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO ${role}`);
        await admin.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA "${schema}" TO ${role}`);
        const u = new URL(scratch.databaseUrl);
        u.username = role;
        u.password = '';
        u.searchParams.set('schema', schema);
        const limited = new PostgresRecordStore(u.toString());
        await limited.init();
        try {
          await limited.ensureIndex('o', T, [['kind']]);
          await limited.put('o', T, { _id: 'a', _date_created: 1, _date_modified: 1, kind: 'x' });
          assert.deepEqual((await limited.query('o', T, { op: 'eq', path: ['kind'], value: 'x' }, { sort: [], skip: 0, limit: 5 })).map((r) => r._id), ['a']);
          assert.equal(await limited.deleteWhere('o', T, { op: 'eq', path: ['kind'], value: 'x' }, 10), 1);
          assert.equal(await owner.get('o', T, 'a'), null);
          await assert.rejects(limited.ensureIndex('o', T, [['other']]), (error: Error) => {
            assert.match(error.message, /may not create the index an app declares/);
            assert.match(error.message, /CREATE INDEX IF NOT EXISTS records_x_\w+ ON "fh_test_\w+"\.records/);
            return true;
          });
        } finally {
          await limited.close();
        }
      } finally {
        await admin.query(`DROP OWNED BY ${role}`);
        await admin.query(`DROP ROLE ${role}`);
      }
    }));

  test('postgres: a store that finds part of its schema missing makes it again', () =>
    scratch.withStore({}, async (first, _app, schema) => {
      await first.put('o', T, { _id: 'a', _date_created: 1, _date_modified: 1 });
      await scratch.admin.query(`DROP INDEX "${schema}".changes_by_owner`);
      await scratch.admin.query(`DROP TRIGGER fh_system_changed ON "${schema}".records`);
      const u = new URL(scratch.databaseUrl);
      u.searchParams.set('schema', schema);
      const second = new PostgresRecordStore(u.toString());
      await second.init();
      await second.close();
      const { rows } = await scratch.admin.query(`SELECT to_regclass($1) IS NOT NULL AS index,
        EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'fh_system_changed' AND tgrelid = to_regclass($2)) AS trigger`,
      [`"${schema}".changes_by_owner`, `"${schema}".records`]);
      assert.deepEqual(rows[0], { index: true, trigger: true });
      assert.ok(await first.get('o', T, 'a'));
    }));

  test('postgres: a store made before records kept their text gets the column, filled, at its next start', () =>
    scratch.withStore({}, async (first, _app, schema) => {
      await first.ensureIndex('o', T, [['kind']]);
      await first.put('o', T, { _id: 'a', _date_created: 1, _date_modified: 1, kind: 'x', n: 1 });
      await first.put('o', T, { _id: 'b', _date_created: 2, _date_modified: 2, kind: 'x', n: 2 });
      // The schema as it was before the column existed.
      await scratch.admin.query(`ALTER TABLE "${schema}".records DROP COLUMN body`);
      const u = new URL(scratch.databaseUrl);
      u.searchParams.set('schema', schema);
      const second = new PostgresRecordStore(u.toString());
      await second.init();
      try {
        const { rows } = await scratch.admin.query(`SELECT count(*)::int AS n FROM "${schema}".records WHERE body IS NULL OR body <> data::text`);
        assert.equal(rows[0].n, 0);
        assert.deepEqual(await second.get('o', T, 'a'), { _id: 'a', _date_created: 1, _date_modified: 1, kind: 'x', n: 1 });
        await second.update!('o', T, 'b', { fields: { n: 3 }, keep: 'all', modified: 5, maxBytes: 10_000, build: (r) => ({ ...r, n: 3 }) });
        const page = await second.queryJson!('o', T, { op: 'eq', path: ['kind'], value: 'x' }, { sort: [], skip: 0, limit: 5 });
        assert.deepEqual((JSON.parse(page) as Array<{ _id: string; n: number }>).map((r) => [r._id, r.n]), [['b', 3], ['a', 1]]);
      } finally {
        await second.close();
      }
    }));

  test('postgres: a role that may not create the tables is told what to do', async () => {
    const role = `fh_rw_${randomBytes(4).toString('hex')}`;
    await scratch.admin.query(`CREATE ROLE ${role} LOGIN`);
    try {
      const u = new URL(scratch.databaseUrl);
      u.username = role;
      u.searchParams.set('schema', scratch.schema());
      await assert.rejects(new PostgresRecordStore(u.toString()).init(), /may not create its tables: .*Start freehold once as a role that may create them/);
    } finally {
      await scratch.admin.query(`DROP ROLE ${role}`);
    }
  });
});
