/**
 * On a busy store, record queries are answered by a second thread with its own
 * connection (src/storage/sqlite/query-offload.ts). "Busy" here is what a loaded server
 * looks like to the store: several queries asked in one event-loop turn. What must
 * hold: the same pages as the main thread gives, never older than a write acknowledged
 * before the query, the main thread's errors, nothing lost if the thread dies or the
 * store closes, and no thread at all for one request at a time or once idle.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteRecordStore } from '../../src/storage/sqlite/record-store.js';
import { Checkpointer } from '../../src/storage/sqlite/checkpointer.js';
import type { QueryOffloadOptions } from '../../src/storage/sqlite/query-offload.js';
import type { QueryOptions } from '../../src/query/types.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-query-offload-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const O = 'alice';
const T = 'com.example.notes';
const KINDS = 7;
const page = (limit = 20, skip = 0): QueryOptions => ({ sort: [], skip, limit });
const ofKind = (k: number) => ({ op: 'eq' as const, path: ['kind'], value: `k${k}` });
let n = 0;

async function openStore(options: Partial<QueryOffloadOptions> | false = {}, indexed = true): Promise<{ store: SqliteRecordStore; file: string }> {
  const file = join(dir, `s${n++}.db`);
  // On a loaded machine any query can be outstanding for 2 ms (the default stallMs), and the
  // main thread then answers the rest itself: which thread answers is what these tests check.
  const store = new SqliteRecordStore(file, 'normal', new Checkpointer({ worker: false }), options === false ? false : { stallMs: 10_000, ...options });
  await store.init();
  if (indexed) await store.ensureIndex(O, T, [['kind']]);
  await store.batch(O, Array.from({ length: 300 }, (_, i) => ({
    kind: 'put' as const, table: T, record: { _id: `r${i}`, _date_created: 1000 + i, _date_modified: 1000 + i, kind: `k${i % KINDS}`, i },
  })));
  return { store, file };
}

/** Every kind's first page and a later page, asked in one turn as concurrent requests would. */
const together = (store: SqliteRecordStore) =>
  Promise.all(Array.from({ length: 4 * KINDS }, (_, j) => store.queryJson(O, T, ofKind(j % KINDS), page(20, j >= 2 * KINDS ? 10 : 0))));

/** A busy turn on another (empty) table starts the thread; waits until it takes queries. */
async function warm(store: SqliteRecordStore): Promise<void> {
  await Promise.all(Array.from({ length: 4 }, () => store.queryJson(O, 'com.example.warm', ofKind(0), page())));
  await until('the query thread is ready', () => store.queryOffload!.ready);
}

test('a thread being started takes no query: the main thread answers them until it is ready', async () => {
  const { store } = await openStore();
  const { store: reference } = await openStore(false);
  try {
    const offload = store.queryOffload!;
    const first = together(store);
    assert.equal(offload.running, true, 'the busy turn started a thread');
    assert.equal(offload.ready, false, 'which has not opened its connection yet');
    assert.deepEqual(await first, await together(reference));
    assert.equal(offload.answered, 0, 'every query of that turn was answered here');
    await until('the query thread is ready', () => offload.ready);
    assert.deepEqual(await together(store), await together(reference));
    assert.ok(offload.answered >= 4 * KINDS - 1, `then the thread answered ${offload.answered}`);
  } finally {
    await store.close();
    await reference.close();
  }
});

test('queries asked together are answered by the query thread, with the pages the main thread gives', async () => {
  const { store } = await openStore();
  const inlineStore = await openStore(false);
  try {
    await warm(store);
    const offload = store.queryOffload!;
    const pages = await together(store);
    const expected = await together(inlineStore.store);
    assert.deepEqual(pages, expected);
    assert.equal(inlineStore.store.queryOffload, null);
    assert.ok(offload.answered >= pages.length - 1, `the thread answered ${offload.answered} of ${pages.length}`);
    assert.equal((JSON.parse(pages[0]!) as unknown[]).length, 20);
  } finally {
    await store.close();
    await inlineStore.store.close();
  }
});

test('a thread asleep gets the first query of a busy turn at once and the rest together when the turn ends; one awake gets each at once', async () => {
  const { store } = await openStore();
  const { store: reference } = await openStore(false);
  try {
    await warm(store);
    const offload = store.queryOffload!;
    const expected = await together(reference);
    for (const awake of [false, true]) {
      const before = { posts: offload.posts, answered: offload.answered };
      const release = await offload.holdWorker(awake);
      const asked = together(store);
      const handed = 4 * KINDS - 1; // the turn's first query runs here
      // Within the turn: one message so far while it sleeps; one per query while it is awake.
      assert.equal(offload.posts - before.posts, awake ? handed : 1);
      await new Promise((r) => setImmediate(r));
      assert.equal(offload.posts - before.posts, awake ? handed : 2, 'and the rest went together when the turn ended');
      release();
      assert.deepEqual(await asked, expected);
      assert.equal(offload.answered - before.answered, handed);
    }
  } finally {
    await store.close();
    await reference.close();
  }
});

test('one query at a time stays on the main thread: no thread starts', async () => {
  const { store } = await openStore();
  try {
    // As requests one at a time: each in a turn of its own.
    for (let k = 0; k < KINDS; k++) {
      await store.queryJson(O, T, ofKind(k), page());
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(store.queryOffload!.answered, 0);
    assert.equal(store.queryOffload!.running, false);
  } finally {
    await store.close();
  }
});

test('a query handed over sees every write acknowledged before it was asked', async () => {
  const { store } = await openStore();
  try {
    await warm(store);
    for (let i = 0; i < 30; i++) {
      const id = `new${i}`;
      await store.put(O, T, { _id: id, _date_created: 5000 + i, _date_modified: 5000 + i, kind: 'k0', i });
      const pages = await Promise.all(Array.from({ length: 6 }, () => store.queryJson(O, T, ofKind(0), page(5))));
      for (const p of pages) assert.equal((JSON.parse(p) as Array<{ _id: string }>)[0]!._id, id, 'newest first: the record just written');
    }
    assert.ok(store.queryOffload!.answered > 0);
  } finally {
    await store.close();
  }
});

test('a query planned before an array appeared in its indexed field is planned again, not answered stale', async () => {
  const { store, file } = await openStore();
  const other = new Database(file);
  try {
    await warm(store);
    const before = store.queryOffload!.answered;
    // Planned here with no array in `kind` (the bare, index-served plan); the thread is held,
    // so it runs them after the other connection's commit below.
    const release = await store.queryOffload!.holdWorker();
    const asked = Array.from({ length: 8 }, () => store.queryJson(O, T, ofKind(1), page(5)));
    other.prepare('INSERT INTO records (owner, tbl, id, created, modified, data) VALUES (?, ?, ?, ?, ?, ?)')
      .run(O, T, 'arr', 1, 99_999, JSON.stringify({ _id: 'arr', _date_created: 1, _date_modified: 99_999, kind: ['k1', 'zz'] }));
    // Released once this turn has ended, and with it the main thread's read snapshot (taken
    // before the commit): a query the thread hands back is then run again on a new one.
    await new Promise((r) => setImmediate(r));
    release();
    const pages = (await Promise.all(asked)).map((p) => (JSON.parse(p) as Array<{ _id: string }>).map((r) => r._id));
    assert.notEqual(pages[0]![0], 'arr', 'the first query ran here, at once, before the commit');
    for (const p of pages.slice(1)) assert.equal(p[0], 'arr', `a later snapshot finds the array: ${JSON.stringify(p)}`);
    assert.equal(store.queryOffload!.answered, before, 'the thread answered none of them with the stale plan');
    // Planned from now on with the array branch, the thread answers them.
    const again = await Promise.all(Array.from({ length: 8 }, () => store.queryJson(O, T, ofKind(1), page(5))));
    for (const p of again) assert.equal((JSON.parse(p) as Array<{ _id: string }>)[0]!._id, 'arr');
    assert.ok(store.queryOffload!.answered > before);
  } finally {
    other.close();
    await store.close();
  }
});

test('a query the thread fails on throws the error the main thread throws', async () => {
  const { store, file } = await openStore({}, false);
  try {
    // A row written behind the store's back whose text is not JSON: json_extract fails on it
    // (without an index on the field, where writing it would have failed already).
    const other = new Database(file);
    other.prepare('INSERT INTO records (owner, tbl, id, created, modified, data) VALUES (?, ?, ?, ?, ?, ?)').run(O, T, 'bad', 1, 99_999, 'not json'); // the newest: the first a page reads
    other.close();
    await warm(store);
    const before = store.queryOffload!.answered;
    const inlineError = await store.queryJson(O, T, ofKind(1), page()).then(() => null, (e: unknown) => e);
    assert.ok(inlineError instanceof Error, 'the main thread fails on it');
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => store.queryJson(O, T, ofKind(1), page())));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.constructor, inlineError.constructor);
      assert.equal((r as PromiseRejectedResult).reason.message, inlineError.message);
    }
    assert.equal(store.queryOffload!.answered, before, 'the thread answered none of them itself');
  } finally {
    await store.close();
  }
});

test('if the thread dies, the queries it held are answered here, and later ones stay here', async () => {
  const { store } = await openStore();
  const { store: reference } = await openStore(false);
  try {
    await warm(store);
    const offload = store.queryOffload!;
    assert.equal(offload.running, true);
    const held = together(store);
    await offload.killWorker();
    assert.deepEqual(await held, await together(reference));
    const answered = offload.answered;
    assert.deepEqual(await together(store), await together(reference));
    assert.equal(offload.answered, answered, 'no thread answers after it died');
    assert.equal(offload.running, false);
  } finally {
    await store.close();
    await reference.close();
  }
});

test('close answers the queries handed over first; an idle thread ends by itself', async () => {
  const { store } = await openStore({ idleMs: 60_000 });
  await warm(store);
  const offload = store.queryOffload!;
  const pending = together(store);
  await store.close();
  assert.equal((await pending).length, 4 * KINDS);
  assert.ok(offload.answered >= 4 * KINDS - 1, `the thread answered ${offload.answered} before closing`);
  assert.equal(store.queryOffload, null);

  const { store: idle } = await openStore({ idleMs: 100 });
  try {
    await together(idle);
    const offload = idle.queryOffload!;
    assert.equal(offload.running, true);
    await until('the idle thread ended', () => !offload.running);
    // And starts again when needed.
    await together(idle);
    assert.equal(offload.running, true);
  } finally {
    await idle.close();
  }
});

test('a new index restarts the thread; close waits for every thread, so the main connection closes last', async () => {
  const { store, file } = await openStore();
  const { store: reference } = await openStore(false);
  try {
    await together(store);
    assert.equal(store.queryOffload!.running, true);
    await store.ensureIndex(O, T, [['i']]); // the thread is being stopped
    assert.equal(store.queryOffload!.running, false);
    const pages = together(store); // a new one starts meanwhile
    assert.deepEqual(await pages, await together(reference));
  } finally {
    await store.close();
    await reference.close();
  }
  // The last connection to close removes the WAL: had a thread's outlived the store's, it would be there.
  assert.equal(existsSync(`${file}-wal`), false);
});
