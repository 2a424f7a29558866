import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { OWNER_LOCK } from '../../src/storage/postgres/sql.js';
import assert from 'node:assert/strict';
import { PostgresRecordStore } from '../../src/storage/postgres/record-store.js';
import { FreeholdError } from '../../src/core/errors.js';
import type { StoredRecord } from '../../src/storage/types.js';
import { postgresSuite } from '../helpers/postgres.js';

/**
 * How the PostgreSQL store sends its work (write-queue.ts, shared-connection.ts):
 * pipelined group commits that keep call order and isolate a failing write, and
 * the shared point-read connection surviving a lost connection.
 */

const T = 'com.example.notes';
const rec = (id: string, extra: Record<string, unknown> = {}): StoredRecord => ({ _id: id, _date_created: 1, _date_modified: 1, ...extra });
const conflict = (e: unknown) => e instanceof FreeholdError && e.code === 'conflict';

postgresSuite('postgres writes', 'fh_w_', (scratch) => {
  const { admin } = scratch;
  const withStore = scratch.withStore.bind(scratch);

  test('postgres writes: writes made together apply in call order, and the feed shows that order', () =>
    withStore({}, async (s) => {
      const results = await Promise.allSettled([
        s.create('o', T, rec('a', { v: 1 })),
        s.replace('o', T, rec('a', { v: 2 })),
        s.create('o', T, rec('a', { v: 3 })),
        s.delete('o', T, 'a'),
        s.create('o', T, rec('a', { v: 4 })),
        s.replace('o', T, rec('b')),
        s.put('o', T, rec('b', { v: 5 })),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
      assert.ok(conflict((results[2] as PromiseRejectedResult).reason));
      assert.equal((results[1] as PromiseFulfilledResult<boolean>).value, true);
      assert.deepEqual((results[3] as PromiseFulfilledResult<StoredRecord | null>).value, rec('a', { v: 2 }));
      assert.equal((results[5] as PromiseFulfilledResult<boolean>).value, false);
      assert.deepEqual(await s.get('o', T, 'a'), rec('a', { v: 4 }));
      assert.deepEqual((await s.changes('o', 0, 100)).map((c) => `${c.op}:${c.id}`), ['put:a', 'put:a', 'delete:a', 'put:a', 'put:b']);
    }));

  test('postgres writes: a batch failing in a group, before statements the connection never prepared, fails alone', () =>
    // One connection, so the batch's aborted transaction and the writes queued behind it share it.
    withStore({ pool: '1' }, async (s) => {
      await s.create('o', T, rec('taken'));
      // Keeps the owner's queue busy so that everything below is sent as one group.
      const first = s.put('o', T, rec('first'));
      const results = await Promise.allSettled([
        s.batch('o', [
          { kind: 'create', table: T, record: rec('taken') },
          { kind: 'delete', table: T, id: 'first' },
          { kind: 'create', table: T, record: rec('n0') },
        ]),
        s.delete('o', T, 'taken'),
        s.create('o', T, rec('n1')),
        s.batch('o', [{ kind: 'create', table: T, record: rec('n2') }, { kind: 'put', table: 'com.example.other', record: rec('n3') }]),
        s.dropTable('o', 'com.example.gone'),
      ]);
      await first;
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
      const reason = (results[0] as PromiseRejectedResult).reason;
      assert.ok(conflict(reason), String(reason));
      assert.match((reason as Error).message, /taken/);
      assert.ok(await s.get('o', T, 'first'), 'the failed batch deleted nothing');
      assert.equal(await s.get('o', T, 'n0'), null);
      assert.equal(await s.get('o', T, 'taken'), null);
      for (const id of ['n1', 'n2']) assert.ok(await s.get('o', T, id), id);
      assert.ok(await s.get('o', 'com.example.other', 'n3'));
      // And the connection is fine afterwards, for every statement.
      await s.batch('o', [{ kind: 'create', table: T, record: rec('n4') }, { kind: 'delete', table: T, id: 'n4' }, { kind: 'put', table: T, record: rec('n5') }]);
      assert.deepEqual((await s.changes('o', 0, 100)).map((c) => `${c.op}:${c.id}`),
        ['put:taken', 'put:first', 'delete:taken', 'put:n1', 'put:n2', 'put:n3', 'put:n4', 'delete:n4', 'put:n5']);
    }));

  test('postgres writes: many concurrent writes of one owner all land, once each', () =>
    withStore({ pool: '2' }, async (s) => {
      await Promise.all(Array.from({ length: 1200 }, (_, i) => s.create('o', T, rec(`r${i}`, { i }))));
      assert.equal(await s.count('o', T, { op: 'true' }), 1200);
      const feed = await s.changes('o', 0, 10_000);
      assert.deepEqual(feed.map((c) => c.id), Array.from({ length: 1200 }, (_, i) => `r${i}`), 'feed in call order');
    }));

  test('postgres writes: creates queued together go as one statement, each answered as if alone', () =>
    withStore({}, async (s) => {
      await s.create('o', T, rec('taken', { v: 0 }));
      // The first create finds the queue idle and goes at once; the rest queue behind it and go as one.
      const ids = ['c0', 'c1', 'taken', 'c2', 'c1', 'c3'];
      const results = await Promise.allSettled([
        ...ids.map((id, i) => s.create('o', T, rec(id, { v: i + 1 }))),
        // The same id in another table is another record.
        s.create('o', 'com.example.other', rec('c1', { v: 7 })),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      for (const i of [2, 4]) assert.ok(conflict((results[i] as PromiseRejectedResult).reason), String((results[i] as PromiseRejectedResult).reason));
      assert.ok(s.combinedWrites >= 5, `combined ${s.combinedWrites}`);
      // The first of two creates of one id in one group is the one that lands.
      assert.deepEqual(await s.get('o', T, 'c1'), rec('c1', { v: 2 }));
      assert.deepEqual(await s.get('o', T, 'taken'), rec('taken', { v: 0 }));
      assert.deepEqual(await s.get('o', 'com.example.other', 'c1'), rec('c1', { v: 7 }));
      assert.deepEqual((await s.changes('o', 0, 100)).map((c) => `${c.table === T ? '' : 'other:'}${c.id}`),
        ['taken', 'c0', 'c1', 'c2', 'c3', 'other:c1'], 'one change per record created, in call order');
    }));

  test('postgres writes: ids that array and JSON syntax would misread survive a combined statement', () =>
    withStore({}, async (s) => {
      const ids = ['NULL', 'a,b', '{x}', 'q"uote', 'back\\slash', ' spaced ', 'ünï😀', "it's", 'é\u0301'];
      const first = s.put('o', T, rec('first'));
      await Promise.all(ids.map((id, i) => s.create('o', T, rec(id, { i, text: `"${id}"\\n` }))));
      await first;
      assert.ok(s.combinedWrites >= ids.length, `combined ${s.combinedWrites}`);
      for (const [i, id] of ids.entries()) assert.deepEqual(await s.get('o', T, id), rec(id, { i, text: `"${id}"\\n` }), id);
      await Promise.all(ids.map((id, i) => s.update('o', T, id, { fields: { i: 100 - i }, keep: 'all', modified: 5, maxBytes: 1 << 20, build: () => { throw new Error('built in SQL'); } })));
      for (const [i, id] of ids.entries()) assert.equal((await s.get('o', T, id))!.i, 100 - i, id);
      assert.deepEqual((await s.changes('o', 0, 100)).map((c) => c.id), ['first', ...ids, ...ids]);
    }));

  test('postgres writes: a create refused inside a combined statement fails alone, the others land', () =>
    withStore({}, async (s) => {
      await s.ensureIndex('o', T, [['tag']]);
      const first = s.create('o', T, rec('first'));
      const results = await Promise.allSettled([
        s.create('o', T, rec('a', { tag: 'x' })),
        // Too large for a btree index entry: PostgreSQL refuses the whole statement it is in.
        s.create('o', T, rec('big', { tag: randomBytes(6000).toString('base64') })),
        s.create('o', T, rec('b', { tag: 'y' })),
        s.create('o', T, rec('first')),
        s.create('o', T, rec('c', { tag: 'z' })),
      ]);
      await first;
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
      const tooLarge = (results[1] as PromiseRejectedResult).reason;
      assert.ok(tooLarge instanceof FreeholdError && tooLarge.code === 'too_large', String(tooLarge));
      assert.ok(conflict((results[3] as PromiseRejectedResult).reason));
      assert.equal(await s.get('o', T, 'big'), null);
      assert.deepEqual((await s.changes('o', 0, 100)).map((c) => c.id), ['first', 'a', 'b', 'c']);
      // The failed statement's writes were sent again each alone, so none of them counts as combined.
      assert.equal(s.combinedWrites, 0);
      // And later creates combine again.
      await Promise.all([s.create('o', T, rec('d')), s.create('o', T, rec('e')), s.create('o', T, rec('f'))]);
      assert.equal(s.combinedWrites, 2);
    }));

  test("postgres writes: a batch's puts and creates go as few statements, all or nothing as before", () =>
    withStore({}, async (s) => {
      await s.put('o', T, rec('old', { v: 0 }));
      const before = s.combinedWrites;
      await s.batch('o', [
        ...Array.from({ length: 300 }, (_, i) => ({ kind: 'put' as const, table: T, record: rec(`p${i}`, { i }) })),
        { kind: 'put', table: T, record: rec('old', { v: 1 }) },
        // The same record twice in one batch: the later write wins, as it would alone.
        { kind: 'put', table: T, record: rec('p7', { i: 'again' }) },
        { kind: 'create', table: T, record: rec('c1') },
        { kind: 'create', table: T, record: rec('c2') },
        { kind: 'delete', table: T, id: 'p8' },
      ]);
      assert.ok(s.combinedWrites - before >= 300, `combined ${s.combinedWrites - before}`);
      assert.equal(await s.count('o', T, { op: 'true' }), 302);
      assert.deepEqual(await s.get('o', T, 'old'), rec('old', { v: 1 }));
      assert.deepEqual(await s.get('o', T, 'p7'), rec('p7', { i: 'again' }));
      assert.equal(await s.get('o', T, 'p8'), null);
      const feed = (await s.changes('o', 0, 1000)).map((c) => `${c.op}:${c.id}`);
      assert.deepEqual(feed, ['put:old', ...Array.from({ length: 300 }, (_, i) => `put:p${i}`), 'put:old', 'put:p7', 'put:c1', 'put:c2', 'delete:p8']);

      // A create meeting an existing record fails the batch whole, naming it; nothing of it is written.
      const failed = await s.batch('o', [
        { kind: 'put', table: T, record: rec('n1') },
        { kind: 'create', table: T, record: rec('n2') },
        { kind: 'create', table: T, record: rec('c2') },
        { kind: 'create', table: T, record: rec('n3') },
      ]).then(() => null, (e: unknown) => e);
      assert.ok(conflict(failed), String(failed));
      assert.match((failed as Error).message, /c2/);
      for (const id of ['n1', 'n2', 'n3']) assert.equal(await s.get('o', T, id), null, id);
      assert.equal((await s.changes('o', 0, 1000)).length, feed.length);
    }));

  test('postgres writes: ids that differ only in lone surrogates are one row there, and are never combined as two', () =>
    withStore({}, async (s) => {
      // PostgreSQL receives UTF-8, in which every lone surrogate is U+FFFD: these name one record.
      const first = s.put('o', T, rec('first'));
      const created = await Promise.allSettled([s.create('o', T, rec('\uD800', { v: 1 })), s.create('o', T, rec('\uDC00', { v: 2 }))]);
      await first;
      assert.deepEqual(created.map((r) => r.status), ['fulfilled', 'rejected']);
      const blocker = s.put('o', T, rec('second'));
      const merge = (id: string, fields: Record<string, unknown>) =>
        s.update('o', T, id, { fields, keep: 'all', modified: 5, maxBytes: 1 << 20, build: () => { throw new Error('built in SQL'); } });
      const updated = await Promise.all([merge('\uD800', { a: 1 }), merge('\uDC00', { b: 2 })]);
      await blocker;
      assert.deepEqual(updated.map((d) => d?._date_modified), [5, 6], 'the second update saw the first');
      assert.deepEqual(await s.get('o', T, '\uFFFD'), rec('\uFFFD', { v: 1, a: 1, b: 2, _date_modified: 6 }));
      assert.deepEqual((await s.changes('o', 0, 100)).map((c) => c.id), ['first', '\uFFFD', 'second', '\uFFFD', '\uFFFD']);
    }));

  test('postgres writes: a connection lost while a write holds it fails that write; the process and later writes go on', () =>
    withStore({}, async (s, app) => {
      await s.create('o', T, rec('before'));
      // Holding the owner's write lock elsewhere keeps the store's writes waiting inside PostgreSQL.
      const holder = new pg.Client({ connectionString: scratch.databaseUrl });
      await holder.connect();
      await holder.query('SELECT pg_advisory_lock($1, hashtext($2))', [OWNER_LOCK, 'o']);
      // A backend being terminated stays listed for a moment: each round waits for a new one.
      const terminated: number[] = [];
      let done = false;
      try {
        // The first write goes alone, on a pooled query; the next two wait for it, then go as one
        // group on a client of their own; the update by query runs in a transaction of its own.
        const writes = [
          s.create('o', T, rec('a')),
          s.put('o', T, rec('b')),
          s.delete('o', T, 'before'),
          s.updateWhere!('o', T, { op: 'true' }, 10, (r) => ({ ...r, touched: true })),
        ];
        const settled = Promise.allSettled(writes).finally(() => (done = true));
        // Each write waiting for the lock loses its connection, until none is left.
        for (let i = 0; i < 3000 && !done; i++) {
          const { rows } = await admin.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND NOT pid = ANY($2::int[])", [app, terminated]);
          for (const { pid } of rows) {
            terminated.push(pid);
            await admin.query('SELECT pg_terminate_backend($1)', [pid]);
          }
          await new Promise((r) => setTimeout(r, 10));
        }
        const results = await settled;
        assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected', 'rejected']);
        // Among them a checked-out client (the group's, then the transaction's), not only pooled queries.
        assert.ok(terminated.length >= 3, `terminated ${terminated.length}`);
      } finally {
        await holder.end();
      }
      await s.create('o', T, rec('after'));
      await Promise.all([s.put('o', T, rec('c')), s.put('o', T, rec('d'))]);
      assert.deepEqual((await s.query('o', T, { op: 'true' }, { sort: [{ path: ['_id'], direction: 1 }], skip: 0, limit: 10 })).map((r) => r._id),
        ['after', 'before', 'c', 'd']);
    }));

  test('postgres writes: point reads reconnect after their connection is lost', () =>
    withStore({}, async (s, app) => {
      await s.create('o', T, rec('x'));
      assert.deepEqual(await s.get('o', T, 'x'), rec('x'));
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
      // Reads made while the loss is noticed may fail, as on any lost connection; later ones reconnect.
      let got: StoredRecord | null = null;
      for (let i = 0; i < 50 && !got; i++) {
        got = await s.get('o', T, 'x').catch(() => null);
        if (!got) await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(got, rec('x'));
      await s.put('o', T, rec('y'));
      assert.deepEqual(await s.get('o', T, 'y'), rec('y'));
    }));

  test('postgres writes: close() lets reads and writes already made finish', async () => {
    const u = new URL(scratch.databaseUrl);
    u.searchParams.set('schema', scratch.schema());
    const s = new PostgresRecordStore(u.toString());
    await s.init();
    await s.create('o', T, rec('x'));
    const writes = Array.from({ length: 50 }, (_, i) => s.put('o', T, rec(`w${i}`)));
    const reads = Array.from({ length: 50 }, () => s.get('o', T, 'x'));
    await s.close();
    await Promise.all(writes);
    for (const r of await Promise.all(reads)) assert.deepEqual(r, rec('x'));
    const check = new PostgresRecordStore(u.toString());
    await check.init();
    assert.equal(await check.count('o', T, { op: 'true' }), 51);
    await check.close();
  });
});
