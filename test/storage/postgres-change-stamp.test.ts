import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresRecordStore } from '../../src/storage/postgres/record-store.js';
import { systemChannel } from '../../src/storage/postgres/sql.js';
import { SYSTEM_OWNER, SystemTable } from '../../src/core/system-tables.js';
import { TokenService } from '../../src/core/auth/tokens.js';
import type { StoredRecord } from '../../src/storage/types.js';
import { postgresSuite, type PostgresScratch } from '../helpers/postgres.js';
import { until } from '../helpers/until.js';

/**
 * The PostgreSQL store's change stamp: a trigger notifies on every update or deletion
 * of a system record, whoever makes it, and each store listening moves its stamp; the
 * token cache relies on it to see a revocation made by another process.
 */

const rec = (id: string, extra: Record<string, unknown> = {}): StoredRecord => ({ _id: id, _date_created: 1, _date_modified: 1, ...extra });

postgresSuite('postgres change stamp', 'fh_cs_', (scratch: PostgresScratch) => {
  /** Two stores on one schema, standing for two processes, their connections named `app`. */
  async function twoStores(): Promise<{ a: PostgresRecordStore; b: PostgresRecordStore; schema: string; app: string; close(): Promise<void> }> {
    const schema = scratch.schema();
    const app = `fh_cs_${randomBytes(4).toString('hex')}`;
    const u = new URL(scratch.databaseUrl);
    u.searchParams.set('schema', schema);
    u.searchParams.set('application_name', app);
    const a = new PostgresRecordStore(u.toString());
    const b = new PostgresRecordStore(u.toString());
    await a.init();
    await b.init();
    return { a, b, schema, app, close: async () => { await a.close(); await b.close(); } };
  }

  test('postgres change stamp: the trigger notifies on updates and deletions of system records only', async () => {
    const s = await twoStores();
    const channel = systemChannel(s.schema);
    const heard: string[] = [];
    const listener = new pg.Client({ connectionString: scratch.databaseUrl });
    await listener.connect();
    try {
      listener.on('notification', (n) => { if (n.channel === channel) heard.push(n.payload ?? ''); });
      await listener.query(`LISTEN "${channel}"`);
      // Notifications arrive in commit order: a marker sent after some writes shows whether they notified.
      const mark = async (name: string) => {
        await scratch.admin.query('SELECT pg_notify($1, $2)', [channel, name]);
        await until(`marker ${name}`, () => heard.includes(name));
      };
      await s.b.create('alice', 'com.example.notes', rec('n1'));
      await s.b.put('alice', 'com.example.notes', rec('n1', { v: 2 }));
      await s.b.delete('alice', 'com.example.notes', 'n1');
      await s.b.create(SYSTEM_OWNER, SystemTable.tokens, rec('t1'));
      await mark('one');
      assert.deepEqual(heard, ['one'], 'app records, and new system records, send nothing');
      await s.b.put(SYSTEM_OWNER, SystemTable.tokens, rec('t1', { v: 2 }));
      await s.b.delete(SYSTEM_OWNER, SystemTable.tokens, 't1');
      await mark('two');
      assert.deepEqual(heard, ['one', '', '', 'two'], 'an update and a deletion of a system record each notify');
      // A second schema in the same database has a channel of its own.
      assert.notEqual(systemChannel(scratch.schema()), channel);
    } finally {
      await listener.end();
      await s.close();
    }
  });

  test('postgres change stamp: a revocation by another process is refused from the cache once its notification arrives', async () => {
    const s = await twoStores();
    try {
      let lookups = 0;
      const counted = new Proxy(s.a, {
        get(target, prop) {
          if (prop === 'get') return (...args: Parameters<PostgresRecordStore['get']>) => { lookups++; return target.get(...args); };
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === 'function' ? (value as (...x: unknown[]) => unknown).bind(target) : value;
        },
      });
      // A cache time far longer than the test: only the notification can end the entry.
      const a = new TokenService(counted, 'secret', 600_000);
      const b = new TokenService(s.b, 'secret', 600_000);
      assert.equal(typeof s.a.changeStamp(), 'number', 'listening once init() is done');
      const token = await a.issue({ kind: 'app', userId: 'alice', ownerId: 'alice', appName: 'com.example.notes', expiresAt: Date.now() + 3_600_000 });
      for (let i = 0; i < 3; i++) assert.equal((await a.check(token, 'app')).ok, true);
      assert.equal(lookups, 1, 'checks answered from the cache');
      assert.equal(await b.revoke(token), true);
      await until('the revoked token refused', async () => !(await a.check(token, 'app')).ok);
      assert.deepEqual(await a.check(token, 'app'), { ok: false, reason: 'invalid' });
    } finally {
      await s.close();
    }
  });

  test('postgres change stamp: without its connection the store gives no stamp, and listens again with a new one', async () => {
    const s = await twoStores();
    try {
      const before = s.a.changeStamp();
      assert.equal(typeof before, 'number');
      // Both stores listen; end every listening backend of this schema's stores.
      const { rows } = await scratch.admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'", [s.app]);
      assert.equal(rows.length, 2);
      await until('stamp gone with the connection', () => s.a.changeStamp() === undefined);
      await until('listening again', () => s.a.changeStamp() !== undefined);
      assert.notEqual(s.a.changeStamp(), before, 'what was read while not listening is not trusted');
      // And it hears changes again.
      const now = s.a.changeStamp();
      await s.b.put(SYSTEM_OWNER, SystemTable.tokens, rec('t2'));
      await s.b.delete(SYSTEM_OWNER, SystemTable.tokens, 't2');
      await until('a change heard after listening again', () => s.a.changeStamp() !== now);
    } finally {
      await s.close();
    }
  });
});
