import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { FreeholdError } from '../core/errors.js';

/** Methods whose requests say nothing with a body: an empty one is no body, whatever the Content-Type. */
const BODYLESS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS']);

/**
 * A number literal JSON.parse can only read as ±Infinity has an exponent of three or
 * more digits or 309 or more digits in a row; text without either cannot hold one. The
 * test is over the raw text (strings included), so a match only means "walk the value".
 * The lookbehind tries the 309 digits only where a run of digits starts: without it, a
 * 2 MB string of digits took over a second to test.
 */
const MAYBE_OVERFLOW = /[eE][+-]?\d{3}|(?<!\d)\d{309}/;

/**
 * The JSON body parser of every route.
 *
 * - An empty body on a method that carries no data is no body: freezr's client library
 *   sends `DELETE /ceps/delete/…` with `Content-Type: application/json` and nothing
 *   after it, and other CEPS clients copy it. POST and PUT with an empty JSON body
 *   are still 400.
 * - Bytes that are not UTF-8 are refused (400). Decoding them would turn each bad
 *   sequence into U+FFFD and store text the client never sent.
 * - A number too large for a double (`1e400`) is refused (400). JSON.parse reads it as
 *   Infinity, which JSON.stringify then writes as `null`: the record would lose the value.
 *
 * Everything else goes to Fastify's own parser (prototype-poisoning checks, limits,
 * the same errors for malformed JSON).
 */
export function installJsonBodyParser(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    // parseAs 'buffer' hands over a Buffer; the union type is Fastify's for both parseAs kinds.
    const bytes = body as Buffer;
    if (bytes.length === 0 && BODYLESS.has(request.method)) {
      done(null, undefined);
      return;
    }
    if (!isUtf8(bytes)) {
      done(notUtf8(), undefined);
      return;
    }
    const text = bytes.toString('utf8');
    json(request, text, (err, value) => {
      // Fastify's parser has refused `__proto__` keys already.
      const problem = err ?? (MAYBE_OVERFLOW.test(text) ? valueProblem(value, false) : null);
      done(problem, problem ? undefined : value);
    });
  });
}

/**
 * JSON text that arrived as bytes outside the body parser (a multipart field), held to
 * the same rules: UTF-8, no number beyond a double, no `__proto__` key (what Fastify's
 * parser refuses). A syntax error is left to the caller, which knows what the text was.
 */
export function parseStrictJson(bytes: Buffer): unknown {
  if (!isUtf8(bytes)) throw notUtf8();
  const value: unknown = JSON.parse(bytes.toString('utf8'));
  const problem = valueProblem(value, true);
  if (problem) throw problem;
  return value;
}

const notUtf8 = () => new FreeholdError('bad_request', 'The body is not valid UTF-8');

/**
 * What a parsed JSON value may not hold, or null: ±Infinity anywhere, and (`protoKeys`)
 * a key named `__proto__`. Iterative, as bodies may nest deeply.
 */
function valueProblem(value: unknown, protoKeys: boolean): FreeholdError | null {
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'number' && !Number.isFinite(v)) return new FreeholdError('bad_request', 'A number in the body is too large to represent (beyond ±1.8e308)');
    if (v === null || typeof v !== 'object') continue;
    if (protoKeys && Object.hasOwn(v, '__proto__')) return new FreeholdError('bad_request', 'A key named __proto__ is not allowed');
    for (const child of Object.values(v)) stack.push(child);
  }
  return null;
}
