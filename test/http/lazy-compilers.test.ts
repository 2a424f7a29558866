import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { spawnSync } from 'node:child_process';
import { SERVER_VERSION } from '../../src/http/version.js';
import { lazyCompilers } from '../../src/http/lazy-compilers.js';
import { startTestServer } from '../helpers/server.js';

function appWith(compilers = lazyCompilers()) {
  const app = Fastify({ schemaController: { compilersFactory: compilers.compilersFactory } });
  return { app, compilers };
}

test('every route schema of the full server compiles', async () => {
  const server = await startTestServer();
  try {
    assert.doesNotThrow(() => server.app.compileAllSchemas());
    assert.doesNotThrow(() => server.app.compileAllSchemas()); // nothing left pending
  } finally {
    await server.close();
  }
});

test('a lazily compiled validator refuses bad input with Ajv errors and passes good input', async () => {
  const { app } = appWith();
  app.post('/n', { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } }, additionalProperties: false } } }, (req) => req.body);
  await app.ready();
  for (let k = 0; k < 2; k++) { // the first call compiles, the second reuses
    const bad = await app.inject({ method: 'POST', url: '/n', payload: { n: 'x' } });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /body\/n must be integer/);
    const missing = await app.inject({ method: 'POST', url: '/n', payload: {} });
    assert.equal(missing.statusCode, 400);
    assert.match(missing.json().message, /must have required property 'n'/);
    const good = await app.inject({ method: 'POST', url: '/n', payload: { n: 3 } });
    assert.equal(good.statusCode, 200);
    assert.deepEqual(good.json(), { n: 3 });
  }
  await app.close();
});

test('a lazily compiled serializer shapes the response as its schema says', async () => {
  const { app } = appWith();
  app.get('/s', { schema: { response: { 200: { type: 'object', properties: { kept: { type: 'string' } } } } } }, () => ({ kept: 'yes', dropped: 'secret' }));
  await app.ready();
  const res = await app.inject({ method: 'GET', url: '/s' });
  assert.deepEqual(res.json(), { kept: 'yes' });
  await app.close();
});

test('a schema that cannot compile fails at compileAll, and nothing is compiled before it is needed', async () => {
  const { app, compilers } = appWith();
  app.post('/broken', { schema: { body: { type: 'object', properties: { n: { type: 'no-such-type' } } } } }, () => 'ok');
  await app.ready(); // lazy: start-up does not compile
  assert.throws(() => compilers.compileAll(), /no-such-type|type must be/);
  await app.close();
});

test('the validator compiler (and its Ajv instance) is not loaded until a route validates input: not at start-up, not for /ceps/ping', () => {
  // A process of its own: this file's other tests load it on purpose.
  const script = `
    import { createRequire } from 'node:module';
    import { startTestServer } from './test/helpers/server.ts';
    const cache = createRequire(import.meta.url).cache;
    const ajvLoaded = () => Object.keys(cache).some((f) => f.includes('/node_modules/@fastify/ajv-compiler/'));
    const server = await startTestServer();
    const ping = await server.app.inject({ method: 'GET', url: '/ceps/ping' });
    const before = ajvLoaded();
    const bad = await server.app.inject({ method: 'POST', url: '/acctapi/login', payload: { user_id: 7 } });
    console.log(JSON.stringify({ ping: ping.statusCode, before, bad: bad.statusCode, after: ajvLoaded() }));
    await server.close();
  `;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: process.cwd() });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').pop()!), { ping: 200, before: false, bad: 400, after: true });
});

test('neither Ajv nor the serializer compiler is loaded until a route answers through a response schema: not at start-up, not for /ceps/ping', () => {
  const script = `
    import { createRequire } from 'node:module';
    import { startTestServer } from './test/helpers/server.ts';
    const cache = createRequire(import.meta.url).cache;
    const loaded = (part) => Object.keys(cache).some((f) => f.includes(part));
    const state = () => ({ ajv: loaded('/node_modules/ajv/'), fjs: loaded('/node_modules/fast-json-stringify/index.js') });
    const server = await startTestServer();
    const atStart = state();
    const ping = await server.app.inject({ method: 'GET', url: '/ceps/ping' });
    const afterPing = state();
    await server.addUser('alice');
    const token = await server.appToken('alice', 'com.example.notes');
    const write = await server.app.inject({ method: 'POST', url: '/ceps/write/com.example.notes', headers: { authorization: 'Bearer ' + token }, payload: { a: 1 } });
    console.log(JSON.stringify({ atStart, ping: ping.body, afterPing, write: write.statusCode, afterWrite: state() }));
    await server.close();
  `;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: process.cwd() });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').pop()!), {
    atStart: { ajv: false, fjs: false },
    ping: JSON.stringify({ logged_in: false, server_type: 'freehold', server_version: SERVER_VERSION, ceps_version: '2.0' }),
    afterPing: { ajv: false, fjs: false },
    write: 200,
    afterWrite: { ajv: true, fjs: true },
  });
});
