import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { holdWrites } from './held-writes.js';

/** A connected loopback socket, and everything its peer receives until the socket ends. */
async function socketPair(): Promise<{ socket: net.Socket; received: Promise<Buffer>; close: () => void }> {
  let resolveReceived!: (b: Buffer) => void;
  const received = new Promise<Buffer>((r) => (resolveReceived = r));
  const server = net.createServer((peer) => {
    const chunks: Buffer[] = [];
    peer.on('data', (c: Buffer) => chunks.push(c));
    peer.on('end', () => {
      resolveReceived(Buffer.concat(chunks));
      peer.end();
    });
    peer.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return { socket, received, close: () => server.close() };
}

test('held writes stay out of the stream buffer and leave in order, in one piece, at release', async () => {
  const { socket, received, close } = await socketPair();
  const release = holdWrites(socket);
  for (let i = 0; i < 2000; i++) assert.equal(socket.write(Buffer.from(`m${i};`)), true);
  // Nothing went to the stream: no buffered record per write, nothing handed to the socket.
  assert.equal(socket.writableLength, 0);
  assert.equal(socket.bytesWritten, 0);
  release();
  assert.ok(!Object.prototype.hasOwnProperty.call(socket, 'write'), 'the stream has its own write back');
  socket.end();
  const expected = Array.from({ length: 2000 }, (_, i) => `m${i};`).join('');
  assert.equal((await received).toString(), expected);
  close();
});

test('a write that cannot be held sends what is held first, so order is kept', async () => {
  const { socket, received, close } = await socketPair();
  const release = holdWrites(socket);
  socket.write(Buffer.from('a'));
  socket.write(Buffer.from('b'));
  let called = false;
  socket.write('c', () => (called = true)); // a string with a callback goes straight through
  socket.write(Buffer.from('d'));
  release();
  socket.end();
  assert.equal((await received).toString(), 'abcd');
  assert.equal(called, true);
  close();
});

test('releasing after the connection was destroyed drops what was held, without throwing', async () => {
  const { socket, close } = await socketPair();
  const release = holdWrites(socket);
  socket.write(Buffer.from('lost'));
  socket.destroy();
  assert.doesNotThrow(release);
  assert.doesNotThrow(release); // a second release does nothing
  close();
});
