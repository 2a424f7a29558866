import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DiskThread } from '../../src/storage/flatfile/disk-thread.js';
import { FlatFileRecordStore } from '../../src/storage/flatfile/record-store.js';

/**
 * The flat-file store's disk thread (disk-thread.ts): checkpoint syncs and removals of
 * retired files leave the main thread; a thread that dies hands its work to the next;
 * where no thread can start, the work runs on the main thread. Real threads, real files.
 */

const dir = mkdtempSync(join(tmpdir(), 'freehold-disk-thread-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function files(name: string, n: number): string[] {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return Array.from({ length: n }, (_, i) => {
    const f = join(d, `f${i}`);
    writeFileSync(f, `record ${i}`);
    return f;
  });
}

test('sync: files, folders and the log are synced by the thread; names gone since need nothing', async () => {
  const disk = new DiskThread();
  const fs = files('sync', 10);
  await disk.sync([...fs, join(dir, 'sync', 'gone')], [join(dir, 'sync'), join(dir, 'dropped-table')], fs[0]!, 128);
  assert.equal(disk.answered, 1);
  assert.ok(disk.running);
  await disk.killWorker();
});

test('sync: an error the disk gives is the caller\'s, with its errno code', async () => {
  const disk = new DiskThread();
  const tooLong = join(dir, 'x'.repeat(5000));
  await assert.rejects(disk.sync([tooLong], [], null, 128), (e: NodeJS.ErrnoException) => e.code === 'ENAMETOOLONG');
  // The thread still serves.
  await disk.sync(files('after-error', 2), [], null, 128);
  assert.equal(disk.answered, 2);
  await disk.killWorker();
});

test('a thread that died is replaced by the next request, and an idle one ends', async () => {
  const disk = new DiskThread({ idleMs: 200 });
  await disk.sync(files('first', 2), [], null, 128);
  await disk.killWorker();
  assert.equal(disk.running, false);
  const fs = files('second', 3);
  const gone = fs.map((f) => `${f}.retired`);
  for (const f of gone) writeFileSync(f, 'old');
  await disk.unlink(gone);
  assert.deepEqual(gone.filter((f) => existsSync(f)), []);
  assert.equal(disk.answered, 2, 'both answered by a thread');
  assert.equal(disk.inline, false);
  const t0 = Date.now();
  while (disk.running && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
  assert.equal(disk.running, false, 'the idle thread ended');
});

test('what a dying thread held is done by the next one', async () => {
  const disk = new DiskThread();
  const fs = files('held', 50);
  const pending = disk.unlink(fs);
  await disk.killWorker();
  await pending;
  assert.deepEqual(fs.filter((f) => existsSync(f)), []);
  await disk.killWorker();
});

test('where no thread can start, the work runs on the main thread', async () => {
  // A module that fails as it loads: each thread exits before it serves.
  const broken = join(dir, 'broken-worker.mjs');
  writeFileSync(broken, 'throw new Error("this thread cannot start");\n');
  const disk = new DiskThread({ moduleUrl: pathToFileURL(broken).href });
  const fs = files('inline', 4);
  const gone = fs.map((f) => `${f}.retired`);
  for (const f of gone) writeFileSync(f, 'old');
  await disk.unlink(gone);
  assert.deepEqual(gone.filter((f) => existsSync(f)), [], 'removed all the same');
  await disk.sync(fs, [join(dir, 'inline')], null, 128);
  assert.equal(disk.inline, true, 'given up on threads');
  assert.equal(disk.answered, 0, 'no thread answered');
  await assert.rejects(disk.sync([join(dir, 'y'.repeat(5000))], [], null, 128), (e: NodeJS.ErrnoException) => e.code === 'ENAMETOOLONG');
});

test('a store\'s checkpoint and its retired files go through its disk thread', async () => {
  const disk = new DiskThread();
  const root = join(dir, 'store');
  const store = new FlatFileRecordStore(root, { disk });
  await store.init();
  const rec = (id: string, n: number) => ({ _id: id, _date_created: 1, _date_modified: 1, n });
  await Promise.all(Array.from({ length: 8 }, (_, i) => store.create('alice', 'com.example.notes', rec(`r${i}`, 0))));
  await Promise.all(Array.from({ length: 8 }, (_, i) => store.put('alice', 'com.example.notes', rec(`r${i}`, 1))));
  await store.close();
  assert.ok(disk.answered >= 2, `a checkpoint and an unlink request at least (${disk.answered})`);
  const left = readdirSync(join(root, 'alice', 'com.example.notes')).filter((n) => n.startsWith('.tmp'));
  assert.deepEqual(left, [], 'no retired file left behind');
  const journals = ['_journal.json', '_journal2.json'].map((f) => statSync(join(root, 'alice', f)).size);
  assert.deepEqual(journals, [0, 0], 'the checkpoint completed');
  await disk.killWorker();
});
