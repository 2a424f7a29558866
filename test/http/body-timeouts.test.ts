import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import { loadConfig } from '../../src/config.js';
import { registerBodyTimeouts } from '../../src/http/body-timeouts.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

/** Every raw connection made, ended before its server closes: a server waits for a request still coming in. */
const sockets: net.Socket[] = [];

/** A raw connection: what it has received, and whether the server closed it. */
function connect(url: string): { socket: net.Socket; received: () => string; closed: () => boolean } {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  sockets.push(socket);
  let text = '';
  let closed = false;
  socket.on('data', (d) => (text += d.toString()));
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  return { socket, received: () => text, closed: () => closed };
}

/** Waits for the answer to a request whose whole body was read, and checks the connection stays open; then ends it. */
async function expectAnswerAndOpen(c: ReturnType<typeof connect>, status: RegExp): Promise<void> {
  await until('the answer', () => c.received().includes('\r\n\r\n{'), 15_000);
  assert.match(c.received(), status, 'the whole body was read and judged');
  assert.equal(c.closed(), false);
  c.socket.destroy();
}

const BODY = JSON.stringify({ user_id: 'nobody', password: 'not the password at all' });
const head = (length: number) =>
  `POST /acctapi/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

describe('a request body that stops coming', () => {
  let server: TestServer;
  const IDLE_MS = 1000;
  before(async () => {
    server = await startTestServer({ listen: true, config: { bodyIdleTimeoutMs: IDLE_MS, bodyMinRate: 0 } });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await server.close();
  });

  test('is cut off once nothing has come for the idle time', async () => {
    const c = connect(server.url);
    c.socket.write(head(BODY.length) + BODY.slice(0, 10));
    await until('the server closes the stalled connection', c.closed, 15_000);
    // Told why, rather than a reset: a 408 with the JSON error every refusal has.
    assert.match(c.received(), /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*Connection: close\r\n\r\n\{"error":"request_timeout","message":"The request body stopped coming for 1 s"\}$/);
  });

  test('is not cut off while it keeps coming, however long it takes in all', async () => {
    const c = connect(server.url);
    c.socket.write(head(BODY.length));
    // Longer in all than the idle time, never silent for long.
    const chunks = BODY.match(/.{1,5}/g)!;
    for (const chunk of chunks) {
      c.socket.write(chunk);
      await sleep(IDLE_MS / 10);
    }
    await expectAnswerAndOpen(c, /^HTTP\/1\.1 401 /);
  });

  test('after a request, the connection is kept alive past the idle time', async () => {
    const c = connect(server.url);
    c.socket.write(head(BODY.length) + BODY);
    await until('the first answer', () => c.received().includes('\r\n\r\n{'), 15_000);
    await sleep(IDLE_MS * 2);
    assert.equal(c.closed(), false, 'an idle kept-alive connection is Node\'s to end (keepAliveTimeout), not ours');
    c.socket.write('GET /ceps/ping HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await until('the second answer', () => (c.received().match(/HTTP\/1\.1 /g) ?? []).length === 2, 15_000);
    c.socket.destroy();
  });
});

test('with the idle time 0, a stalled body is waited for', async () => {
  const server = await startTestServer({ listen: true, config: { bodyIdleTimeoutMs: 0, bodyMinRate: 0 } });
  try {
    const c = connect(server.url);
    c.socket.write(head(BODY.length) + BODY.slice(0, 10));
    await sleep(2500);
    assert.equal(c.closed(), false);
    c.socket.destroy();
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

/** Sends `length` bytes of a JSON body (a login with a long password), `chunk` bytes every `everyMs`, until done or stopped. */
function trickle(c: ReturnType<typeof connect>, length: number, chunk: number, everyMs: number): { stop: () => void; done: Promise<void> } {
  const prefix = '{"user_id":"nobody","password":"';
  const body = prefix + 'x'.repeat(length - prefix.length - 2) + '"}';
  let stopped = false;
  c.socket.write(head(body.length));
  const done = (async () => {
    for (let at = 0; at < body.length && !stopped && !c.closed(); at += chunk) {
      c.socket.write(body.slice(at, at + chunk));
      await sleep(everyMs);
    }
  })();
  return { stop: () => (stopped = true), done };
}

describe('a request body that trickles in', () => {
  let server: TestServer;
  // The silence rule never fires here: every test sends something at least every 100 ms.
  const config = { bodyIdleTimeoutMs: 5000, bodyMinRate: 1000, bodyRateWindowMs: 400 };
  before(async () => {
    server = await startTestServer({ listen: true, config });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await server.close();
  });

  test('is cut off when it brings less than the minimum rate over a window', async () => {
    const c = connect(server.url);
    // 2 bytes every 100 ms: 20 B/s against a minimum of 1000 B/s, never silent for long.
    const t = trickle(c, 4000, 2, 100);
    await until('the server closes the trickling connection', c.closed, 15_000);
    t.stop();
    await t.done;
    assert.match(c.received(), /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*\{"error":"request_timeout","message":"The request body came too slowly: \d+ bytes in \d+ s"\}$/);
  });

  test('is read and answered when it keeps above the rate, however long it takes in all', async () => {
    const c = connect(server.url);
    // 300 bytes every 100 ms: 3000 B/s for ~1.3 s, several windows.
    const t = trickle(c, 4000, 300, 100);
    await t.done;
    await expectAnswerAndOpen(c, /^HTTP\/1\.1 4\d\d /);
  });

  test('a kept-alive connection is not judged between requests', async () => {
    const c = connect(server.url);
    c.socket.write(head(BODY.length) + BODY);
    await until('the first answer', () => c.received().includes('\r\n\r\n{'), 15_000);
    await sleep(config.bodyRateWindowMs * 3);
    assert.equal(c.closed(), false, 'nothing is coming, and nothing is owed');
    c.socket.destroy();
  });
});

test('a body the server is slow to take is not judged by the client\'s pace', async () => {
  // A route that leaves its body unread for three windows (as a slow disk or object store
  // would hold up an upload's reading), then takes it all.
  const WINDOW_MS = 300;
  const app = Fastify();
  registerBodyTimeouts(app, { idleMs: 5000, minBytesPerSec: 1000, rateWindowMs: WINDOW_MS });
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  app.post('/slow', async (request) => {
    const body = request.body as NodeJS.ReadableStream;
    await sleep(WINDOW_MS * 3);
    let bytes = 0;
    for await (const chunk of body) bytes += (chunk as Buffer).length;
    return { bytes };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const port = (app.server.address() as net.AddressInfo).port;
    const c = connect(`http://127.0.0.1:${port}`);
    const body = Buffer.alloc(256 * 1024, 7); // far more than the request stream buffers
    c.socket.write(`POST /slow HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`);
    c.socket.write(body);
    await until('the answer', () => c.received().includes(`{"bytes":${body.length}}`), 15_000);
    assert.equal(c.closed(), false);
    c.socket.destroy();
  } finally {
    for (const s of sockets) s.destroy();
    await app.close();
  }
});

test('with no minimum rate, a trickling body is waited for', async () => {
  const server = await startTestServer({ listen: true, config: { bodyIdleTimeoutMs: 5000, bodyMinRate: 0, bodyRateWindowMs: 400 } });
  try {
    const c = connect(server.url);
    const t = trickle(c, 4000, 2, 100);
    await sleep(2000);
    assert.equal(c.closed(), false, 'five windows at 20 B/s, still open');
    t.stop();
    await t.done;
    c.socket.destroy();
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

test('the minimum rate and its window are configured by FREEHOLD_BODY_MIN_RATE and FREEHOLD_BODY_RATE_WINDOW_MS', () => {
  const defaults = loadConfig({ FREEHOLD_CONFIG: '' });
  assert.equal(defaults.bodyMinRate, 500);
  assert.equal(defaults.bodyRateWindowMs, 20_000);
  const set = loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_BODY_MIN_RATE: '0', FREEHOLD_BODY_RATE_WINDOW_MS: '5000' });
  assert.equal(set.bodyMinRate, 0);
  assert.equal(set.bodyRateWindowMs, 5000);
  assert.throws(() => loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_BODY_MIN_RATE: 'slow' }), /FREEHOLD_BODY_MIN_RATE/);
});

test('the idle time is configured by FREEHOLD_BODY_IDLE_TIMEOUT_MS, 60 s by default', () => {
  assert.equal(loadConfig({ FREEHOLD_CONFIG: '' }).bodyIdleTimeoutMs, 60_000);
  assert.equal(loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_BODY_IDLE_TIMEOUT_MS: '5000' }).bodyIdleTimeoutMs, 5000);
  assert.throws(() => loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_BODY_IDLE_TIMEOUT_MS: 'soon' }), /FREEHOLD_BODY_IDLE_TIMEOUT_MS/);
});
