import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { FlatFileRecordStore } from '../../src/storage/flatfile/record-store.js';
import { until } from '../helpers/until.js';

/** One process per flat-file root (src/storage/flatfile/root-lock.ts), at the store's level. */

const record = { _id: 'r1', _date_created: 1, _date_modified: 1, n: 1 };

function withRoot(fn: (root: string) => Promise<void>) {
  return async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'freehold-lock-'));
    try {
      await fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

function lockOf(root: string): { pid: number; host: string; command: string } {
  return JSON.parse(readFileSync(path.join(root, '_lock.json'), 'utf8')) as { pid: number; host: string; command: string };
}

test('a store holds its root while open and gives it back on close; stores of one process share it', withRoot(async (root) => {
  const a = new FlatFileRecordStore(root);
  await a.init();
  assert.deepEqual([lockOf(root).pid, lockOf(root).host], [process.pid, hostname()]);
  const b = new FlatFileRecordStore(root);
  await b.init(); // same process: allowed, as before
  await b.put('alice', 'com.example.notes', record);
  await b.close();
  assert.equal(existsSync(path.join(root, '_lock.json')), true, 'still held by the first store');
  await a.init(); // init is idempotent: no second count
  await a.close();
  assert.equal(existsSync(path.join(root, '_lock.json')), false);
}));

test('a root held by another running process is refused, naming it, and nothing is read or recovered', withRoot(async (root) => {
  // Another process that runs and holds the lock: a sleeping child, written as holder.
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    await new Promise((r) => holder.once('spawn', r));
    writeFileSync(path.join(root, '_lock.json'), JSON.stringify({ pid: holder.pid, host: hostname(), since: '2026-01-01T00:00:00.000Z', command: 'freehold serve' }));
    const store = new FlatFileRecordStore(root);
    await assert.rejects(store.init(), (err: Error) => {
      assert.match(err.message, new RegExp(`in use by another freehold process ${holder.pid} \\(freehold serve, since 2026-01-01`));
      assert.match(err.message, new RegExp(`remove ${path.join(root, '_lock.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      return true;
    });
    await store.close();
    assert.equal(lockOf(root).pid, holder.pid, "the holder's lock is left alone");
  } finally {
    holder.kill('SIGKILL');
  }
}));

test("a dead process's lock, a reused pid's and a file that is no lock are taken over", withRoot(async (root) => {
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(gone.stdout);
  // A live process whose start time differs from the one the lock recorded: the pid was reused.
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  // A process that has ended but was never collected (a zombie): its parent never waits for it.
  const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 60']);
  try {
    await new Promise((r) => live.once('spawn', r));
    const zombiePid = Number(await new Promise<string>((r) => parent.stdout.once('data', (d: Buffer) => r(d.toString()))));
    await until('the child is a zombie', () => readFileSync(`/proc/${zombiePid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z'), 5_000);
    const cases = [
      JSON.stringify({ pid: deadPid, host: hostname(), since: 'then', command: 'freehold serve' }),
      JSON.stringify({ pid: live.pid, host: hostname(), since: 'then', procStart: '1', command: 'freehold serve' }),
      JSON.stringify({ pid: deadPid, host: 'another-container', since: 'then', command: 'freehold serve' }),
      JSON.stringify({ pid: zombiePid, host: hostname(), since: 'then', command: 'freehold serve' }),
      'not json at all',
      '',
    ];
    for (const text of cases) {
      writeFileSync(path.join(root, '_lock.json'), text);
      const store = new FlatFileRecordStore(root);
      await store.init();
      assert.equal(lockOf(root).pid, process.pid, text);
      await store.close();
      assert.equal(existsSync(path.join(root, '_lock.json')), false, text);
    }
  } finally {
    live.kill('SIGKILL');
    parent.kill('SIGKILL');
  }
}));
