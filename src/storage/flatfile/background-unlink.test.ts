import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { BackgroundUnlinks, retiredNameFor } from './background-unlink.js';
import { DiskThread } from './disk-thread.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-unlinks-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const nextTurn = () => new Promise((r) => setImmediate(r));

test('retiredNameFor: a distinct temp name in the same directory as the record', () => {
  const file = join(dir, 't', 'r1.json');
  const a = retiredNameFor(file);
  const b = retiredNameFor(file);
  assert.notEqual(a, b);
  assert.equal(dirname(a), dirname(file));
  assert.match(basename(a), /^\.tmp-old-/);
});

test('BackgroundUnlinks: the names of one turn go to the disk thread as one request; every one is removed, ones already gone are skipped', async () => {
  const disk = new DiskThread();
  const unlinks = new BackgroundUnlinks(disk);
  const files = Array.from({ length: 20 }, (_, i) => join(dir, `a${i}`));
  for (const f of files) writeFileSync(f, 'x');
  unlinks.add(join(dir, 'never-there'));
  for (const f of files) unlinks.add(f);
  assert.equal(unlinks.pending, 21);
  assert.ok(files.every((f) => existsSync(f)), 'nothing is removed on the calling thread');
  await unlinks.drained();
  assert.equal(unlinks.pending, 0);
  assert.deepEqual(files.filter((f) => existsSync(f)), []);
  assert.equal(disk.answered, 1, 'one request for the turn');
  assert.ok(disk.running, 'a thread did it');
  await unlinks.drained(); // nothing pending: resolves at once
  await disk.killWorker();
});

test('BackgroundUnlinks: whenBelow resolves once the requests before it are done; later turns are later requests', async () => {
  const disk = new DiskThread();
  const unlinks = new BackgroundUnlinks(disk);
  const first = Array.from({ length: 5 }, (_, i) => join(dir, `b${i}`));
  const second = Array.from({ length: 5 }, (_, i) => join(dir, `c${i}`));
  for (const f of [...first, ...second]) writeFileSync(f, 'x');
  for (const f of first) unlinks.add(f);
  await nextTurn();
  for (const f of second) unlinks.add(f);
  await unlinks.whenBelow(6);
  assert.deepEqual(first.filter((f) => existsSync(f)), [], 'the first turn\'s names are gone');
  await unlinks.drained();
  assert.deepEqual(second.filter((f) => existsSync(f)), []);
  assert.equal(disk.answered, 2);
  await disk.killWorker();
});
