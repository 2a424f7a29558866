import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { BackgroundUnlinks, retiredNameFor } from './background-unlink.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-unlinks-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('retiredNameFor: a distinct temp name in the same directory as the record', () => {
  const file = join(dir, 't', 'r1.json');
  const a = retiredNameFor(file);
  const b = retiredNameFor(file);
  assert.notEqual(a, b);
  assert.equal(dirname(a), dirname(file));
  assert.match(basename(a), /^\.tmp-old-/);
});

test('BackgroundUnlinks: removes every name, skips ones already gone, and reports when drained', async () => {
  const unlinks = new BackgroundUnlinks();
  const files = Array.from({ length: 20 }, (_, i) => join(dir, `a${i}`));
  for (const f of files) writeFileSync(f, 'x');
  unlinks.add(join(dir, 'never-there'));
  for (const f of files) unlinks.add(f);
  assert.ok(unlinks.pending > 0);
  await unlinks.drained();
  assert.equal(unlinks.pending, 0);
  assert.deepEqual(files.filter((f) => existsSync(f)), []);
  await unlinks.drained(); // nothing pending: resolves at once
});

test('BackgroundUnlinks: a long queue (past its compaction point) is worked through in order; whenBelow resolves on the way', async () => {
  const unlinks = new BackgroundUnlinks();
  // Names that do not exist cost no disk work; real files at the end show the queue reached them.
  for (let i = 0; i < 10_000; i++) unlinks.add(join(dir, `missing-${i}`));
  const last = Array.from({ length: 5 }, (_, i) => join(dir, `b${i}`));
  for (const f of last) {
    writeFileSync(f, 'x');
    unlinks.add(f);
  }
  let halfway = false;
  const half = unlinks.whenBelow(5_000).then(() => {
    halfway = true;
    assert.ok(last.every((f) => existsSync(f)), 'the files at the end are still there when half the queue is done');
  });
  await unlinks.drained();
  await half;
  assert.ok(halfway);
  assert.deepEqual(last.filter((f) => existsSync(f)), []);
});
