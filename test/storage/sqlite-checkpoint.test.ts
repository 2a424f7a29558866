/**
 * WAL checkpoints run on the checkpoint worker thread, not on the event loop
 * (src/storage/sqlite/checkpointer.ts). Each test uses its own Checkpointer with small
 * thresholds, so a few thousand writes go through many checkpoints and WAL restarts.
 *
 * How we see who checkpointed without asking SQLite to checkpoint: in WAL mode only a
 * checkpoint writes the database file, so its size grows only through checkpoints; the
 * main connection's wal_autocheckpoint is far above anything these tests write, so any
 * growth is the worker's. The WAL file's size is the furthest the WAL ever reached,
 * since it is reused from its start after each restart.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteRecordStore } from '../../src/storage/sqlite/record-store.js';
import { Checkpointer, type CheckpointerOptions, type CheckpointLog } from '../../src/storage/sqlite/checkpointer.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const O = 'alice';
const T = 'com.example.notes';
const FRAME = 4096 + 24; // a WAL frame: 4 KB page + header
const TIMEOUT = { timeout: 120_000 };

const SMALL: Partial<CheckpointerOptions> = {
  changesPerCheckpoint: 100,
  resetFrames: 500,
  safetyFrames: 1_000_000, // never reached here: the main connection does not checkpoint
  fallbackFrames: 200,
  catchUpRounds: 3,
  holdMs: 5000, // a catch-up always finishes, so each one restarts the WAL
};

function recording(): CheckpointLog & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (details, message) => warnings.push(`${message} ${JSON.stringify(details)}`) };
}

function setup(options: Partial<CheckpointerOptions> = SMALL) {
  const log = recording();
  const cp = new Checkpointer(options, log);
  const file = join(dir, `c${n++}.db`);
  return { cp, log, file, store: new SqliteRecordStore(file, 'normal', cp) };
}

function connection(store: SqliteRecordStore): Database.Database {
  return (store as unknown as { db: Database.Database }).db;
}

function record(i: number, version = 0) {
  return { _id: `r${i}`, _date_created: i, _date_modified: i + version, version, body: `${i}:${version}:`.padEnd(400, 'x') };
}

/** `count` puts of records from..from+count, `concurrency` at a time, so that they group-commit. */
async function putMany(store: SqliteRecordStore, from: number, count: number, version = 0, concurrency = 16): Promise<void> {
  let next = from;
  const end = from + count;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < end) {
      const i = next++;
      await store.put(O, T, record(i, version));
    }
  }));
}

const size = (file: string): number => (existsSync(file) ? statSync(file).size : 0);

/** Writes until the worker has run its first checkpoint (it starts lazily, and under tsx takes a moment to load). */
async function warmUp(store: SqliteRecordStore, file: string, cp: Checkpointer): Promise<void> {
  const before = size(file);
  await putMany(store, 0, 100);
  assert.equal(cp.running, true, 'the worker starts once a file needs a checkpoint');
  await until('the worker checkpointed', () => size(file) > before);
}

test('the worker checkpoints the WAL into the database file, and the WAL keeps restarting', TIMEOUT, async () => {
  const { cp, log, file, store } = setup({ ...SMALL, catchUpRounds: 1 });
  await store.init();
  assert.equal(connection(store).pragma('wal_autocheckpoint', { simple: true }), SMALL.safetyFrames);
  assert.equal(connection(store).pragma('journal_size_limit', { simple: true }), -1, 'commits never trim the WAL file: the worker does');
  assert.equal(cp.running, false, 'no worker before any checkpoint is due');
  const N = 5000;
  await store.batch(O, Array.from({ length: N }, (_, i) => ({ kind: 'put' as const, table: T, record: record(i) })));
  assert.equal(cp.running, true, 'the worker starts once a file needs a checkpoint');
  await until('the worker checkpointed', () => size(file) > 1_000_000);

  // Back-to-back commits of 100 updates spread over the table (a few hundred WAL frames
  // each): the worker is always a checkpoint behind, so the WAL restarts only because
  // commits wait for a catch-up when it is due; without that it would hold all ~35,000 frames.
  const last = new Map<number, number>();
  let seed = 1;
  for (let b = 1; b <= 200; b++) {
    const ops = [];
    for (let k = 0; k < 100; k++) {
      seed = (seed * 48271) % 2147483647;
      const i = seed % N;
      ops.push({ kind: 'put' as const, table: T, record: record(i, b) });
      last.set(i, b);
    }
    await store.batch(O, ops);
  }
  const wal = size(`${file}-wal`) / FRAME;
  assert.ok(wal < 10_000, `the WAL restarts: it reached ${wal.toFixed(0)} frames`);

  for (let i = 0; i < N; i++) assert.equal((await store.get(O, T, `r${i}`))?.version, last.get(i) ?? 0);
  await store.close();
  assert.deepEqual(log.warnings, []);
});

test('data stays consistent while the worker checkpoints under concurrent reads and writes', TIMEOUT, async () => {
  const { cp, log, file, store } = setup();
  await store.init();
  await warmUp(store, file, cp);
  const N = 1500;
  let stop = false;
  const readers = Array.from({ length: 4 }, async () => {
    let reads = 0;
    while (!stop) {
      const i = Math.floor(Math.random() * N);
      const r = await store.get(O, T, `r${i}`);
      if (r) assert.equal(r.body, record(i, r.version as number).body, 'a read sees a whole record');
      reads++;
      await new Promise((res) => setImmediate(res));
    }
    return reads;
  });
  for (let v = 1; v <= 3; v++) await putMany(store, 0, N, v);
  stop = true;
  assert.ok((await Promise.all(readers)).every((r) => r > 0));
  const changes = await store.changes(O, 0, 100_000);
  assert.equal(changes.length, 100 + 3 * N, 'one change per acknowledged write');
  await store.close();
  assert.equal(existsSync(`${file}-wal`), false, 'the last connection to close, the worker\'s, checkpointed and removed the WAL');

  const check = new Database(file, { readonly: true });
  assert.equal(check.pragma('integrity_check', { simple: true }), 'ok');
  check.close();
  const reopened = new SqliteRecordStore(file, 'normal', cp);
  await reopened.init();
  for (let i = 0; i < N; i++) assert.equal((await reopened.get(O, T, `r${i}`))?.version, 3);
  await reopened.close();
  assert.deepEqual(log.warnings, []);
});

/** One commit of `count` records: a burst that grows the WAL file well past a few MB. */
async function burst(store: SqliteRecordStore, count: number): Promise<void> {
  await store.batch(O, Array.from({ length: count }, (_, i) => ({ kind: 'put' as const, table: T, record: record(i) })));
}

test('a WAL file a burst grew past the limit is left alone by commits and cut to nothing by the worker once writes stop', TIMEOUT, async () => {
  const LIMIT = 4 * 1024 * 1024;
  const { cp, log, file, store } = setup({ ...SMALL, walLimitBytes: LIMIT, idleMs: 300 });
  await store.init();
  await warmUp(store, file, cp); // so that the worker answers, and the WAL restarts, during the batches below
  await burst(store, 20_000);
  const grown = size(`${file}-wal`);
  assert.ok(grown > 2 * LIMIT, `the burst grew the WAL file to ${grown} bytes`);
  // Later commits restart the WAL from its start, many times over (10,000 changes against
  // checkpoints every 100 and restarts every 500 frames), and leave the file as it is.
  for (let b = 0; b < 100; b++) {
    await store.batch(O, Array.from({ length: 100 }, (_, k) => ({ kind: 'put' as const, table: T, record: record((b * 100 + k) % 20_000, 1) })));
    assert.ok(size(`${file}-wal`) >= grown, `no commit trimmed the WAL file (${size(`${file}-wal`)} of ${grown} bytes after batch ${b})`);
  }
  assert.equal(cp.running, true);

  await until('the idle worker exited', () => !cp.running);
  assert.equal(size(`${file}-wal`), 0, 'the worker trimmed the WAL file before exiting');
  // The store goes on as before: the next commits grow a new WAL from nothing.
  await putMany(store, 0, 300, 2);
  assert.equal((await store.get(O, T, 'r299'))?.version, 2);
  assert.equal((await store.get(O, T, 'r9999'))?.version, 1);
  assert.equal((await store.get(O, T, 'r19999'))?.version, 0);
  await store.close();
  assert.deepEqual(log.warnings, []);
});

test('if the worker dies, the main connection checkpoints again', TIMEOUT, async () => {
  const { cp, log, file, store } = setup();
  await store.init();
  await warmUp(store, file, cp);
  await cp.killWorker();
  await until('the store fell back', () => connection(store).pragma('wal_autocheckpoint', { simple: true }) === SMALL.fallbackFrames);
  assert.equal(connection(store).pragma('journal_size_limit', { simple: true }), 128 * 1024 * 1024, 'SQLite trims the WAL file in commits again');
  assert.equal(cp.running, false);
  assert.match(log.warnings.join('\n'), /worker exited/);

  const dbBefore = size(file);
  await putMany(store, 0, 3000, 1);
  assert.equal(cp.running, false, 'a dead worker is not restarted');
  assert.ok(size(file) > dbBefore + 1_000_000, 'the main connection checkpointed');
  // wal_autocheckpoint = 200 frames: the WAL restarts after each commit that crosses it.
  assert.ok(size(`${file}-wal`) < 8 * SMALL.fallbackFrames! * FRAME, `WAL ${size(`${file}-wal`)} bytes`);

  // A store opened after the death checkpoints on its own connection from the start.
  const other = new SqliteRecordStore(join(dir, `c${n++}.db`), 'normal', cp);
  await other.init();
  assert.equal(connection(other).pragma('wal_autocheckpoint', { simple: true }), SMALL.fallbackFrames);
  await other.close();
  await store.close();
});

test('if the worker fails on a file, that file falls back and the others stay with the worker', TIMEOUT, async () => {
  const { cp, log, file, store } = setup();
  const good = new SqliteRecordStore(join(dir, `c${n++}.db`), 'normal', cp);
  await store.init();
  await good.init();
  // The main connection keeps its open file; the worker, opening it by name, finds nothing.
  renameSync(file, `${file}.moved`);
  await putMany(store, 0, 100);
  await until('the store fell back', () => connection(store).pragma('wal_autocheckpoint', { simple: true }) === SMALL.fallbackFrames);
  assert.match(log.warnings.join('\n'), /failed on a file/);
  await putMany(good, 0, 100);
  assert.equal(cp.running, true);
  assert.equal(connection(good).pragma('wal_autocheckpoint', { simple: true }), SMALL.safetyFrames);
  await store.close();
  await good.close();
});

test('the worker starts only when a checkpoint is due, serves every file, and exits when the last one closes', TIMEOUT, async () => {
  const { cp, file, store } = setup();
  const fileB = join(dir, `c${n++}.db`);
  const b = new SqliteRecordStore(fileB, 'normal', cp);
  const memory = new SqliteRecordStore(':memory:', 'normal', cp);
  await Promise.all([store.init(), b.init(), memory.init()]);
  await putMany(store, 0, 20);
  await putMany(memory, 0, 2000);
  assert.equal(cp.running, false, 'a few writes and :memory: writes start no worker');

  await warmUp(store, file, cp);
  await warmUp(b, fileB, cp);
  await store.close();
  assert.equal(existsSync(`${file}-wal`), false);
  assert.equal(cp.running, true, 'still serving the other file');
  await b.close();
  assert.equal(cp.running, false, 'no file left: the worker exited');
  await memory.close();

  // Reopening starts over cleanly, worker included.
  const again = new SqliteRecordStore(file, 'normal', cp);
  await again.init();
  assert.equal((await again.get(O, T, 'r99'))?._id, 'r99');
  await warmUp(again, file, cp);
  await again.close();
  assert.equal(cp.running, false);
});

test('an idle worker exits, and the next checkpoint starts another', TIMEOUT, async () => {
  const { cp, log, file, store } = setup({ ...SMALL, idleMs: 200 });
  await store.init();
  await warmUp(store, file, cp);
  await until('the idle worker exited', () => !cp.running);
  const dbBefore = size(file);
  await putMany(store, 1000, 500);
  assert.equal(cp.running, true);
  await until('the new worker checkpointed', () => size(file) > dbBefore);
  await store.close();
  assert.equal(existsSync(`${file}-wal`), false);
  assert.deepEqual(log.warnings, [], 'an idle exit is no failure');
});

test('a reader pinning the WAL does not stall writes, and checkpoints resume after it ends', TIMEOUT, async () => {
  const { cp, file, store } = setup();
  await store.init();
  await warmUp(store, file, cp);
  const reader = new Database(file, { readonly: true });
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM records').pluck().get(); // the read transaction holds its snapshot from here
  // Writes go on while the WAL is pinned (a stall would run into the test's timeout).
  await putMany(store, 0, 3000, 1);
  reader.exec('COMMIT');
  reader.close();

  const dbBefore = size(file);
  await putMany(store, 0, 1000, 2);
  await until('checkpoints resumed', () => size(file) > dbBefore);
  await store.close();
});

test('a running worker does not keep the process alive', TIMEOUT, () => {
  const src = resolve(import.meta.dirname, '..', '..', 'src', 'storage', 'sqlite');
  const script = join(dir, 'exit.mts');
  writeFileSync(script, `
    import { SqliteRecordStore } from ${JSON.stringify(pathToFileURL(join(src, 'record-store.js')).href)};
    import { Checkpointer } from ${JSON.stringify(pathToFileURL(join(src, 'checkpointer.js')).href)};
    const cp = new Checkpointer({ changesPerCheckpoint: 10 });
    const store = new SqliteRecordStore(${JSON.stringify(join(dir, 'exit.db'))}, 'normal', cp);
    await store.init();
    for (let i = 0; i < 50; i++) await store.put('o', 't', { _id: 'r' + i, _date_created: 1, _date_modified: 1 });
    console.log('worker running: ' + cp.running); // and the store is left open
  `);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.signal, null, 'the process ended by itself');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /worker running: true/);
});
