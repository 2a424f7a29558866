import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareForSort, matches } from '../../src/query/evaluate.js';
import type { Condition, FieldPath, Scalar } from '../../src/query/types.js';
import { FlatFileRecordStore } from '../../src/storage/flatfile/record-store.js';
import { readJournals } from '../../src/storage/flatfile/journal.js';
import { FlatFilePaths } from '../../src/storage/flatfile/paths.js';
import type { TableCache } from '../../src/storage/flatfile/table-cache.js';
import type { StoredRecord } from '../../src/storage/types.js';
import { recordStoreSuite } from './record-store.suite.js';

/**
 * The flat-file store's query cache: equality indexes (answers equal to a scan with
 * the reference semantics) and hand edits seen through directory watching, with its
 * fallbacks. The shared backend suite also runs here with watching switched off, so
 * the stat-sweep path keeps passing it.
 */

const dir = mkdtempSync(join(tmpdir(), 'freehold-flatfile-watch-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

recordStoreSuite('flatfile (no watching)', async () => new FlatFileRecordStore(join(dir, `t${n++}`), { watch: false }));

const O = 'alice';
const T = 'com.example.notes';
const byId = { sort: [{ path: ['_id'] as FieldPath, direction: 1 as const }], skip: 0, limit: 5000 };
const rec = (id: string, fields: Record<string, unknown> = {}): StoredRecord => ({ _id: id, _date_created: 1000, _date_modified: 1000, ...fields });
const eq = (field: string, value: Scalar): Condition => ({ op: 'eq', path: [field], value });

async function open(options: { watch?: boolean } = {}): Promise<{ s: FlatFileRecordStore; root: string; tdir: string }> {
  const root = join(dir, `x${n++}`);
  const s = new FlatFileRecordStore(root, options);
  await s.init();
  return { s, root, tdir: join(root, O, T) };
}

const cacheOf = (s: FlatFileRecordStore): TableCache => (s as unknown as { cache: TableCache }).cache;
const ids = async (s: FlatFileRecordStore, where: Condition): Promise<string[]> => (await s.query(O, T, where, byId)).map((r) => r._id);
const pretty = (r: StoredRecord): string => JSON.stringify(r, null, 2) + '\n';

// --- indexes ---

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

// Values chosen to sit next to each other in every way eq could confuse them.
const VALUES: unknown[] = ['5', 5, 5.0, 0, -0, '0', '', 'a', 'A', true, false, 'true', null, [5], { a: 5 }, 1e21, '1e+21', -1];
const SCALARS: Scalar[] = ['5', 5, 0, '0', '', 'a', 'A', true, false, 'true', null, 1e21, '1e+21', -1, 'absent'];

function randomRecord(r: () => number, id: string): StoredRecord {
  const out = rec(id);
  for (const f of ['k', 'm']) {
    if (r() < 0.15) continue; // missing
    out[f] = VALUES[Math.floor(r() * VALUES.length)];
  }
  if (r() < 0.7) out.nested = r() < 0.2 ? 'flat' : { k: VALUES[Math.floor(r() * VALUES.length)] };
  return out;
}

function randomCondition(r: () => number, depth = 0): Condition {
  const paths: FieldPath[] = [['k'], ['m'], ['nested', 'k'], ['other']];
  const path = paths[Math.floor(r() * paths.length)]!;
  const value = SCALARS[Math.floor(r() * SCALARS.length)]!;
  const pick = r();
  if (depth < 2 && pick < 0.2) return { op: 'and', items: [randomCondition(r, depth + 1), randomCondition(r, depth + 1)] };
  if (depth < 2 && pick < 0.35) return { op: 'or', items: [randomCondition(r, depth + 1), randomCondition(r, depth + 1)] };
  if (depth < 2 && pick < 0.4) return { op: 'not', item: randomCondition(r, depth + 1) };
  if (pick < 0.55) return { op: 'in', path, values: [value, SCALARS[Math.floor(r() * SCALARS.length)]!] };
  if (pick < 0.6) return { op: 'exists', path, value: r() < 0.5 };
  if (pick < 0.65) return { op: 'ne', path, value };
  return { op: 'eq', path, value };
}

test('flatfile indexes: answers equal a scan with the reference semantics, across writes and hand edits', async () => {
  const r = rng(20261125);
  const { s, tdir } = await open();
  await s.ensureIndex(O, T, [['k'], ['m']]);
  await s.ensureIndex(O, T, [['nested', 'k']]);
  const truth = new Map<string, StoredRecord>();
  const check = async (round: number) => {
    for (let q = 0; q < 60; q++) {
      const where = randomCondition(r);
      const want = [...truth.values()].filter((x) => matches(x, where)).sort((a, b) => compareForSort(a, b, byId.sort)).map((x) => x._id);
      assert.deepEqual(await ids(s, where), want, `round ${round}: ${JSON.stringify(where)}`);
      assert.equal(await s.count(O, T, where), want.length);
    }
  };
  for (let round = 0; round < 6; round++) {
    // Through the store…
    const ops = [];
    for (let i = 0; i < 40; i++) {
      const id = `r${Math.floor(r() * 120)}`;
      if (r() < 0.25) {
        ops.push(s.delete(O, T, id));
        truth.delete(id);
      } else {
        const x = randomRecord(r, id);
        ops.push(s.put(O, T, x));
        truth.set(id, x);
      }
    }
    await Promise.all(ops);
    await check(round);
    // …and by hand, including changes of an indexed field's value and type.
    for (let i = 0; i < 15; i++) {
      const id = `r${Math.floor(r() * 120)}`;
      if (r() < 0.3) {
        rmSync(join(tdir, `${id}.json`), { force: true });
        truth.delete(id);
      } else {
        const x = randomRecord(r, id);
        writeFileSync(join(tdir, `${id}.json`), pretty(x));
        truth.set(id, x);
      }
    }
    await check(round);
  }
  await s.close();
});

test('flatfile indexes: paths queried by equality are indexed on demand (no ensureIndex, as after a restart)', async () => {
  const { s, tdir } = await open();
  for (let i = 0; i < 30; i++) await s.put(O, T, rec(`r${i}`, { kind: `k${i % 3}` }));
  assert.deepEqual(await ids(s, eq('kind', 'k1')), ['r1', 'r10', 'r13', 'r16', 'r19', 'r22', 'r25', 'r28', 'r4', 'r7']);
  writeFileSync(join(tdir, 'r1.json'), pretty(rec('r1', { kind: 'k2' })));
  writeFileSync(join(tdir, 'new.json'), pretty(rec('new', { kind: 'k1' })));
  assert.deepEqual(await ids(s, eq('kind', 'k1')), ['new', 'r10', 'r13', 'r16', 'r19', 'r22', 'r25', 'r28', 'r4', 'r7']);
  assert.deepEqual(await ids(s, { op: 'in', path: ['kind'], values: ['k9', 'k2'] }), ['r1', 'r11', 'r14', 'r17', 'r2', 'r20', 'r23', 'r26', 'r29', 'r5', 'r8']);
  await s.close();
});

// --- hand edits seen by the very next query ---

for (const watch of [true, false]) {
  test(`flatfile ${watch ? 'watched' : 'swept'}: a hand edit that completed before a query is seen by it`, async () => {
    const { s, root, tdir } = await open({ watch });
    await s.ensureIndex(O, T, [['kind']]);
    for (const id of ['a', 'b', 'c']) await s.create(O, T, rec(id, { kind: 'x' }));
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['a', 'b', 'c']);
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['a', 'b', 'c']); // watched from here on

    // Every step below is checked by the query right after it, with no pause between.
    writeFileSync(join(tdir, 'a.json'), pretty(rec('a', { kind: 'y' }))); // in place, indexed value changes
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['b', 'c']);
    assert.deepEqual(await ids(s, eq('kind', 'y')), ['a']);
    writeFileSync(join(tdir, 'd.json'), pretty(rec('d', { kind: 'x' }))); // added
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['b', 'c', 'd']);
    unlinkSync(join(tdir, 'b.json')); // removed
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['c', 'd']);
    writeFileSync(join(root, 'e.tmp'), pretty(rec('e', { kind: 'x' })));
    renameSync(join(root, 'e.tmp'), join(tdir, 'e.json')); // moved in, as editors save
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['c', 'd', 'e']);
    renameSync(join(tdir, 'c.json'), join(root, 'c.json')); // moved out
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['d', 'e']);
    writeFileSync(join(tdir, 'd.json'), pretty(rec('d', { kind: 'z' }))); // twice within one timestamp tick
    writeFileSync(join(tdir, 'd.json'), pretty(rec('d', { kind: 'x' })));
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['d', 'e']);
    writeFileSync(join(tdir, 'd.json'), pretty(rec('d', { kind: 'w' })));
    assert.equal(await s.count(O, T, eq('kind', 'w')), 1); // count takes the same path

    // The whole directory replaced (a restore from backup).
    const restore = join(root, 'restore');
    mkdirSync(restore);
    writeFileSync(join(restore, 'r.json'), pretty(rec('r', { kind: 'x' })));
    rmSync(tdir, { recursive: true });
    renameSync(restore, tdir);
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['r']);
    writeFileSync(join(tdir, 's.json'), pretty(rec('s', { kind: 'x' }))); // and the new directory is watched
    assert.deepEqual(await ids(s, eq('kind', 'x')), ['r', 's']);
    rmSync(tdir, { recursive: true });
    assert.deepEqual(await ids(s, eq('kind', 'x')), []);
    await s.close();
  });
}

test('flatfile watched: a write through another hard link (not reported on this directory) is seen', async () => {
  const { s, root, tdir } = await open();
  await s.create(O, T, rec('a', { kind: 'x' }));
  await s.create(O, T, rec('b', { kind: 'x' }));
  const elsewhere = join(root, 'a-link.json');
  linkSync(join(tdir, 'a.json'), elsewhere);
  unlinkSync(join(tdir, 'b.json'));
  assert.deepEqual(await ids(s, eq('kind', 'x')), ['a']); // a now has two links
  assert.deepEqual(await ids(s, eq('kind', 'x')), ['a']);
  writeFileSync(elsewhere, pretty(rec('a', { kind: 'edited elsewhere' }))); // same inode, other directory
  assert.deepEqual(await ids(s, eq('kind', 'x')), []);
  await s.close();
});

test('flatfile watched: when the inotify queue overflows (events lost), every file is checked again', async () => {
  const { s, tdir } = await open();
  for (const id of ['a', 'b', 'c']) await s.create(O, T, rec(id, { kind: 'x' }));
  assert.deepEqual(await ids(s, eq('kind', 'x')), ['a', 'b', 'c']);
  assert.deepEqual(await ids(s, eq('kind', 'x')), ['a', 'b', 'c']);
  // Without yielding, so nothing reads the queue: fill it past max_queued_events
  // (alternating files, as identical consecutive events are merged), then make the
  // change whose event the kernel drops.
  const [a, b] = [join(tdir, 'a.json'), join(tdir, 'b.json')];
  const t = new Date(1_700_000_000_000);
  for (let i = 0; i < 40_000; i++) utimesSync(i % 2 ? a : b, t, t);
  writeFileSync(join(tdir, 'c.json'), pretty(rec('c', { kind: 'lost event' })));
  // Let the overflowing burst be read first: a query that touched the barrier while
  // the queue was full would lose that event too and time out into a sweep instead.
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await ids(s, eq('kind', 'x')), ['a', 'b']);
  await s.close();
});

test('flatfile watched: a failed watch falls back to checking every file', async () => {
  const { s, tdir } = await open();
  for (const id of ['a', 'b']) await s.create(O, T, rec(id, { kind: 'x' }));
  assert.deepEqual(await ids(s, eq('kind', 'x')), ['a', 'b']);
  assert.deepEqual(await ids(s, eq('kind', 'x')), ['a', 'b']);
  // As if the watch had failed before reporting this edit.
  const cache = cacheOf(s) as unknown as { tables: Map<string, { watch: { close(): void } | null }> };
  cache.tables.get(tdir)!.watch!.close();
  const st = { ...rec('b', { kind: 'y' }) };
  writeFileSync(join(tdir, 'b.json'), pretty(st));
  assert.deepEqual(await ids(s, eq('kind', 'x')), ['a']);
  writeFileSync(join(tdir, 'a.json'), pretty(rec('a', { kind: 'y' }))); // watched again after that sweep
  assert.deepEqual(await ids(s, eq('kind', 'y')), ['a', 'b']);
  await s.close();
});

// --- writes: record texts are staged while the journal is written ---

test('flatfile writes: a unit that fails while staging leaves no trace (journal empty, log and records unchanged, no temp files)', async () => {
  const { s, root } = await open();
  await s.create(O, T, rec('a', { v: 1 }));
  const log = readFileSync(join(root, O, '_changes.jsonl'), 'utf8');
  // A dangling symlink where the table directory would go: planning finds no folder and no
  // record there (a plain file in that place is refused while planning, per table), and
  // staging then cannot make the folder.
  symlinkSync(join(root, 'nowhere'), join(root, O, 'com.example.blocked'));
  const results = await Promise.allSettled([s.put(O, T, rec('a', { v: 2 })), s.put(O, 'com.example.blocked', rec('b'))]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected'], 'one unit: both fail together');
  assert.ok((await readJournals(new FlatFilePaths(root), O)).entries.every((e) => e.seqBefore === 0), 'nothing of the failed unit was journalled');
  assert.equal(readFileSync(join(root, O, '_changes.jsonl'), 'utf8'), log);
  assert.deepEqual(readdirSync(join(root, O, T)), ['a.json']);
  assert.equal((await s.get(O, T, 'a'))!.v, 1);
  await s.put(O, T, rec('a', { v: 3 })); // and the owner is not left broken
  assert.equal((await s.get(O, T, 'a'))!.v, 3);
  await s.close();
});

/**
 * Runs a process that opens a flat-file store in `root` and queries it (which makes the
 * barrier's sentinel folder in TMPDIR=`tmp`), prints the sentinel folders it then sees,
 * and exits normally, or is killed when `kill` is set (no exit listener runs).
 */
async function runStoreProcess(tmp: string, root: string, kill = false): Promise<{ status: number | null; signal: string | null; seen: string[]; pid: number; stderr: string }> {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath, pathToFileURL } = await import('node:url');
  const storeModule = pathToFileURL(fileURLToPath(new URL('../../src/storage/flatfile/record-store.ts', import.meta.url))).href;
  const script = `
    const { FlatFileRecordStore } = await import(${JSON.stringify(storeModule)});
    const { readdirSync } = await import('node:fs');
    const s = new FlatFileRecordStore(${JSON.stringify(root)});
    await s.init();
    await s.create('alice', 'com.example.notes', { _id: 'a' + Date.now(), _date_created: 1, _date_modified: 1, kind: 'x' });
    await s.query('alice', 'com.example.notes', { op: 'eq', path: ['kind'], value: 'x' }, { sort: [], skip: 0, limit: 10 });
    console.log(JSON.stringify({ pid: process.pid, seen: readdirSync(process.env.TMPDIR).filter((f) => f.startsWith('freehold-barrier-')) }));
    if (${kill}) process.kill(process.pid, 'SIGKILL');
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: tmp }, encoding: 'utf8' });
  const out = JSON.parse(r.stdout.trim() || '{"pid":0,"seen":[]}') as { pid: number; seen: string[] };
  return { status: r.status, signal: r.signal, stderr: r.stderr, ...out };
}

const sentinelFolders = (tmp: string) => readdirSync(tmp).filter((f) => f.startsWith('freehold-barrier-')).sort();

test('the barrier\'s sentinel folder in the temp dir goes with the process, even when the store is never closed', async () => {
  const tmp = mkdtempSync(join(dir, 'tmp-'));
  const r = await runStoreProcess(tmp, join(dir, `exit${n++}`));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.seen.length, 1, 'the watcher made its sentinel folder while running');
  assert.ok(r.seen[0]!.startsWith(`freehold-barrier-${r.pid}-`), 'named after its process');
  assert.deepEqual(sentinelFolders(tmp), [], 'and it was removed at exit');
});

test('a killed process\'s sentinel folder is removed by the next process that makes one; a running process\'s is left alone', async () => {
  const tmp = mkdtempSync(join(dir, 'tmp-'));
  const live = `freehold-barrier-${process.pid}-abcdef`; // this test process runs
  mkdirSync(join(tmp, live));
  mkdirSync(join(tmp, 'freehold-barrier-notapid'));
  const killed = await runStoreProcess(tmp, join(dir, `killed${n++}`), true);
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  const orphan = killed.seen.find((f) => f.startsWith(`freehold-barrier-${killed.pid}-`));
  assert.ok(orphan, 'the killed process had made its folder');
  assert.deepEqual(sentinelFolders(tmp), [orphan, live, 'freehold-barrier-notapid'].sort(), 'killed: no exit listener ran, so its folder is still there');

  const next = await runStoreProcess(tmp, join(dir, `next${n++}`));
  assert.equal(next.status, 0, next.stderr);
  assert.ok(!next.seen.includes(orphan), 'the next process removed the orphan before making its own');
  assert.ok(next.seen.includes(live), 'but not the folder of a process that still runs');
  assert.deepEqual(sentinelFolders(tmp), [live, 'freehold-barrier-notapid'].sort());
});
