import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Requests refused before any route sees them (by the router or by Node's HTTP
 * parser) still answer in CEPS.md §1's error shape, and never echo the URL back.
 */

const APP = 'com.example.notes';
let server: TestServer;
let token: string;

before(async () => {
  server = await startTestServer({ listen: true });
  await server.addUser('alice');
  token = await server.appToken('alice', APP);
});
after(() => server.close());

const contractShaped = (body: unknown, error: string) => {
  assert.deepEqual(Object.keys(body as object).sort(), ['error', 'message']);
  assert.equal((body as { error: string }).error, error);
};

test('a path that does not percent-decode is a JSON 400 that does not repeat the URL', async () => {
  for (const url of [`/ceps/read/${APP}/%C0%AE%C0%AE?token=secret-in-url`, '/acctapi/%ZZ', '/%ZZ']) {
    const res = await fetch(server.url + url, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 400, url);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json; charset=utf-8/);
    const text = await res.text();
    assert.doesNotMatch(text, /secret-in-url|%C0|%ZZ/);
    contractShaped(JSON.parse(text), 'bad_request');
  }
});

test('an over-long name or id in the path is a JSON 400 invalid_name', async () => {
  for (const url of [`/ceps/read/${APP}/${'x'.repeat(600)}`, `/ceps/write/${'a'.repeat(600)}`]) {
    const res = await fetch(server.url + url, { method: url.includes('write') ? 'POST' : 'GET', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(url.includes('write') ? { body: '{}' } : {}) });
    assert.equal(res.status, 400, url);
    const text = await res.text();
    assert.doesNotMatch(text, /xxxxxxxxxx|aaaaaaaaaa/);
    contractShaped(JSON.parse(text), 'invalid_name');
  }
});

test('a body with a __proto__ key is refused, saying why', async () => {
  const res = await fetch(`${server.url}/ceps/write/${APP}`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"a":1,"__proto__":{"x":1}}',
  });
  assert.equal(res.status, 400);
  const body = await res.json() as { error: string; message: string };
  contractShaped(body, 'bad_request');
  assert.match(body.message, /__proto__/);
});

/** Sends raw bytes and returns everything the server writes before it closes the connection. */
function raw(bytes: string): Promise<string> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.end(bytes));
    let out = '';
    socket.on('data', (d) => { out += d.toString(); });
    socket.on('close', () => resolve(out));
    socket.on('error', (err) => (out ? resolve(out) : reject(err)));
  });
}

test("what Node's HTTP parser refuses answers in the same shape, then closes", async () => {
  const big = await raw(`GET /ceps/ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(big, /^HTTP\/1\.1 431 /);
  contractShaped(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)), 'too_large');

  const garbage = await raw('NOT A REQUEST AT ALL\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400 /);
  assert.match(garbage, /content-type: application\/json; charset=utf-8/i);
  contractShaped(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4)), 'bad_request');

  // The server is still there for the next client.
  assert.equal((await fetch(`${server.url}/ceps/ping`)).status, 200);
});

test('a body refused as too large: the client may send the rest, reads the 413, then the connection closes', async () => {
  const { port } = new URL(server.url);
  const total = 12 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'x');
  // As HTTP clients do, it goes on sending its body after the server's end of the stream.
  const socket = net.connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
  let received = '';
  let error: Error | null = null;
  socket.on('data', (d) => { received += d.toString(); });
  socket.on('error', (err) => { error = err; });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`POST /ceps/write/${APP} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`);
  socket.write(chunk);
  // The refusal comes before the body is in; a client that does not wait for it sends on.
  while (!received.includes('\r\n\r\n') && !error) await new Promise((r) => setTimeout(r, 10));
  assert.match(received, /^HTTP\/1\.1 413 /);
  assert.match(received, /connection: close/i);
  for (let sent = chunk.length; sent < total && !error; sent += chunk.length) {
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        socket.once('drain', resolve);
        socket.once('close', resolve);
        socket.once('error', () => resolve());
      });
    }
  }
  socket.end();
  await closed;
  assert.equal(error, null, 'the rest of the body was read, not answered with a reset');
  contractShaped(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)), 'too_large');
});
