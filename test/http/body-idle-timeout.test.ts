import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config.js';
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

const BODY = JSON.stringify({ user_id: 'nobody', password: 'not the password at all' });
const head = (length: number) =>
  `POST /acctapi/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

describe('a request body that stops coming', () => {
  let server: TestServer;
  const IDLE_MS = 1000;
  before(async () => {
    server = await startTestServer({ listen: true, config: { bodyIdleTimeoutMs: IDLE_MS } });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await server.close();
  });

  test('is cut off once nothing has come for the idle time', async () => {
    const c = connect(server.url);
    c.socket.write(head(BODY.length) + BODY.slice(0, 10));
    await until('the server closes the stalled connection', c.closed, 15_000);
    assert.equal(c.received(), '', 'no answer: the request never finished');
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
    await until('the answer', () => c.received().includes('\r\n\r\n{'), 15_000);
    assert.match(c.received(), /^HTTP\/1\.1 401 /, 'the whole body was read and judged');
    assert.equal(c.closed(), false);
    c.socket.destroy();
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
  const server = await startTestServer({ listen: true, config: { bodyIdleTimeoutMs: 0 } });
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

test('the idle time is configured by FREEHOLD_BODY_IDLE_TIMEOUT_MS, 60 s by default', () => {
  assert.equal(loadConfig({ FREEHOLD_CONFIG: '' }).bodyIdleTimeoutMs, 60_000);
  assert.equal(loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_BODY_IDLE_TIMEOUT_MS: '5000' }).bodyIdleTimeoutMs, 5000);
  assert.throws(() => loadConfig({ FREEHOLD_CONFIG: '', FREEHOLD_BODY_IDLE_TIMEOUT_MS: 'soon' }), /FREEHOLD_BODY_IDLE_TIMEOUT_MS/);
});
