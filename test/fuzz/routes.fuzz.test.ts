/**
 * Security hardening, item 6: fuzz every route with generated *bad* requests.
 *
 * Routes are enumerated from the running server (Fastify's route tree, cross-checked
 * with /openapi.json), so a route added later is fuzzed without touching this file.
 * Each (route, method) gets the same share of requests for each of four callers:
 * anonymous, a valid app token, a signed-in owner and a signed-in admin.
 *
 * Invariants, checked per batch (one route × one caller):
 *   - no 5xx, ever;
 *   - every 4xx is JSON `{ error, message }` (HTML only where that is the contract);
 *   - the server still answers /ceps/ping;
 *   - no record and no blob changed: every owner's tables (and the host's system
 *     tables) and the whole blob listing are snapshotted before and compared after.
 *
 * Requests are generated to be *invalid* (a wrong-typed field, a refused `_` key,
 * broken multipart, a hostile path id, …), so none may write. The few shapes that are
 * valid by nature (signing out with a live session) are excluded explicitly below,
 * never by weakening the comparison.
 *
 * Deterministic: one seed (printed; FUZZ_SEED overrides), one PRNG, fixed order.
 * FUZZ_TOTAL sets the number of inject requests (default 10 500).
 *
 * A second, smaller batch talks raw HTTP/1.1 over sockets to a listening server for
 * what inject cannot express (Content-Length mismatches, bad chunking, smuggling
 * shapes, oversized headers, raw bytes in the request line).
 */
import { test, before, after } from 'node:test';
import { makeRng } from '../helpers/rng.js';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : 0x5eed_f00d;
const TOTAL = Number(process.env.FUZZ_TOTAL ?? 10_500);
const APP = 'com.example.notes';
const FIXTURE = path.resolve(import.meta.dirname, '..', 'fixtures', 'apps', APP);
const OWNERS = ['alice', 'bob', 'boss'];

// ---------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------

type Rng = ReturnType<typeof makeRng>;

// ---------------------------------------------------------------------------
// Hostile values
// ---------------------------------------------------------------------------

/** Odd strings for JSON values and query parameters (never a valid app name or user id). */
const HOSTILE_STRINGS = [
  '', ' ', 'NaN', 'Infinity', '-0', '1e308', 'null', 'undefined', 'true', '[]', '{}',
  '\ud800', '\udfff', 'a\ud800b', '\u202eevil\u202c', '\u200b', '\u200d\u200d', '\ufeff', '\u0000', 'a\u0000b',
  '\u0001\u001f\u007f', '😀'.repeat(20), 'e\u0301', '\u0130\u0131', '..', '../../etc/passwd', '..\\..\\windows',
  '%2e%2e%2f', '%00', '%zz', '$where', '$gt', '__proto__', 'constructor', 'prototype', '<script>alert(1)</script>',
  "' OR 1=1 --", '"; DROP TABLE records; --', '${jndi:ldap://x}', 'x'.repeat(1000), 'a.b.c.d.e', 'system.users',
  'com.example.notes.files', 'dev.ceps.messages.got', 'info.freezr.admin', '_system', '\r\nSet-Cookie: x=1',
];
const HOSTILE_NUMBERS = [0, -0, 1, -1, 1e308, -1e308, 5e-324, 2 ** 53 + 1, -(2 ** 63), 1.5, 0.1];
const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', '$where', '$gt', '', 'a.b', 'a\u0000b', '\ud800', '\u202e', ' ', 'x'.repeat(300), '0', 'owner'];

/**
 * Path parameter values. `real` ones name things that exist (so the fuzz reaches past
 * routing into the handlers); hostile ones try traversal, encodings and sizes. Values
 * are inserted into the URL as written (already percent-encoded where they need it).
 */
const HOSTILE_SEGMENTS = [
  '..', '.', '%2e%2e', '%2E%2e%2F', '%2e%2e%5c', '%00', 'a%00b', '%', '%zz', '%C0%AE%C0%AE', '%ED%A0%80', '%FF%FE',
  '%E2%80%AE', '%E2%80%8B', '%F0%9F%98%80', '%20', '%0d%0aSet-Cookie:x', '~', '-', '_', '$where', '__proto__',
  'constructor', 'x'.repeat(499), 'x'.repeat(501), 'y'.repeat(5000), 'a;b', 'a,b', 'a@b', 'a+b', 'a=b',
  'com..example.notes', '.com.example.notes', 'com.example.notes.', 'COM.EXAMPLE', 'a'.repeat(36), 'system.users',
  'system.tokens', 'dev.ceps.messages.got', 'info.freezr.admin', 'com.example.notes.files', 'com.example.notes..x',
  'com.example.notes._x', 'admin', 'public', '_system', 'nonexistent-id-0001', 'AAAAAAAAAAAAAAAAAAAAAAAA',
];
/** Multi-segment hostile values for wildcard (`*`) parameters. */
const HOSTILE_WILDCARD = [
  ...HOSTILE_SEGMENTS, '../../../../etc/passwd', '..%2f..%2fetc%2fpasswd', '%2e%2e/%2e%2e/x', 'a//b', '//', '///',
  'a/./b', 'a/../../b', 'a\\..\\b', '..\\..\\x', 'static/../../../x', 'x/'.repeat(300), 'index.html%00.png',
  'index.html/..', '.%2e/x', 'uploads/../../../alice/x', '%5c..%5c..',
];

// ---------------------------------------------------------------------------
// Route discovery
// ---------------------------------------------------------------------------

interface RouteDef {
  method: string;
  /** Fastify's form: `/ceps/read/:app_table/:id`, `/apps/:app/*`. */
  url: string;
  /** The route's JSON schemas from the OpenAPI document, when it is listed there. */
  body?: JsonSchema;
  query?: ParamSchema[];
  consumes: string[];
}
interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  maxLength?: number;
  minLength?: number;
  pattern?: string;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
}
interface ParamSchema {
  name: string;
  required: boolean;
  schema: JsonSchema;
}

/**
 * Parses `app.printRoutes()`: each line is a node of the radix tree; a node's full
 * path is the concatenation of its ancestors' labels, and `(GET, POST)` marks a route.
 */
function parseRouteTree(tree: string): Array<{ method: string; url: string }> {
  const out: Array<{ method: string; url: string }> = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack[depth] = m[2]!;
    if (m[3]) for (const method of m[3].split(', ')) out.push({ method, url: stack.join('') });
  }
  return out;
}

async function discoverRoutes(server: TestServer): Promise<RouteDef[]> {
  const listed = parseRouteTree(server.app.printRoutes());
  const doc = (await server.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: JsonSchema }> }; parameters?: Array<{ in: string; name: string; required?: boolean; schema: JsonSchema }> }>>;
  };
  const toOpenApi = (url: string) => url.replace(/:(\w+)/g, '{$1}').replace(/\*$/, '{*}');
  const routes: RouteDef[] = [];
  for (const { method, url } of listed) {
    // HEAD routes are Fastify's mirrors of GET routes (or share their handler): fuzzed as a method choice of GET.
    if (method === 'HEAD' && listed.some((r) => r.url === url && r.method === 'GET')) continue;
    const op = doc.paths[toOpenApi(url)]?.[method.toLowerCase()];
    const content = op?.requestBody?.content ?? {};
    const body = content['application/json']?.schema ?? Object.values(content)[0]?.schema;
    const query = (op?.parameters ?? []).filter((p) => p.in === 'query').map((p) => ({ name: p.name, required: p.required === true, schema: p.schema }));
    routes.push({ method, url, ...(body ? { body } : {}), ...(query.length ? { query } : {}), consumes: Object.keys(content) });
  }
  // Every documented operation must have been found in the route tree, or discovery is broken.
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const m = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase(); // HEAD is fuzzed as a variant of GET
      assert.ok(routes.some((r) => toOpenApi(r.url) === p && r.method === m), `route discovery missed ${method} ${p}`);
    }
  }
  return routes;
}

// ---------------------------------------------------------------------------
// Request generation
// ---------------------------------------------------------------------------

type Identity = 'anon' | 'app' | 'owner' | 'admin';
interface Creds { app: string; owner: string; admin: string; recordIds: string[] }

interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  /** Which generator made it, for failure messages. */
  note: string;
}

function describeRequest(r: FuzzRequest): string {
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.length > 120 ? `${v.slice(0, 120)}…(${v.length})` : v]));
  let body = '';
  if (r.payload !== undefined) {
    const text = Buffer.isBuffer(r.payload) ? r.payload.subarray(0, 300).toString('latin1') : r.payload.slice(0, 300);
    body = `\n  body (${r.payload.length} ${Buffer.isBuffer(r.payload) ? 'bytes' : 'chars'}): ${JSON.stringify(text)}`;
  }
  const url = r.url.length > 300 ? `${r.url.slice(0, 300)}…(${r.url.length})` : r.url;
  return `${r.method} ${url}  [${r.note}]\n  headers: ${JSON.stringify(headers)}${body}`;
}

function randomJson(rng: Rng, depth = 0): unknown {
  const k = rng.int(depth > 2 ? 4 : 7);
  switch (k) {
    case 0: return null;
    case 1: return rng.chance(0.5);
    case 2: return rng.pick(HOSTILE_NUMBERS);
    case 3: return rng.pick(HOSTILE_STRINGS);
    case 4: return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) {
        const key = rng.chance(0.4) ? rng.pick(HOSTILE_KEYS) : `f${rng.int(100)}`;
        // defineProperty, so that a `__proto__` key is an own property as JSON.parse would make it.
        Object.defineProperty(o, key, { value: randomJson(rng, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return o;
    }
  }
}

function typesOf(s: JsonSchema): string[] {
  if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf)!.flatMap(typesOf);
  if (s.enum) return [typeof s.enum[0]];
  if (Array.isArray(s.type)) return s.type;
  return s.type ? [s.type] : [];
}

/** A value of a type the schema does not allow, or undefined if it allows anything. */
function wrongTyped(rng: Rng, s: JsonSchema): unknown {
  const allowed = typesOf(s);
  if (allowed.length === 0) return undefined;
  const candidates: Array<[string, () => unknown]> = [
    ['string', () => rng.pick(HOSTILE_STRINGS)],
    ['number', () => rng.pick(HOSTILE_NUMBERS)],
    ['integer', () => rng.pick(HOSTILE_NUMBERS)],
    ['boolean', () => rng.chance(0.5)],
    ['null', () => null],
    ['array', () => [rng.pick(HOSTILE_STRINGS), 1]],
    ['object', () => ({ [rng.pick(HOSTILE_KEYS)]: 1 })],
  ];
  const bad = candidates.filter(([t]) => !allowed.includes(t) && !(t === 'integer' && allowed.includes('number')) && !(t === 'number' && allowed.includes('integer')));
  if (s.enum) return rng.pick(HOSTILE_STRINGS) + '\u0000x'; // not one of the literals
  return bad.length ? rng.pick(bad)[1]() : undefined;
}

/** A plausible value of the right type (so that one wrong field is what makes the body invalid). */
function plausible(rng: Rng, s: JsonSchema): unknown {
  const t = typesOf(s)[0];
  if (s.enum) return s.enum[0];
  switch (t) {
    case 'string': {
      const v = rng.pick(HOSTILE_STRINGS);
      return s.maxLength !== undefined ? v.slice(0, s.maxLength) : v;
    }
    case 'number': case 'integer': return 1;
    case 'boolean': return false;
    case 'array': return [];
    case 'object': return {};
    case 'null': return null;
    default: return randomJson(rng, 2);
  }
}

/**
 * An object that breaks the body schema for sure, or the record rules (a `_` key,
 * which CEPS refuses) when the schema takes any object. `formSafe` says whether it
 * stays invalid when form-encoded (where every value becomes a string).
 */
function invalidObject(rng: Rng, schema: JsonSchema | undefined): { obj: Record<string, unknown>; how: string; formSafe: boolean } {
  const props = schema?.properties ?? {};
  const names = Object.keys(props);
  const obj: Record<string, unknown> = {};
  for (const n of names) obj[n] = plausible(rng, props[n]!);
  for (let i = rng.int(3); i > 0; i--) obj[`x${rng.int(50)}`] = randomJson(rng, 1);
  const ways: Array<() => { how: string; formSafe: boolean } | null> = [
    () => { // wrong type for one field
      const typed = names.filter((n) => wrongTyped(rng, props[n]!) !== undefined);
      if (!typed.length) return null;
      const n = rng.pick(typed);
      obj[n] = wrongTyped(rng, props[n]!);
      return { how: `wrong type for ${n}`, formSafe: false };
    },
    () => { // wrong types for every field
      const typed = names.filter((n) => wrongTyped(rng, props[n]!) !== undefined);
      if (!typed.length) return null;
      for (const n of typed) obj[n] = wrongTyped(rng, props[n]!);
      return { how: 'wrong type for every field', formSafe: false };
    },
    () => { // a required field missing
      const req = schema?.required ?? [];
      if (!req.length) return null;
      const n = rng.pick(req);
      delete obj[n];
      return { how: `missing ${n}`, formSafe: true };
    },
    () => { // a string over its maxLength, or under its minLength
      const bounded = names.filter((n) => props[n]!.maxLength !== undefined || (props[n]!.minLength ?? 0) > 1);
      if (!bounded.length) return null;
      const n = rng.pick(bounded);
      const p = props[n]!;
      obj[n] = p.maxLength !== undefined ? 'x'.repeat(p.maxLength + 1 + rng.int(2000)) : 'x';
      return { how: `length bounds of ${n}`, formSafe: true };
    },
  ];
  // Schemas that take any object (records), or only untyped fields: a key starting with `_`
  // is refused by CEPS record rules, and untyped fields get hostile values (`$where` in a query).
  if (names.every((n) => typesOf(props[n]!).length === 0)) {
    ways.push(() => {
      for (const n of names) obj[n] = rng.chance(0.5) ? { $where: 'sleep(1)', [rng.pick(HOSTILE_KEYS)]: randomJson(rng, 2) } : randomJson(rng, 1);
      const variant = rng.int(5);
      if (variant === 0) obj._entity = rng.pick([null, 1, 'x', [1], true]);
      else if (variant === 1) obj.$where = 'sleep(1)';
      else if (variant === 2) obj['a\u0000b'] = 1;
      else obj[rng.pick(['_bad', '_', '__proto__x', '_owner_x', '_accessible'])] = randomJson(rng, 1);
      return { how: 'refused record key', formSafe: variant >= 2 };
    });
  }
  const order = [...ways.keys()].sort(() => rng.next() - 0.5);
  for (const i of order) {
    const r = ways[i]!();
    if (r) return { obj, ...r };
  }
  throw new Error(`no way to make an invalid body for schema ${JSON.stringify(schema).slice(0, 200)}`);
}

/** Percent-encoding that also writes lone surrogates (as the invalid UTF-8 bytes a careless client would send). */
function pct(s: string): string {
  let out = '';
  for (const ch of s) {
    try {
      out += encodeURIComponent(ch);
    } catch {
      out += ch.charCodeAt(0) < 0xdc00 ? '%ED%A0%80' : '%ED%B0%80';
    }
  }
  return out;
}

function formEncode(obj: Record<string, unknown>): string {
  return Object.entries(obj).map(([k, v]) => `${pct(k)}=${pct(typeof v === 'string' ? v : JSON.stringify(v) ?? '')}`).join('&');
}

function deep(depth: number, kind: 'object' | 'array'): string {
  return kind === 'object' ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth) + ']'.repeat(depth);
}

/** Raw byte sequences that are not valid UTF-8 (overlong encodings, lone surrogates, stray continuation bytes). */
const BAD_UTF8 = [
  Buffer.from([0xc0, 0xae]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xe0, 0x80, 0xae]), Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xed, 0xbf, 0xbf]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from([0x80]), Buffer.from([0xff, 0xfe]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from([0x00]),
];

/** A JSON-ish body that the route must refuse. */
function badJsonBody(rng: Rng, schema: JsonSchema | undefined): { payload: string | Buffer; contentType: string; note: string } {
  const ct = 'application/json';
  const k = rng.int(100);
  if (k < 40) {
    const { obj, how } = invalidObject(rng, schema);
    return { payload: JSON.stringify(obj), contentType: ct, note: `json: ${how}` };
  }
  if (k < 52) {
    const v = rng.pick(['null', '[]', '[{}]', '1e308', '-0', '"NaN"', 'true', '""', '0', '"x"', '1e400', '[null]']);
    return { payload: v, contentType: ct, note: 'json: not an object' };
  }
  if (k < 62) {
    const v = rng.pick(['', ' ', '{', '{"a":}', "{'a':1}", '{"a":1,}', '{"a":1}}', '\ufeff', '\ufeff\ufeff{}', '{"a":NaN}', '{"a":Infinity}',
      '{"a":undefined}', '{"a":0x10}', '{"a":01}', '{"a":"\\x41"}', '{"a":"\\ud800"', 'nul', '{"__proto__":{"x":1}}{', '/*c*/{}']);
    return { payload: v, contentType: ct, note: 'json: malformed text' };
  }
  if (k < 72) {
    // Invalid UTF-8 bytes inside a string of a body that is invalid anyway.
    const { obj, how } = invalidObject(rng, schema);
    const text = JSON.stringify(obj);
    const raw = Buffer.concat([Buffer.from(text.slice(0, -1) + (text.length > 2 ? ',' : '') + '"zz":"'), rng.pick(BAD_UTF8), Buffer.from('"}')]);
    return { payload: rng.chance(0.2) ? Buffer.concat([rng.pick(BAD_UTF8), raw]) : raw, contentType: ct, note: `json bytes: bad UTF-8 (${how})` };
  }
  if (k < 80) {
    // Deep nesting. With no other fault in it: a record this deep must be refused for itself.
    const depth = rng.pick([1_001, 10_000, 100_000]);
    const kind = rng.chance(0.5) ? 'object' : 'array';
    const props = Object.keys(schema?.properties ?? {});
    const field = props.length ? rng.pick(props) : 'a';
    return { payload: `{"${field}":${deep(depth, kind)}}`, contentType: ct, note: `json: ${kind} nested ${depth} deep in ${field}` };
  }
  if (k < 84) {
    // Huge: a body past the body limit, or a record past 2 MB.
    const { obj, how } = invalidObject(rng, schema);
    obj.big = 'x'.repeat(rng.chance(0.5) ? 1_000_000 : 3_200_000);
    if (rng.chance(0.5)) obj.big2 = '\u20ac'.repeat(400_000);
    return { payload: JSON.stringify(obj), contentType: ct, note: `json: huge (${how})` };
  }
  if (k < 90) {
    // Odd unicode everywhere (keys and values), on top of an invalid body.
    const { obj, how } = invalidObject(rng, schema);
    for (const s of ['\u202e', '\u200b', '\ud800', '\u0000', '\ufffe']) obj[`k${s}`] = s.repeat(rng.int(50) + 1);
    return { payload: JSON.stringify(obj), contentType: ct, note: `json: odd unicode (${how})` };
  }
  // A wrong or odd Content-Type over an invalid body.
  const { obj, how, formSafe } = invalidObject(rng, schema);
  const type = rng.pick([
    'text/plain', 'application/json; charset=utf-16le', 'application/JSON', 'application/json, text/html',
    'application/x-www-form-urlencoded', 'multipart/form-data', 'application/vnd.api+json', 'application/json;;;',
    'application/octet-stream', 'text/html; charset=utf-8', 'application/xml', '*/*', 'application/json; charset=latin1',
  ]);
  if (type === 'application/x-www-form-urlencoded') {
    // Form bodies turn every value into a string: keep the fault in the shape, or add a `_` key.
    const payload = formSafe ? formEncode(obj) : `_bad=1&${formEncode(obj)}`;
    return { payload, contentType: type, note: `form body (${formSafe ? how : 'refused key'})` };
  }
  return { payload: JSON.stringify(obj), contentType: type, note: `content-type ${type} (${how})` };
}

/** A multipart body that is broken, or well formed but carrying nothing acceptable. */
function badMultipart(rng: Rng): { payload: Buffer; contentType: string; note: string } {
  const b = '----fuzz' + rng.int(1e9).toString(16);
  const ct = `multipart/form-data; boundary=${b}`;
  const part = (name: string, value: string | Buffer, filename?: string, extra = '') =>
    Buffer.concat([Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${name}"${filename !== undefined ? `; filename="${filename}"` : ''}\r\n${extra}\r\n`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\r\n')]);
  const end = Buffer.from(`--${b}--\r\n`);
  const garbage = Buffer.from(Array.from({ length: 200 + rng.int(2000) }, () => rng.int(256)));
  switch (rng.int(12)) {
    case 0: return { payload: Buffer.concat([part('file', garbage, 'x.zip'), end]), contentType: 'multipart/form-data', note: 'multipart: missing boundary' };
    case 1: {
      // Truncated: options first (so uploads would write at once), the file part cut mid-stream.
      const body = Buffer.concat([part('options', '{"fileName":"t.bin"}'), part('file', garbage, 't.bin'), end]);
      return { payload: body.subarray(0, body.length - 20 - rng.int(body.length / 3)), contentType: ct, note: 'multipart: truncated' };
    }
    case 2: return { payload: Buffer.concat([part('file', garbage, 'x.zip'), end]), contentType: `multipart/form-data; boundary=other${b}`, note: 'multipart: boundary mismatch' };
    case 3: return { payload: Buffer.concat([part('file', garbage, 'x', `X-Huge: ${'h'.repeat(100_000)}\r\n`), end]), contentType: ct, note: 'multipart: huge part header' };
    case 4: return { payload: Buffer.concat([part('file', garbage, 'x', Array.from({ length: 300 }, (_, i) => `X-${i}: v\r\n`).join('')), end]), contentType: ct, note: 'multipart: many part headers' };
    case 5: return { payload: Buffer.concat([...Array.from({ length: 40 + rng.int(100) }, (_, i) => part(`f${i}`, 'v')), end]), contentType: ct, note: 'multipart: many parts (no file)' };
    case 6: return { payload: Buffer.concat([part('options', '{"fileName":"a"}'), part('notfile', garbage, 'a'), end]), contentType: ct, note: 'multipart: no part named file' };
    case 7: {
      const opts = rng.pick(['{', 'null', '[1]', '"x"', '{"fileName":"../../../etc/passwd"}', '{"targetFolder":"..","fileName":"x"}',
        '{"fileName":"a%2e%2e"}', '{"fileName":"\\u0000"}', '{"fileName":"..\\\\x"}', '{"data":{"_bad":1},"fileName":"ok.txt"}',
        '{"fileName":"' + 'x/'.repeat(30) + 'y"}', '{"fileName":"' + 'z'.repeat(300) + '"}']);
      return { payload: Buffer.concat([part('options', opts), part('file', garbage, 'f.bin'), end]), contentType: ct, note: `multipart: bad options ${opts.slice(0, 40)}` };
    }
    case 8: return { payload: Buffer.concat([part('file', garbage, 'a.zip'), part('file', garbage, 'b.zip'), end]), contentType: ct, note: 'multipart: two files, garbage zip' };
    case 9: return { payload: Buffer.from(`--${b}\r\nContent-Disposition: form-data\r\n\r\nxx\r\n--${b}--\r\n`), contentType: ct, note: 'multipart: part without name' };
    case 10: return { payload: Buffer.from('{"file":"x"}'), contentType: ct, note: 'multipart: JSON text' };
    default: return { payload: Buffer.concat([part('file', garbage.subarray(0, 50), '..\\..\\\u0000.zip'), end]), contentType: ct, note: 'multipart: garbage zip, hostile filename' };
  }
}

function hostileQuery(rng: Rng, route: RouteDef): string {
  const parts: string[] = [];
  const qs = route.query ?? [];
  // Params with constraints: break one (a side-effecting GET such as generateAppPassword must never succeed).
  const constrained = qs.filter((p) => p.required || p.schema.maxLength !== undefined || p.schema.pattern !== undefined || p.schema.enum !== undefined);
  if (constrained.length && rng.chance(0.7)) {
    const p = rng.pick(constrained);
    for (const o of qs) if (o !== p && o.required) parts.push(`${o.name}=${pct(String(plausible(rng, o.schema)))}`);
    if (!p.required || rng.chance(0.5)) {
      const v = p.schema.maxLength !== undefined ? 'q'.repeat(p.schema.maxLength + 1) : p.schema.pattern !== undefined ? 'not\u0000digits' : 'not-an-enum-value';
      parts.push(`${p.name}=${pct(v)}`);
    }
  }
  for (let i = rng.int(4); i > 0; i--) {
    const key = rng.pick([...qs.map((p) => p.name), '_count', '_skip', '_modified_after', '_modified_before', 'owner_id', 'token',
      '__proto__', 'constructor[prototype][x]', 'a[b]', 'q', '$where', '_id', 'a.b.c', '%00', 'x'.repeat(300), 'next', 'app_name']);
    const value = rng.pick(['', '-1', '1e308', 'NaN', '99999999999999999999', '0x10', '%zz', '%00', '%ED%A0%80', '%C0%AE',
      pct(rng.pick(HOSTILE_STRINGS)), 'a'.repeat(5000), '//evil.example', '/\\evil.example', 'javascript:alert(1)']);
    parts.push(`${pct(key)}=${value}`);
    if (rng.chance(0.2)) parts.push(`${pct(key)}=${value}`); // repeated parameter
  }
  if (rng.chance(0.05)) parts.push('z=' + 'w'.repeat(100_000));
  return parts.length ? '?' + parts.join('&') : '';
}

const REAL: Record<string, (c: Creds, rng: Rng) => string> = {
  app_table: (_c, rng) => rng.pick([APP, `${APP}.posts`, `${APP}.files`]),
  id: (c, rng) => rng.pick(c.recordIds),
  app: () => APP,
  app_name: () => APP,
  user_id: (_c, rng) => rng.pick(['alice', 'bob']),
  // Files only, not pages: serving a page to its owner issues a page token (a write, by design).
  '*': (_c, rng) => rng.pick(['static/notes.css', 'notes.js', 'uploads/seed.txt', 'static/main.mjs']),
};

function fillPath(rng: Rng, route: RouteDef, creds: Creds): { url: string; note: string } {
  const notes: string[] = [];
  const url = route.url.replace(/:(\w+)|\*$/g, (whole, name?: string) => {
    const param = name ?? '*';
    // DELETE never gets a real id, app or file: a delete of a real target would be a valid request.
    const realAllowed = route.method !== 'DELETE' || param === 'app_table' || param === 'user_id';
    const real = REAL[param];
    if (real && realAllowed && rng.chance(0.45)) return real(creds, rng);
    const v = rng.pick(param === '*' ? HOSTILE_WILDCARD : HOSTILE_SEGMENTS);
    notes.push(`${param}=${v.slice(0, 20)}`);
    return v;
  });
  // Path-level tricks on the whole URL now and then.
  const t = rng.int(20);
  if (t === 0) return { url: url.replace(/\//g, '//'), note: 'doubled slashes' };
  if (t === 1) return { url: url + '/..', note: 'trailing /..' };
  if (t === 2) return { url: url.replace(/\//g, '\\'), note: 'backslashes' };
  if (t === 3) return { url: url + '%00', note: 'trailing %00' };
  if (t === 4) return { url: url + '/' + 'p'.repeat(10_000), note: 'very long path' };
  if (t === 5) return { url: url.toUpperCase(), note: 'upper case' };
  if (t === 6) return { url: url + ';jsessionid=x', note: 'matrix param' };
  return { url, note: notes.join(' ') };
}

function authHeaders(rng: Rng, who: Identity, creds: Creds): { headers: Record<string, string>; note: string } {
  const h: Record<string, string> = {};
  if (who === 'app') h.authorization = `Bearer ${creds.app}`;
  if (who === 'owner') h.cookie = creds.owner;
  if (who === 'admin') h.cookie = creds.admin;
  let note = '';
  if (rng.chance(0.15)) {
    const token = who === 'app' ? creds.app : 'x'.repeat(40);
    const forms = [
      'Bearer', 'Bearer ', `Bearer  ${token} extra`, `bearer ${token}\u0000`, `Basic ${Buffer.from('alice:pw').toString('base64')}`,
      `Bearer ${token}, Bearer ${token}`, `Bearer ${'t'.repeat(20_000)}`, `Token ${token}`, `Bearer ${token.slice(0, -1)}`,
      `Bearer ${token}%00`, `Bearer ${pct('\u202e' + token)}`, 'Bearer undefined', 'Bearer null', `Bearer ../../${token}`,
    ];
    h.authorization = rng.pick(forms);
    note += ' bad-authorization';
  }
  if (rng.chance(0.1)) {
    const cookies = [
      `freehold_session=${'c'.repeat(50_000)}`, 'freehold_session=%E0%A4%A', 'freehold_session=; freehold_session=x',
      `${h.cookie ?? ''}; freehold_session=forged`, `app_token_alice=${creds.app}`, 'a=b; '.repeat(2000), 'freehold_session="\\"', '=; ;=;',
      `freehold_session=${'\u00ff'.repeat(10)}`,
    ];
    h.cookie = rng.pick(cookies);
    note += ' bad-cookie';
  }
  if (rng.chance(0.05)) { h.origin = rng.pick(['https://evil.example', 'null', 'http://localhost:1']); note += ' cross-origin'; }
  if (rng.chance(0.05)) { h.range = rng.pick(['bytes=-1', 'bytes=5-1', 'bytes=0-0,1-1,2-2', 'bytes=99999999999999999999-', 'items=0-1', 'bytes=--1']); note += ' range'; }
  if (rng.chance(0.03)) { h['if-range'] = '"x"'; h['sec-fetch-dest'] = rng.pick(['script', 'iframe', '']); }
  return { headers: h, note };
}

/**
 * Body-less actions on the caller's own account: with a live session any request to
 * them is valid and writes by design, whatever else it carries. They are fuzzed as the
 * callers they refuse (anonymous, app token) only.
 */
const SESSION_ACTIONS = new Set([
  'POST /acctapi/logout', // ends the session (and revokes its account token)
  'POST /acctapi/applogout', // revokes the account token in the cookie
  'POST /acctapi/2fa/setup', // starts a pending two-factor secret
  // Subdomain mode: opening an app mints a one-time entry code for the app's origin (the
  // handoff, src/http/apps/handoff.ts): a write by design for a signed-in owner.
  'GET /apps/:app',
  'GET /apps/:app/*',
]);
/**
 * Body-less admin actions on another account named in the path: for the admin, a request
 * naming a real user is valid and writes by design, whatever else it carries (removing
 * that user). Fuzzed as the callers they refuse (anonymous, app token, owner) only.
 */
const ADMIN_ACTIONS = new Set([
  'DELETE /acctapi/users/:user_id',
]);
function excluded(route: RouteDef, who: Identity): boolean {
  const key = `${route.method} ${route.url}`;
  return (SESSION_ACTIONS.has(key) && (who === 'owner' || who === 'admin')) || (ADMIN_ACTIONS.has(key) && who === 'admin');
}

function generate(rng: Rng, route: RouteDef, who: Identity, creds: Creds): FuzzRequest {
  const { url, note: pathNote } = fillPath(rng, route, creds);
  const { headers, note: authNote } = authHeaders(rng, who, creds);
  let method = route.method;
  if (method === 'GET' && rng.chance(0.1)) method = 'HEAD';
  if (rng.chance(0.03)) method = rng.pick(['PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']);
  const req: FuzzRequest = { method, url: url + hostileQuery(rng, route), headers, note: `${pathNote}${authNote}`.trim() };
  const takesMultipart = route.consumes.includes('multipart/form-data');
  const hasBody = !['GET', 'HEAD'].includes(method) && (route.body !== undefined || takesMultipart || rng.chance(0.3));
  if (hasBody) {
    const b = takesMultipart && rng.chance(0.7) ? badMultipart(rng) : badJsonBody(rng, route.body);
    req.payload = b.payload;
    req.headers['content-type'] = b.contentType;
    req.note = `${b.note} ${req.note}`.trim();
  } else if (rng.chance(0.1) && !['GET', 'HEAD'].includes(method)) {
    req.headers['content-type'] = 'application/json';
    req.payload = '';
    req.note = `empty JSON body ${req.note}`;
  }
  return req;
}

// ---------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------

/** Where a 4xx is an HTML page by contract (the setup page answers a bad token with 403 HTML). */
function htmlErrorAllowed(method: string, url: string, status: number): boolean {
  const p = url.split('?')[0]!;
  return (method === 'GET' || method === 'HEAD') && p === '/setup' && status === 403;
}

function checkResponse(req: FuzzRequest, status: number, headers: Record<string, unknown>, body: string): string | null {
  if (status >= 500) return `status ${status}: ${body.slice(0, 300)}`;
  if (status < 400 || req.method === 'HEAD') return null;
  const type = String(headers['content-type'] ?? '');
  if (htmlErrorAllowed(req.method, req.url, status) && type.startsWith('text/html')) return null;
  if (!type.startsWith('application/json')) return `status ${status} with content-type ${type || '(none)'}: ${body.slice(0, 200)}`;
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof parsed.error !== 'string' || typeof parsed.message !== 'string') return `status ${status} without { error, message }: ${body.slice(0, 200)}`;
  } catch {
    return `status ${status} with a body that is not JSON: ${body.slice(0, 200)}`;
  }
  return null;
}

/** Every owner's tables (records whole), the host's system tables, and every blob key with its size. */
async function snapshot(server: TestServer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const all = { op: 'true' } as const;
  for (const owner of [...OWNERS, '_system']) {
    const store = server.services.stores.records(owner);
    for (const { table } of await store.listTables(owner)) {
      const rows = await store.query(owner, table, all, { sort: [], skip: 0, limit: 1_000_000 });
      for (const r of rows) out.set(`record ${owner}/${table}/${r._id}`, JSON.stringify(r));
    }
  }
  for await (const { key, size } of server.services.stores.blobs('alice').list('')) {
    if (!key.includes('/staging/')) out.set(`blob ${key}`, String(size));
  }
  return out;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (!b.has(k)) out.push(`removed ${k}`); else if (b.get(k) !== v) out.push(`changed ${k}: ${v.slice(0, 150)} -> ${b.get(k)!.slice(0, 150)}`);
  for (const k of b.keys()) if (!a.has(k)) out.push(`added ${k}: ${b.get(k)!.slice(0, 150)}`);
  return out;
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

let server: TestServer;
let creds: Creds;

before(async () => {
  server = await startTestServer({ listen: true });
  await server.addUser('alice');
  await server.addUser('bob');
  await server.addUser('boss', undefined, true);
  await server.services.apps.install('alice', { folder: FIXTURE });
  const app = await server.appToken('alice', APP);
  const auth = { authorization: `Bearer ${app}` };
  const recordIds: string[] = [];
  for (const [table, body] of [[APP, { title: 'seed', n: 1 }], [`${APP}.posts`, { title: 'post', meta: { tag: 't' } }], [APP, { nested: { a: [1, 2] } }]] as const) {
    const res = await server.app.inject({ method: 'POST', url: `/ceps/write/${table}`, headers: auth, payload: body });
    assert.equal(res.statusCode, 200, res.body);
    recordIds.push(res.json()._id as string);
  }
  const bobToken = await server.appToken('bob', APP);
  await server.app.inject({ method: 'POST', url: `/ceps/write/${APP}`, headers: { authorization: `Bearer ${bobToken}` }, payload: { bob: true } });
  const boundary = 'seedboundary';
  const up = await server.app.inject({
    method: 'PUT', url: `/feps/upload/${APP}`, headers: { ...auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
    payload: `--${boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n{"fileName":"seed.txt","targetFolder":"uploads"}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="seed.txt"\r\nContent-Type: text/plain\r\n\r\nhello seed\r\n--${boundary}--\r\n`,
  });
  assert.equal(up.statusCode, 200, up.body);
  recordIds.push('uploads/seed.txt');
  creds = { app, owner: await server.signIn('alice'), admin: await server.signIn('boss'), recordIds };
});
after(() => server.close());

async function assertAlive(context: string) {
  const ping = await server.app.inject({ method: 'GET', url: '/ceps/ping' });
  assert.equal(ping.statusCode, 200, `server stopped answering /ceps/ping after ${context}`);
}

test(`fuzz every route with invalid requests (seed ${SEED})`, { timeout: 240_000 }, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} FUZZ_TOTAL=${TOTAL}`);
  console.log(`fuzz: FUZZ_SEED=${SEED} (set FUZZ_SEED to reproduce or vary)`);
  const routes = await discoverRoutes(server);
  const identities: Identity[] = ['anon', 'app', 'owner', 'admin'];
  const batches = routes.flatMap((route) => identities.filter((who) => !excluded(route, who)).map((who) => ({ route, who })));
  const perBatch = Math.max(10, Math.ceil(TOTAL / batches.length));
  const rng = makeRng(SEED);
  const failures: string[] = [];
  const perFamily = new Map<string, number>();
  const statuses = new Map<number, number>();
  let total = 0;
  let baseline = await snapshot(server);

  for (const { route, who } of batches) {
    const successes: FuzzRequest[] = [];
    for (let i = 0; i < perBatch; i++) {
      const req = generate(rng, route, who, creds);
      let res;
      try {
        res = await server.app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, ...(req.payload !== undefined ? { payload: req.payload } : {}) });
      } catch (err) {
        failures.push(`inject threw ${(err as Error).message} for ${who}:\n  ${describeRequest(req)}`);
        continue;
      }
      total++;
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      const problem = checkResponse(req, res.statusCode, res.headers, res.body);
      if (problem) failures.push(`${problem}\n  as ${who}: ${describeRequest(req)}`);
      if (res.statusCode < 400) successes.push(req);
    }
    const family = route.url.split('/').slice(0, 2).join('/') || '/';
    perFamily.set(family, (perFamily.get(family) ?? 0) + perBatch);
    await assertAlive(`${route.method} ${route.url} as ${who}`);
    const now = await snapshot(server);
    const changes = diff(baseline, now);
    if (changes.length) {
      failures.push(`records or blobs changed during ${route.method} ${route.url} as ${who}:\n    ${changes.slice(0, 10).join('\n    ')}\n` +
        `  requests answered < 400 in this batch (${successes.length}; non-GET first):\n  ` +
        `${successes.sort((a, b) => Number(a.method === 'GET') - Number(b.method === 'GET')).slice(0, 8).map(describeRequest).join('\n  ') || '(none)'}`);
      baseline = now; // report each batch's changes once
    }
    if (failures.length > 40) break;
  }
  console.log(`fuzz: ${total} requests over ${routes.length} route-methods × ${identities.length} callers (${perBatch} per batch)`);
  console.log(`fuzz: per family ${JSON.stringify(Object.fromEntries(perFamily))}`);
  console.log(`fuzz: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  if (failures.length) assert.fail(`${failures.length} fuzz failures (FUZZ_SEED=${SEED}):\n${failures.slice(0, 40).join('\n\n')}`);
  assert.ok(total >= Math.min(TOTAL, 10_000), `only ${total} requests were sent`);
});

// ---------------------------------------------------------------------------
// Raw sockets: what app.inject cannot express
// ---------------------------------------------------------------------------

interface RawResult { text: string; timedOut: boolean }

/** Writes raw bytes to the listening server and collects whatever comes back until it closes (bounded). */
function rawExchange(port: number, bytes: Buffer, opts: { halfClose: boolean; timeoutMs?: number }): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    let settled = false;
    const done = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), timedOut });
    };
    const timer = setTimeout(() => done(true), opts.timeoutMs ?? 3000);
    socket.on('connect', () => {
      socket.write(bytes);
      if (opts.halfClose) socket.end();
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => done(false));
    socket.on('close', () => done(false));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the server answered and closed is fine; no connection at all is not.
      if (err.code === 'ECONNREFUSED') { settled = true; clearTimeout(timer); reject(err); } else done(false);
    });
  });
}

/** Splits a raw byte stream into HTTP/1.1 responses (status, content-type, body). */
function parseResponses(text: string): Array<{ status: number; type: string; body: string }> {
  const out: Array<{ status: number; type: string; body: string }> = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.')) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const head = rest.slice(0, headEnd);
    const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(head)?.[1]);
    const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
    let body = '';
    let next = headEnd + 4;
    if (/chunked/i.test(header('transfer-encoding'))) {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', next);
        if (lineEnd < 0) break;
        const size = parseInt(rest.slice(next, lineEnd), 16);
        if (!(size > 0)) { next = rest.indexOf('\r\n', lineEnd + 2) + 2; break; }
        body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
        next = lineEnd + 2 + size + 2;
      }
    } else {
      const len = Number(header('content-length') || 0);
      body = rest.slice(next, next + len);
      next += len;
    }
    out.push({ status, type: header('content-type'), body });
    rest = rest.slice(next);
  }
  return out;
}

test(`raw HTTP/1.1 oddities against a listening server (seed ${SEED})`, { timeout: 120_000 }, async () => {
  const port = Number(new URL(server.url).port);
  const rng = makeRng(SEED ^ 0x9e3779b9);
  const before = await snapshot(server);
  const failures: string[] = [];
  const targets = [
    { path: `/ceps/write/${APP}`, auth: `Authorization: Bearer ${creds.app}` },
    { path: `/feps/update/${APP}/${creds.recordIds[0]}`, auth: `Authorization: Bearer ${creds.app}`, method: 'PUT' },
    { path: '/acctapi/login', auth: '' },
    { path: '/acctapi/users', auth: `Cookie: ${creds.admin}` },
    { path: '/oauth/token', auth: '' },
    { path: `/feps/upload/${APP}`, auth: `Authorization: Bearer ${creds.app}`, method: 'PUT' },
  ];
  // Every body here is refused on its own merits (a `_` key, a short password, a wrong
  // grant type), so no prefix or suffix of it, however the framing cuts it, is a valid write.
  const BODY = '{"_bad":1,"user_id":"x","password":"p","grant_type":"nope","username":"u","client_id":"c"}';
  const cases: Array<{ name: string; build: (t: typeof targets[number]) => Buffer; halfClose?: boolean }> = [
    { name: 'Content-Length larger than the body, then half-close', halfClose: true,
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length + 50}\r\n\r\n${BODY}`) },
    { name: 'Content-Length smaller than the body (rest pipelined as garbage)',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nContent-Length: ${5 + rng.int(BODY.length - 6)}\r\nConnection: close\r\n\r\n${BODY}GET /ceps/ping HTTP/1.1\r\nHost: x\r\n\r\n`) },
    { name: 'Content-Length and Transfer-Encoding together (smuggling shape)',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\n\r\n`) },
    { name: 'two different Content-Length headers',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nContent-Length: 3\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`) },
    { name: 'non-numeric Content-Length',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nContent-Length: ${rng.pick(['-1', 'abc', '1e3', '0x10', ' 12', '99999999999999999999'])}\r\nConnection: close\r\n\r\n${BODY}`) },
    { name: 'bad chunk size',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${rng.pick(['zz', 'ffffffffffffffffff', '-1', '5;ext=' + 'e'.repeat(5000)])}\r\n${BODY}\r\n0\r\n\r\n`) },
    { name: 'chunked body cut short, then half-close', halfClose: true,
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${BODY.length.toString(16)}\r\n${BODY.slice(0, 10)}`) },
    { name: 'chunked invalid JSON in many tiny chunks',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${[...BODY].map((c) => `1\r\n${c}\r\n`).join('')}0\r\n\r\n`) },
    { name: 'header section over 16 KB',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nCookie: freehold_session=${'c'.repeat(20_000)}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`) },
    { name: 'raw non-ASCII bytes in the request line',
      build: (t) => Buffer.concat([Buffer.from(`GET ${t.path}/`), rng.pick(BAD_UTF8), Buffer.from(` HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nConnection: close\r\n\r\n`)]) },
    { name: 'odd request targets',
      build: (t) => Buffer.from(`${rng.pick(['GET ../../etc/passwd', 'GET *', 'OPTIONS *', `GET http://evil.example${t.path}`, 'GET //ceps//ping', 'GET /ceps/../../../etc/passwd', `get ${t.path}`, `FOO ${t.path}`, `GET ${t.path}#frag`, 'GET /%', 'GET /\\..\\..\\etc'])} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nConnection: close\r\n\r\n`) },
    { name: 'bad HTTP versions and line endings',
      build: (t) => Buffer.from(rng.pick([`GET ${t.path} HTTP/2.0\r\nHost: x\r\n\r\n`, `GET ${t.path} HTTP/1.1\nHost: x\nConnection: close\n\n`, `GET ${t.path}\r\n\r\n`, `GET ${t.path} HTTP/1.0\r\n\r\n`, `GET ${t.path} HTTP/1.1\r\n\r\n`, `GET ${t.path} HTTP/9.9\r\nHost: x\r\n\r\n`])) },
    { name: 'NUL and folded headers',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\u0000\r\nX-Fold: a\r\n b\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`) },
    { name: 'Expect: 100-continue with an invalid body',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`) },
    { name: 'Content-Encoding the server does not speak',
      build: (t) => Buffer.from(`POST ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: application/json\r\nContent-Encoding: ${rng.pick(['gzip', 'br', 'deflate, gzip', 'x'])}\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`) },
    { name: 'multipart with Content-Length shorter than its parts',
      build: (t) => {
        const mp = `--b\r\nContent-Disposition: form-data; name="options"\r\n\r\n{"fileName":"raw.txt"}\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="raw.txt"\r\n\r\n${'r'.repeat(500)}\r\n--b--\r\n`;
        return Buffer.from(`${t.method ?? 'POST'} ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${mp.length - 100 - rng.int(300)}\r\nConnection: close\r\n\r\n${mp}`);
      } },
    { name: 'multipart cut short, then half-close', halfClose: true,
      build: (t) => {
        const mp = `--b\r\nContent-Disposition: form-data; name="options"\r\n\r\n{"fileName":"raw2.txt"}\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="raw2.txt"\r\n\r\n${'r'.repeat(5000)}`;
        return Buffer.from(`${t.method ?? 'POST'} ${t.path} HTTP/1.1\r\nHost: x\r\n${t.auth}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${mp.length + 1000}\r\n\r\n${mp}`);
      } },
  ];
  let sent = 0;
  const statuses = new Map<number | string, number>();
  for (let round = 0; round < 4; round++) {
    for (const c of cases) {
      for (const t of targets) {
        const bytes = c.build(t);
        const res = await rawExchange(port, bytes, { halfClose: c.halfClose === true });
        sent++;
        const responses = parseResponses(res.text);
        if (responses.length === 0) statuses.set(res.timedOut ? 'timeout' : 'closed', (statuses.get(res.timedOut ? 'timeout' : 'closed') ?? 0) + 1);
        for (const r of responses) {
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          const shown = `${c.name} → ${t.path}\n  sent: ${JSON.stringify(bytes.subarray(0, 400).toString('latin1'))}\n  got: ${JSON.stringify(res.text.slice(0, 300))}`;
          if (r.status >= 500) failures.push(`status ${r.status}: ${shown}`);
          // Node's HTTP server itself refuses an HTTP/1.1 request without Host (400, empty body)
          // before any application code runs; that protocol-level answer is the one exception.
          else if (r.status === 400 && r.body === '' && !/\r?\nhost:/i.test(bytes.toString('latin1'))) continue;
          else if (r.status >= 400) {
            let ok = r.type.startsWith('application/json');
            try {
              const b = JSON.parse(r.body) as { error?: unknown; message?: unknown };
              ok &&= typeof b.error === 'string' && typeof b.message === 'string';
            } catch { ok = false; }
            if (!ok) failures.push(`status ${r.status} without a JSON { error, message } body: ${shown}`);
          }
        }
      }
      // The process is still there and answering after each kind of oddity.
      const ping = await fetch(`${server.url}/ceps/ping`);
      assert.equal(ping.status, 200, `server stopped answering after "${c.name}"`);
    }
  }
  console.log(`raw: ${sent} raw requests; outcomes ${JSON.stringify(Object.fromEntries(statuses))}`);
  const changes = diff(before, await snapshot(server));
  if (changes.length) failures.push(`records or blobs changed during the raw batch:\n    ${changes.slice(0, 10).join('\n    ')}`);
  if (failures.length) assert.fail(`${failures.length} raw failures (FUZZ_SEED=${SEED}):\n${failures.slice(0, 30).join('\n\n')}`);
});

// ---------------------------------------------------------------------------
// Regressions: the fuzzer's findings, pinned as plain cases
// ---------------------------------------------------------------------------

test('a record nested deeper than storage can index is refused, and the table stays queryable', async () => {
  const auth = { authorization: `Bearer ${creds.app}`, 'content-type': 'application/json' };
  for (const [depth, table] of [[1_001, APP], [1_001, `${APP}.posts`], [100_000, APP]] as const) {
    for (const kind of ['object', 'array'] as const) {
      const res = await server.app.inject({ method: 'POST', url: `/ceps/write/${table}`, headers: auth, payload: `{"a":${deep(depth, kind)}}` });
      assert.equal(res.statusCode, 400, `${kind} nested ${depth} deep in ${table}: ${res.body}`);
      assert.equal(res.json().error, 'invalid_record');
    }
    const q = await server.app.inject({ method: 'GET', url: `/ceps/query/${table}?title=seed`, headers: auth });
    assert.equal(q.statusCode, 200, q.body);
  }
  // 100 levels (the limit) is fine; 101 is not.
  const ok = await server.app.inject({ method: 'POST', url: `/feps/write/${APP}/depth-ok`, headers: auth, payload: `{"a":${deep(99, 'object')}}` });
  assert.equal(ok.statusCode, 200, ok.body);
  const over = await server.app.inject({ method: 'POST', url: `/feps/write/${APP}/depth-over`, headers: auth, payload: `{"a":${deep(100, 'object')}}` });
  assert.equal(over.statusCode, 400, over.body);
  await server.app.inject({ method: 'DELETE', url: `/ceps/delete/${APP}/depth-ok`, headers: auth });
});

test('a multipart upload without a boundary is a 400, not a 500', async () => {
  for (const [url, headers] of [[`/feps/upload/${APP}`, { authorization: `Bearer ${creds.app}` }], ['/acctapi/import', { cookie: creds.owner }], ['/acctapi/apps/install', { cookie: creds.owner }]] as const) {
    const res = await server.app.inject({ method: url.startsWith('/feps') ? 'PUT' : 'POST', url, headers: { ...headers, 'content-type': 'multipart/form-data' }, payload: '--x\r\n\r\n' });
    assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
    assert.equal(res.json().error, 'bad_request');
  }
});
