import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { FlatFileRecordStore } from '../../src/storage/flatfile/record-store.js';
import { SYNCFS_FROM_FILES } from '../../src/storage/flatfile/checkpoint.js';
import type { StoredRecord } from '../../src/storage/types.js';
import { runChildScript } from '../helpers/child-script.js';

/**
 * A checkpoint of many record files makes them durable with one `sync -f` (syncfs) per
 * file system instead of an fsync each (checkpoint.ts). `sync` is the system's own,
 * behind a wrapper first on PATH that notes each call: what it runs is real.
 */

const dir = mkdtempSync(join(tmpdir(), 'freehold-ff-checkpoint-'));
const bin = join(dir, 'bin');
const calls = join(dir, 'sync-calls.txt');
const realSync = execFileSync('sh', ['-c', 'command -v sync'], { encoding: 'utf8' }).trim();
const savedPath = process.env.PATH;
const O = 'alice';
const T = 'com.example.notes';
const rec = (id: string, fields: Record<string, unknown> = {}): StoredRecord => ({ _id: id, _date_created: 1000, _date_modified: 1000, ...fields });
const many = (prefix: string, n = SYNCFS_FROM_FILES + 72) => Array.from({ length: n }, (_, i) => ({ kind: 'put' as const, table: T, record: rec(`${prefix}${i}`, { i }) }));

/** `sync` on PATH: notes its arguments, then runs the real one, or fails as a `sync` without -f would. */
function wrapSync(mode: 'real' | 'without -f'): void {
  mkdirSync(bin, { recursive: true });
  const run = mode === 'real' ? `exec ${realSync} "$@"` : `echo "sync: invalid option -- 'f'" >&2; exit 1`;
  writeFileSync(join(bin, 'sync'), `#!/bin/sh\necho "$@" >> ${JSON.stringify(calls)}\n${run}\n`);
  chmodSync(join(bin, 'sync'), 0o755);
}
const syncCalls = () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean) : []);
const journalBytes = (root: string) => ['_journal.json', '_journal2.json'].reduce((n, f) => n + (existsSync(join(root, O, f)) ? statSync(join(root, O, f)).size : 0), 0);

before(() => {
  process.env.PATH = `${bin}${delimiter}${savedPath}`;
});
after(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

test('a checkpoint of many files syncs the file system once; a small one fsyncs its files', async () => {
  wrapSync('real');
  const root = join(dir, 'a');
  let s = new FlatFileRecordStore(root);
  await s.init();
  await s.batch(O, many('r'));
  await s.close(); // runs the checkpoint and waits for it
  const made = syncCalls();
  assert.ok(made.length >= 1, 'sync -f ran');
  for (const line of made) {
    assert.match(line, /^-f /);
    assert.ok(line.slice(3).startsWith(root), `${line} is inside the store's root`);
  }
  assert.equal(journalBytes(root), 0, 'the checkpoint completed: both journal files are empty');

  s = new FlatFileRecordStore(root);
  await s.init();
  assert.equal((await s.query(O, T, { op: 'true' }, { sort: [], skip: 0, limit: 1000 })).length, SYNCFS_FROM_FILES + 72);
  await s.put(O, T, rec('one more'));
  await s.close();
  assert.deepEqual(syncCalls(), made, 'one file: fsynced, no sync run');
  assert.equal(journalBytes(root), 0);
});

test('when sync -f fails after it has worked, that checkpoint fsyncs file by file and the next tries it again', async () => {
  wrapSync('without -f');
  const root = join(dir, 'b');
  const before = syncCalls().length;
  for (const prefix of ['x', 'y']) {
    // Each close runs a checkpoint of what its store wrote; whether sync -f works is the process's to learn.
    const s = new FlatFileRecordStore(root);
    await s.init();
    await s.batch(O, many(prefix));
    await s.close();
  }
  assert.ok(syncCalls().length >= before + 2, 'tried at each large checkpoint');
  assert.equal(journalBytes(root), 0, 'the checkpoints completed all the same');
  const again = new FlatFileRecordStore(root);
  await again.init();
  assert.equal((await again.query(O, T, { op: 'true' }, { sort: [], skip: 0, limit: 1000 })).length, 2 * (SYNCFS_FROM_FILES + 72));
  await again.close();
});

test('where sync -f never worked, it is tried once and then left alone', () => {
  // A fresh process: whether sync -f works is learnt once per process.
  const root = join(dir, 'c');
  const noted = join(dir, 'c-calls.txt');
  const cBin = join(dir, 'c-bin');
  mkdirSync(cBin, { recursive: true });
  writeFileSync(join(cBin, 'sync'), `#!/bin/sh\necho "$@" >> ${JSON.stringify(noted)}\necho "sync: invalid option -- 'f'" >&2; exit 1\n`);
  chmodSync(join(cBin, 'sync'), 0o755);
  const script = `
    import { FlatFileRecordStore } from './src/storage/flatfile/record-store.ts';
    process.env.PATH = ${JSON.stringify(cBin)} + ${JSON.stringify(delimiter)} + process.env.PATH;
    const rec = (id) => ({ _id: id, _date_created: 1, _date_modified: 1 });
    const batch = (p) => Array.from({ length: ${SYNCFS_FROM_FILES + 72} }, (_, i) => ({ kind: 'put', table: 'com.example.notes', record: rec(p + i) }));
    for (const p of ['a', 'b', 'c']) {
      const s = new FlatFileRecordStore(${JSON.stringify(root)});
      await s.init();
      await s.batch('alice', batch(p));
      await s.close();
    }
    const s = new FlatFileRecordStore(${JSON.stringify(root)});
    await s.init();
    const n = (await s.query('alice', 'com.example.notes', { op: 'true' }, { sort: [], skip: 0, limit: 10000 })).length;
    await s.close();
    console.log(JSON.stringify({ n }));
  `;
  const out = runChildScript<{ n: number }>(script, 'the store hung');
  assert.equal(out.n, 3 * (SYNCFS_FROM_FILES + 72), 'every checkpoint completed by fsyncing file by file');
  assert.equal(readFileSync(noted, 'utf8').trim().split('\n').length, 1, 'sync -f was tried once');
  assert.equal(journalBytes(root), 0);
});

async function emptiedWithin(root: string, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (journalBytes(root) > 0 && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 20));
  return journalBytes(root) === 0;
}

test('checkpoints are spaced out: one is due a while after the previous began, or at once when many files wait', async () => {
  const root = join(dir, 'd');
  const s = new FlatFileRecordStore(root, { checkpoint: { afterMs: 4000, files: 50 } });
  await s.init();
  await s.put(O, T, rec('first')); // the first since the store opened: due at once
  assert.ok(await emptiedWithin(root, 3000), 'the first checkpoint ran');
  await s.put(O, T, rec('second'));
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(journalBytes(root) > 0, 'the next waits for its time');
  await s.batch(O, Array.from({ length: 60 }, (_, i) => ({ kind: 'put' as const, table: T, record: rec(`b${i}`) })));
  assert.ok(await emptiedWithin(root, 3000), 'with 50 files waiting it runs at once');
  await s.put(O, T, rec('third'));
  assert.ok(await emptiedWithin(root, 20_000), 'and the last comes by itself, without a close');
  await s.close();
});

test('a second store opened on the root in the same process finds the first one\'s journal checkpointed, not emptied behind its back', async () => {
  const root = join(dir, 'e');
  // The first store would not checkpoint by itself for a minute: only the second one's opening makes it.
  const a = new FlatFileRecordStore(root, { checkpoint: { afterMs: 60_000, files: 100_000 } });
  await a.init();
  await a.put(O, T, rec('by-a-1'));
  await a.put(O, T, rec('by-a-2'));
  assert.ok(journalBytes(root) > 0, 'a holds its units in its journal');
  const b = new FlatFileRecordStore(root);
  await b.init(); // recovers every owner on the root
  assert.ok((await b.get(O, T, 'by-a-2')) !== null);
  assert.equal(journalBytes(root), 0, 'a checkpointed before b recovered');
  await a.put(O, T, rec('by-a-3'));
  for (const f of ['_journal.json', '_journal2.json']) {
    const text = readFileSync(join(root, O, f));
    if (text.length > 0) assert.ok(text.subarray(0, 9).equals(Buffer.from('{"bytes":')), `${f} starts with an entry's frame, not a hole`);
  }
  await b.close();
  await a.close();
  const c = new FlatFileRecordStore(root);
  await c.init();
  assert.deepEqual((await c.query(O, T, { op: 'true' }, { sort: [], skip: 0, limit: 10 })).map((r) => r._id).sort(), ['by-a-1', 'by-a-2', 'by-a-3']);
  assert.deepEqual((await c.changes(O, 0, 10)).map((ch) => ch.seq), [1, 2, 3]);
  await c.close();
});

test('two stores opening one root at once both open it and find its records', async () => {
  const root = join(dir, 'f');
  const first = new FlatFileRecordStore(root);
  await first.init();
  await first.put(O, T, rec('there'));
  await first.close();
  const [a, b] = [new FlatFileRecordStore(root), new FlatFileRecordStore(root)];
  await Promise.all([a.init(), b.init()]); // both recover the owner at the same time
  assert.ok((await a.get(O, T, 'there')) !== null);
  assert.ok((await b.get(O, T, 'there')) !== null);
  await a.close();
  await b.close();
});
