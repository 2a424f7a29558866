import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type as TypeBox, type TSchema } from '@sinclair/typebox';
import { Type } from '../../src/http/typed-schema.js';

/** What Ajv and the OpenAPI document see: the JSON, key order included. */
const json = (schema: unknown): string => JSON.stringify(schema);

function same(ours: TSchema, theirs: TSchema, what: string): void {
  assert.equal(json(ours), json(theirs), what);
}

test('each constructor gives the JSON TypeBox gives, options and key order included', () => {
  same(Type.String(), TypeBox.String(), 'String');
  same(Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z]+$', description: 'd' }), TypeBox.String({ minLength: 1, maxLength: 100, pattern: '^[a-z]+$', description: 'd' }), 'String options');
  same(Type.Number({ minimum: 0 }), TypeBox.Number({ minimum: 0 }), 'Number');
  same(Type.Integer({ minimum: 1, maximum: 9 }), TypeBox.Integer({ minimum: 1, maximum: 9 }), 'Integer');
  same(Type.Boolean(), TypeBox.Boolean(), 'Boolean');
  same(Type.Null(), TypeBox.Null(), 'Null');
  same(Type.Unknown(), TypeBox.Unknown(), 'Unknown');
  same(Type.Unknown({ description: 'x' }), TypeBox.Unknown({ description: 'x' }), 'Unknown options');
  same(Type.Literal('Accept'), TypeBox.Literal('Accept'), 'Literal string');
  same(Type.Literal(3), TypeBox.Literal(3), 'Literal number');
  same(Type.Literal(true), TypeBox.Literal(true), 'Literal boolean');
  same(Type.Array(Type.String({ maxLength: 5 }), { maxItems: 50 }), TypeBox.Array(TypeBox.String({ maxLength: 5 }), { maxItems: 50 }), 'Array');
  same(Type.Union([Type.Null(), Type.String()]), TypeBox.Union([TypeBox.Null(), TypeBox.String()]), 'Union');
  same(Type.Record(Type.String(), Type.Integer()), TypeBox.Record(TypeBox.String(), TypeBox.Integer()), 'Record');
});

test('Object lists exactly its non-optional properties as required, as TypeBox does', () => {
  same(
    Type.Object({ a: Type.String(), b: Type.Optional(Type.Integer()), c: Type.Optional(Type.Union([Type.Literal('x'), Type.Literal('y')])), d: Type.Boolean() }, { additionalProperties: false }),
    TypeBox.Object({ a: TypeBox.String(), b: TypeBox.Optional(TypeBox.Integer()), c: TypeBox.Optional(TypeBox.Union([TypeBox.Literal('x'), TypeBox.Literal('y')])), d: TypeBox.Boolean() }, { additionalProperties: false }),
    'mixed Object');
  same(Type.Object({ a: Type.Optional(Type.String()) }), TypeBox.Object({ a: TypeBox.Optional(TypeBox.String()) }), 'all optional: no required list');
  same(Type.Object({}), TypeBox.Object({}), 'empty Object');
  const nested = Type.Object({ inner: Type.Optional(Type.Object({ x: Type.Number() })) });
  same(nested, TypeBox.Object({ inner: TypeBox.Optional(TypeBox.Object({ x: TypeBox.Number() })) }), 'nested');
});

test('Optional marks a copy: the same schema stays required where it is used plainly', () => {
  const name = Type.String({ maxLength: 10 });
  const schema = Type.Object({ first: name, second: Type.Optional(name) });
  assert.deepEqual((schema as unknown as { required: string[] }).required, ['first']);
  assert.equal(json(name), json({ maxLength: 10, type: 'string' }));
});
