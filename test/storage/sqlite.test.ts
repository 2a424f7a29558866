import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteRecordStore } from '../../src/storage/sqlite/record-store.js';
import { recordStoreSuite } from './record-store.suite.js';
import { compileSqlite, compileSqliteOrder } from '../../src/query/sqlite.js';
import { validateWhere } from '../../src/query/validate.js';

const dir = mkdtempSync(join(tmpdir(), 'freehold-sqlite-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

recordStoreSuite('sqlite', async () => new SqliteRecordStore(join(dir, `t${n++}.db`)));
recordStoreSuite('sqlite :memory:', async () => new SqliteRecordStore(':memory:'));

test('sqlite compiler: paths are literals only when safe, params match placeholders', () => {
  assert.throws(() => compileSqlite({ op: 'eq', path: ["a'b"], value: 1 }, 'data'), /Unsafe/);
  assert.throws(() => compileSqlite({ op: 'eq', path: ['a'], value: 1 }, 'data; DROP'), /Unsafe/);
  assert.throws(() => compileSqliteOrder([{ path: ['a"'], direction: 1 }], 'data'), /Unsafe/);
  const aliased = compileSqlite(validateWhere({ _id: 'x', 'a.b': 'y' }), 'r.data');
  assert.match(aliased.sql, /r\.id = \?/);
  assert.match(aliased.sql, /json_extract\(r\.data, '\$\."a"\."b"'\)/);
  const q = validateWhere({
    $or: [{ a: { $in: [1, 2, 'x', 'y', null, true] } }, { _id: { $in: [1, 2] } }, { _date_created: { $regex: 'x' } }],
    b: { $not: { $regex: '^Ab', $options: 'i' } },
    c: { $nin: ['p', 'q'] },
  });
  const { sql, params } = compileSqlite(q, 'data');
  assert.equal(sql.split('?').length - 1, params.length);
  assert.ok(!params.some((p) => typeof p === 'boolean'), 'booleans are never bound (better-sqlite3 refuses them)');
});
