import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatementNames } from '../../src/storage/postgres/statement-names.js';

/** Names for the PostgreSQL store's generated SQL (statement-names.ts). */

test('statement names: one name per text, stable, and none past the limit', () => {
  const names = new StatementNames('q', 2);
  const a = names.of('SELECT 1');
  const b = names.of('SELECT 2');
  assert.ok(a && b && a !== b);
  assert.equal(names.of('SELECT 1'), a);
  assert.equal(names.of('SELECT 3'), undefined, 'past the limit a text runs unnamed');
  assert.equal(names.of('SELECT 2'), b, 'named texts keep their names');
});
