import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newRecordId } from './ids.js';

test('record ids are URL-safe, unique, and sort by creation time', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 5000; i++) ids.add(newRecordId());
  assert.equal(ids.size, 5000);
  for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{24}$/);
  const a = newRecordId(1_700_000_000_000);
  const b = newRecordId(1_700_000_000_001);
  const c = newRecordId(1_800_000_000_000);
  assert.ok(a < b && b < c);
});

test('the random part carries 96 bits: no two ids made in one millisecond share it', () => {
  const now = Date.now();
  const tails = new Set(Array.from({ length: 2000 }, () => newRecordId(now).slice(8)));
  assert.equal(tails.size, 2000);
});
