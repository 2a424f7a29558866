import type AjvCompiler from '@fastify/ajv-compiler';
import { createRequire } from 'node:module';
import type SerializerSelector from '@fastify/fast-json-stringify-compiler';
import type { FastifySchemaCompiler, FastifySerializerCompiler, FastifyServerOptions } from 'fastify';

/**
 * Route validators and response serializers compiled at a route's first request
 * instead of at start-up, through Fastify's own compilers with the options it
 * would use. An idle server holds only what its routes have needed: compiling all
 * of them up front costs about 1 MB of memory and part of the start-up time, for
 * routes most servers rarely see (2FA, migration, OAuth).
 *
 * The cost of laziness is that a schema that does not compile would fail at its
 * first request rather than at start-up; `compileAll()` compiles everything still
 * pending, and the test suite calls it on a full server so that cannot ship.
 *
 * The validator compiler itself is loaded at the first validator compile too, and with
 * it the Ajv instance it builds (formats added, meta-schemas compiled): an idle server,
 * and one that has only answered /ceps/ping, never needs them (0.8 MB resident,
 * measured after 15 s idle). So is the serializer compiler, fast-json-stringify, which
 * loads all of Ajv and its formats as it is loaded (for the schemas that branch): a
 * server that has answered nothing with a response schema has not loaded them. Fastify's
 * own error replies use a serializer of their own that needs neither.
 *
 * Fastify treats a compiler supplied this way as custom, which only changes one
 * thing: header schemas are not lower-cased for it. freehold declares none; one
 * added later must spell its keys in lower case.
 */

type SchemaControllerOptions = NonNullable<FastifyServerOptions['schemaController']>;
type CompilersFactory = NonNullable<SchemaControllerOptions['compilersFactory']>;
type ValidatorFactory = NonNullable<CompilersFactory['buildValidator']>;
type SerializerFactory = NonNullable<CompilersFactory['buildSerializer']>;
type ValidationResult = ReturnType<FastifySchemaCompiler<unknown>>;

export interface LazyCompilers {
  compilersFactory: { buildValidator: ValidatorFactory; buildSerializer: SerializerFactory };
  /** Compiles every validator and serializer not compiled yet; throws what a compiler throws. */
  compileAll(): void;
}

const requireCjs = createRequire(import.meta.url);

export function lazyCompilers(): LazyCompilers {
  const pending = new Set<() => void>();
  let ajvFactory: ValidatorFactory | undefined;
  const validatorFactory = (): ValidatorFactory => (ajvFactory ??= (requireCjs('@fastify/ajv-compiler') as typeof AjvCompiler)());
  let serializerFactory: SerializerFactory | undefined;
  const serializerSelector = (): SerializerFactory =>
    (serializerFactory ??= (requireCjs('@fastify/fast-json-stringify-compiler') as typeof SerializerSelector)());

  const buildValidator: ValidatorFactory = (externalSchemas, options) => {
    let compile: ReturnType<ValidatorFactory> | undefined;
    const lazy: FastifySchemaCompiler<unknown> = (route) => {
      let compiled: ValidationResult | undefined;
      const ensure = (): ValidationResult => {
        if (!compiled) {
          compile ??= validatorFactory()(externalSchemas, options);
          compiled = compile(route as Parameters<typeof compile>[0]);
          pending.delete(ensure);
        }
        return compiled;
      };
      pending.add(ensure);
      // Fastify reads `.errors` off the function it called, as Ajv leaves them there.
      const validate = ((data: unknown) => {
        const fn = ensure();
        const result = fn(data);
        validate.errors = fn.errors;
        return result;
      }) as ValidationResult;
      return validate;
    };
    return lazy as ReturnType<ValidatorFactory>;
  };

  const buildSerializer: SerializerFactory = (externalSchemas, options) => {
    let compile: ReturnType<SerializerFactory> | undefined;
    const lazy: FastifySerializerCompiler<unknown> = (route) => {
      let compiled: ((data: unknown) => string) | undefined;
      const ensure = (): ((data: unknown) => string) => {
        if (!compiled) {
          compile ??= serializerSelector()(externalSchemas, options);
          compiled = compile(route as Parameters<typeof compile>[0]);
          pending.delete(ensure);
        }
        return compiled;
      };
      pending.add(ensure);
      return (data: unknown) => ensure()(data);
    };
    return lazy as ReturnType<SerializerFactory>;
  };

  return {
    compilersFactory: { buildValidator, buildSerializer },
    compileAll() {
      for (const ensure of [...pending]) ensure();
    },
  };
}
