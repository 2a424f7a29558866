import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer } from '../helpers/server.js';
import { until } from '../helpers/until.js';

const refusesConnections = (port: number) => new Promise<boolean>((resolve) => {
  const probe = net.connect(port, '127.0.0.1');
  probe.once('connect', () => { probe.destroy(); resolve(false); });
  probe.once('error', () => resolve(true));
});

test('a request arriving while the server stops is refused like any other: JSON 503, Retry-After, and the connection closes', async () => {
  const s = await startTestServer({ listen: true });
  const port = Number(new URL(s.url).port);
  const socket = net.connect(port, '127.0.0.1');
  let out = '';
  socket.on('data', (d: Buffer) => { out += d.toString(); });
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  try {
    await new Promise((resolve) => socket.once('connect', resolve));
    // A request in flight keeps its connection open through the stop: its body is not all there yet.
    const body = JSON.stringify({ user_id: 'nobody', password: 'not the password' });
    const takenIn = new Promise((resolve) => s.app.server.once('request', resolve));
    socket.write(`POST /acctapi/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
    await takenIn;
    const closing = s.app.close();
    await until('the server stops taking connections', () => refusesConnections(port));
    // The rest of that body, then another request on the same connection.
    socket.write(body.slice(5));
    socket.write('GET /ceps/ping HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await ended;
    await closing;
    const replies = out.split(/(?=HTTP\/1\.1 )/);
    assert.equal(replies.length, 2, out);
    assert.match(replies[0]!, /^HTTP\/1\.1 401 /, 'the request under way is answered');
    assert.match(replies[1]!, /^HTTP\/1\.1 503 /);
    assert.match(replies[1]!, /^retry-after: \d+\r$/im);
    assert.match(replies[1]!, /^connection: close\r$/im);
    assert.match(replies[1]!, /^content-type: application\/json; charset=utf-8\r$/im);
    assert.deepEqual(JSON.parse(replies[1]!.slice(replies[1]!.indexOf('\r\n\r\n') + 4)), { error: 'unavailable', message: 'The server is stopping; try again in a moment' });
  } finally {
    socket.destroy();
    await s.close();
  }
});
