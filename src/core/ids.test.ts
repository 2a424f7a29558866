import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newRecordId } from './ids.js';

test('record ids are letters and digits only (as freezr\'s: apps split element ids on _), unique, and sort by creation time', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 5000; i++) ids.add(newRecordId());
  assert.equal(ids.size, 5000);
  for (const id of ids) assert.match(id, /^[A-Za-z0-9]{25}$/);
  const a = newRecordId(1_700_000_000_000);
  const b = newRecordId(1_700_000_000_001);
  const c = newRecordId(1_800_000_000_000);
  assert.ok(a < b && b < c);
});

test('the random part carries over 96 bits: no two ids made in one millisecond share it, and every character turns up', () => {
  const now = Date.now();
  const tails = Array.from({ length: 2000 }, () => newRecordId(now).slice(8));
  assert.equal(new Set(tails).size, 2000);
  assert.ok(17 * Math.log2(62) > 96);
  // 34,000 random characters: each of the 62 is expected ~548 times; a character never drawn would mean a broken draw.
  const seen = new Map<string, number>();
  for (const c of tails.join('')) seen.set(c, (seen.get(c) ?? 0) + 1);
  assert.equal(seen.size, 62);
  for (const [c, n] of seen) assert.ok(n > 300 && n < 850, `${c} drawn ${n} times`);
});
