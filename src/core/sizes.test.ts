import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes } from './sizes.js';

test('byte counts read as people expect them', () => {
  assert.equal(formatBytes(0), '0 bytes');
  assert.equal(formatBytes(1), '1 byte');
  assert.equal(formatBytes(1023), '1023 bytes');
  assert.equal(formatBytes(3584), '3.5 KB');
  assert.equal(formatBytes(50 * 1024 * 1024), '50 MB');
  assert.equal(formatBytes(62_916_923), '60 MB');
  assert.equal(formatBytes(1.25 * 1024 ** 3), '1.3 GB');
});
