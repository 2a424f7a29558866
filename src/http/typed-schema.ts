import type {
  ArrayOptions, IntegerOptions, NumberOptions, ObjectOptions, SchemaOptions, StringOptions,
  TArray, TBoolean, TInteger, TLiteral, TLiteralValue, TNull, TNumber, TObject, TOptional,
  TProperties, TRecord, TSchema, TString, TUnion, TUnknown,
} from '@sinclair/typebox';

/**
 * The route schemas' builder: the dozen TypeBox constructors the routes use, with
 * TypeBox's types (so the TypeBox type provider still types each handler's request)
 * but plain JSON Schema objects at run time. TypeBox itself is some 200 modules and
 * 1.6 MB of heap once loaded, for the server only to hand these objects to Ajv;
 * here they cost what they are.
 *
 * Each constructor returns exactly the JSON TypeBox 0.34 returns, key order
 * included (test/http/typed-schema.test.ts compares them), minus TypeBox's symbol
 * tags. Code that needs TypeBox's run-time (Value, TypeCompiler) builds its schemas
 * with TypeBox itself, as the import reader does.
 */

/** Marks a property schema as optional, for Object's `required` list; invisible in JSON. */
const OPTIONAL = Symbol('freehold.optional');

type Options = SchemaOptions | undefined;

/** TypeBox's CreateType in its default instance mode: options first, then the schema's own keys. */
function create<T>(schema: Record<string, unknown>, options: Options): T {
  return (options !== undefined ? { ...options, ...schema } : schema) as T;
}

function isOptional(schema: TSchema): boolean {
  return (schema as { [OPTIONAL]?: true })[OPTIONAL] === true;
}

export const Type = {
  String: (options?: StringOptions): TString => create({ type: 'string' }, options),
  Number: (options?: NumberOptions): TNumber => create({ type: 'number' }, options),
  Integer: (options?: IntegerOptions): TInteger => create({ type: 'integer' }, options),
  Boolean: (options?: SchemaOptions): TBoolean => create({ type: 'boolean' }, options),
  Null: (options?: SchemaOptions): TNull => create({ type: 'null' }, options),
  Unknown: (options?: SchemaOptions): TUnknown => create({}, options),
  Literal: <T extends TLiteralValue>(value: T, options?: SchemaOptions): TLiteral<T> =>
    create({ const: value, type: typeof value }, options),
  Array: <T extends TSchema>(items: T, options?: ArrayOptions): TArray<T> => create({ type: 'array', items }, options),
  /** A union of two or more schemas (TypeBox collapses shorter lists; no route writes one). */
  Union: <T extends [TSchema, TSchema, ...TSchema[]]>(types: [...T], options?: SchemaOptions): TUnion<T> =>
    create({ anyOf: types }, options),
  Optional: <T extends TSchema>(schema: T): TOptional<T> => ({ ...schema, [OPTIONAL]: true }) as unknown as TOptional<T>,
  Object: <T extends TProperties>(properties: T, options?: ObjectOptions): TObject<T> => {
    const required = Object.keys(properties).filter((key) => !isOptional(properties[key]!));
    return create(required.length > 0 ? { type: 'object', required, properties } : { type: 'object', properties }, options);
  },
  /** A record with string keys: TypeBox's pattern for "any string" is `^(.*)$`. */
  Record: <V extends TSchema>(_key: TString, value: V, options?: ObjectOptions): TRecord<TString, V> =>
    create({ type: 'object', patternProperties: { '^(.*)$': value } }, options),
};
