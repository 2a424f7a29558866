import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateQuery, validateSort, validateWhere } from '../../src/query/validate.js';
import { FreeholdError } from '../../src/core/errors.js';

function refused(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FreeholdError, `expected FreeholdError, got ${String(e)}`);
    assert.equal(e.code, 'invalid_query');
    assert.equal(e.status, 400);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

test('empty queries match everything', () => {
  assert.deepEqual(validateWhere(undefined), { op: 'true' });
  assert.deepEqual(validateWhere(null), { op: 'true' });
  assert.deepEqual(validateWhere({}), { op: 'true' });
});

test('equality on scalars and dotted paths', () => {
  assert.deepEqual(validateWhere({ a: 1 }), { op: 'eq', path: ['a'], value: 1 });
  assert.deepEqual(validateWhere({ 'a.b-c.d_e': 'x' }), { op: 'eq', path: ['a', 'b-c', 'd_e'], value: 'x' });
  assert.deepEqual(validateWhere({ a: null }), { op: 'eq', path: ['a'], value: null });
  assert.deepEqual(validateWhere({ a: true, b: 'x' }), {
    op: 'and',
    items: [
      { op: 'eq', path: ['a'], value: true },
      { op: 'eq', path: ['b'], value: 'x' },
    ],
  });
});

test('reserved fields are queryable', () => {
  for (const f of ['_id', '_date_created', '_date_modified', '_owner']) {
    assert.deepEqual(validateWhere({ [f]: 'x' }), { op: 'eq', path: [f], value: 'x' });
  }
});

test('every field operator', () => {
  const q = validateWhere({
    a: { $eq: 1 }, b: { $ne: 'x' }, c: { $lt: 1 }, d: { $lte: 'm' }, e: { $gt: 2 }, f: { $gte: 3 },
    g: { $in: [1, 'a', null, true] }, h: { $nin: [] }, i: { $exists: false },
  });
  assert.deepEqual(q, {
    op: 'and',
    items: [
      { op: 'eq', path: ['a'], value: 1 },
      { op: 'ne', path: ['b'], value: 'x' },
      { op: 'lt', path: ['c'], value: 1 },
      { op: 'lte', path: ['d'], value: 'm' },
      { op: 'gt', path: ['e'], value: 2 },
      { op: 'gte', path: ['f'], value: 3 },
      { op: 'in', path: ['g'], values: [1, 'a', null, true] },
      { op: 'nin', path: ['h'], values: [] },
      { op: 'exists', path: ['i'], value: false },
    ],
  });
  assert.deepEqual(validateWhere({ n: { $gt: 1, $lt: 5 } }), {
    op: 'and',
    items: [
      { op: 'gt', path: ['n'], value: 1 },
      { op: 'lt', path: ['n'], value: 5 },
    ],
  });
});

test('$and, $or and both forms of $not', () => {
  assert.deepEqual(validateWhere({ $or: [{ a: 1 }, { b: { $gt: 2 } }] }), {
    op: 'or',
    items: [
      { op: 'eq', path: ['a'], value: 1 },
      { op: 'gt', path: ['b'], value: 2 },
    ],
  });
  assert.deepEqual(validateWhere({ $and: [{ a: 1 }] }), { op: 'and', items: [{ op: 'eq', path: ['a'], value: 1 }] });
  assert.deepEqual(validateWhere({ a: { $not: { $gt: 5 } } }), { op: 'not', item: { op: 'gt', path: ['a'], value: 5 } });
  assert.deepEqual(validateWhere({ $not: { a: 1 } }), { op: 'not', item: { op: 'eq', path: ['a'], value: 1 } });
});

test('$regex: substring, prefix, escapes, options', () => {
  assert.deepEqual(validateWhere({ t: { $regex: 'abc' } }), { op: 'contains', path: ['t'], value: 'abc', anchored: false, caseInsensitive: false });
  assert.deepEqual(validateWhere({ t: { $regex: '^ab', $options: 'i' } }), { op: 'contains', path: ['t'], value: 'ab', anchored: true, caseInsensitive: true });
  assert.deepEqual(validateWhere({ t: { $regex: 'a\\.b\\$\\/c-d e', $options: '' } }), { op: 'contains', path: ['t'], value: 'a.b$/c-d e', anchored: false, caseInsensitive: false });
  assert.deepEqual(validateWhere({ t: { $regex: '\\^x' } }), { op: 'contains', path: ['t'], value: '^x', anchored: false, caseInsensitive: false });
  assert.deepEqual(validateWhere({ t: { $not: { $regex: 'x' } } }).op, 'not');
  for (const bad of ['a.b', 'a*', 'a+', 'a?', '(a)', '[a]', 'a{2}', 'a|b', 'ab$', 'a^b', '\\d', '\\w+', 'a\\', '^^a']) {
    refused(() => validateWhere({ t: { $regex: bad } }), /\$regex/);
  }
  refused(() => validateWhere({ t: { $regex: 'a'.repeat(201) } }), /200/);
  refused(() => validateWhere({ t: { $regex: 'a', $options: 'g' } }), /\$options/);
  refused(() => validateWhere({ t: { $regex: 'a', $options: 'im' } }), /\$options/);
  refused(() => validateWhere({ t: { $options: 'i' } }), /\$options/);
  refused(() => validateWhere({ t: { $regex: 5 } }), /\$regex/);
  refused(() => validateWhere({ t: { $regex: { source: 'a' } } }), /\$regex/);
});

test('blocked and unknown operators are refused by name', () => {
  for (const op of ['$where', '$function', '$expr', '$accumulator', '$nor', '$comment', '$foo']) {
    refused(() => validateWhere({ [op]: 'x' }), new RegExp('\\' + op));
  }
  for (const op of ['$elemMatch', '$size', '$all', '$type', '$mod', '$where', '$bar']) {
    refused(() => validateWhere({ a: { [op]: 1 } }), new RegExp('\\' + op));
  }
  refused(() => validateWhere({ 'a.$b': 1 }), /\$b/);
  refused(() => validateWhere({ a: { $eq: 1, b: 2 } }), /objects/);
});

test('field names are validated', () => {
  for (const bad of ['', 'a..b', '.a', 'a.', "a'b", 'a"b', 'a\\b', 'a\u0000b', 'tab\there', 'lone\ud800', 'a'.repeat(600)]) {
    refused(() => validateWhere({ [bad]: 1 }), /field/i);
  }
  // Any other name a record can hold: other scripts, spaces, punctuation, emoji.
  for (const good of ['é', 'a b', 'a/b', 'ключ', '日本語', 'price (€)', '😀', 'a$b', 'x.ключ с пробелом']) {
    assert.doesNotThrow(() => validateWhere({ [good]: 1 }), good);
    assert.doesNotThrow(() => validateSort({ [good]: -1 }), good);
  }
});

test('values must be scalars of the right type', () => {
  refused(() => validateWhere({ a: { b: 1 } }), /dotted paths/);
  refused(() => validateWhere({ a: [1, 2] }), /array/);
  refused(() => validateWhere({ a: { $eq: { b: 1 } } }), /object/);
  refused(() => validateWhere({ a: { $eq: [1] } }), /array/);
  refused(() => validateWhere({ a: { $ne: [1] } }), /array/);
  refused(() => validateWhere({ a: { $gt: true } }), /string or a number/);
  refused(() => validateWhere({ a: { $lt: null } }), /string or a number/);
  refused(() => validateWhere({ a: { $in: 'x' } }), /array/);
  refused(() => validateWhere({ a: { $in: [{}] } }), /object/);
  refused(() => validateWhere({ a: { $nin: [[1]] } }), /array/);
  refused(() => validateWhere({ a: { $exists: 1 } }), /true or false/);
  refused(() => validateWhere({ a: Infinity }), /finite/);
  refused(() => validateWhere({ a: {} }), /Empty/);
  refused(() => validateWhere({ a: { $not: 5 } }), /\$not/);
  refused(() => validateWhere({ a: { $not: { b: 1 } } }), /\$not/);
  refused(() => validateWhere({ $and: [] }), /\$and/);
  refused(() => validateWhere({ $or: {} }), /\$or/);
  refused(() => validateWhere({ $and: [1] }), /object/);
  refused(() => validateWhere({ $not: [] }), /object/);
  refused(() => validateWhere([]), /object/);
  refused(() => validateWhere('a'), /object/);
  refused(() => validateWhere(5), /object/);
});

test('size limits', () => {
  validateWhere({ a: 'x'.repeat(4096) });
  refused(() => validateWhere({ a: 'x'.repeat(4097) }), /4096/);
  refused(() => validateWhere({ a: { $in: ['ok', 'x'.repeat(4097)] } }), /4096/);
  validateWhere({ a: { $in: Array.from({ length: 1000 }, (_, i) => i) } });
  refused(() => validateWhere({ a: { $in: Array.from({ length: 1001 }, (_, i) => i) } }), /1000/);
  const flat = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`f${i}`, i]));
  validateWhere(flat);
  refused(() => validateWhere({ $or: [flat, flat] }), /200 conditions/);
  let deep: unknown = { a: 1 };
  for (let i = 0; i < 18; i++) deep = { $and: [deep] };
  validateWhere(deep);
  for (let i = 0; i < 3; i++) deep = { $and: [deep] };
  refused(() => validateWhere(deep), /20 levels/);
  let notDeep: unknown = { $gt: 1 };
  for (let i = 0; i < 25; i++) notDeep = { $not: notDeep };
  refused(() => validateWhere({ a: notDeep }), /20 levels/);
});

test('sort', () => {
  assert.deepEqual(validateSort(undefined), []);
  assert.deepEqual(validateSort({ a: 1, 'b.c': -1, d: 'asc', e: 'DESC', _date_modified: -1 }), [
    { path: ['a'], direction: 1 },
    { path: ['b', 'c'], direction: -1 },
    { path: ['d'], direction: 1 },
    { path: ['e'], direction: -1 },
    { path: ['_date_modified'], direction: -1 },
  ]);
  refused(() => validateSort({ a: 1, b: 1, c: 1, d: 1, e: 1, f: 1 }), /5/);
  refused(() => validateSort({ a: 2 }), /direction/);
  refused(() => validateSort({ a: true }), /direction/);
  refused(() => validateSort({ 'a..b': 1 }), /field/i);
  refused(() => validateSort({ $where: 1 }), /\$where/);
  refused(() => validateSort([['a', 1]]), /sort/);
  refused(() => validateSort('a'), /sort/);
});

test('count and skip', () => {
  assert.deepEqual(validateQuery(undefined).options, { sort: [], skip: 0, limit: 500 });
  assert.deepEqual(validateQuery({}, { count: 5000, skip: 10_000_000 }).options, { sort: [], skip: 10_000_000, limit: 5000 });
  assert.deepEqual(validateQuery({}, { count: '20', skip: '3' }).options, { sort: [], skip: 3, limit: 20 });
  refused(() => validateQuery({}, { count: 5001 }), /count/);
  refused(() => validateQuery({}, { count: 0 }), /count/);
  refused(() => validateQuery({}, { count: 1.5 }), /count/);
  refused(() => validateQuery({}, { count: 'ten' }), /count/);
  refused(() => validateQuery({}, { count: '-1' }), /count/);
  refused(() => validateQuery({}, { skip: -1 }), /skip/);
  refused(() => validateQuery({}, { skip: 10_000_001 }), /skip/);
  refused(() => validateQuery({}, { skip: {} }), /skip/);
});
