import type { Writable } from 'node:stream';

type WriteArgs = Parameters<Writable['write']>;

/**
 * Holds what is written to `stream` (a pg connection's socket) and sends it as one
 * buffer when the returned function is called. Writes that cannot be held (not a
 * Buffer, or with a callback) first send what is held, so order is kept.
 *
 * Why not `cork()`: a corked stream keeps one small record per write in Node's
 * stream buffer, and a group commit writes tens of thousands of protocol messages.
 * Seeing all of those records live through a young-generation collection, V8's
 * allocation-site pretenuring starts allocating that record in the old generation,
 * for every stream in the process. Each HTTP response's buffered writes then sit in
 * the old generation, where they keep the response's young objects alive through
 * young collections until a full one, which keeps the records' survival high and so
 * the decision in place. Measured (bench/, session 9): after seeding 100,000 records
 * in batches of 5,000, a PostgreSQL-backed server promoted ~2.6 MB per young
 * collection, each took ~5 ms instead of ~1, and a full collection came every second;
 * seeding without the cork, in batches of 2,000, or with
 * `--no-allocation-site-pretenuring`, it did not (record reads stubbed out, to
 * isolate it).
 * Held here, the buffers never enter the stream's buffer, and one write of one buffer
 * is less work than a writev of thousands.
 */
export function holdWrites(stream: Writable): () => void {
  const held: Buffer[] = [];
  const original = stream.write;
  const hadOwnWrite = Object.prototype.hasOwnProperty.call(stream, 'write');
  let holding = true;

  const send = (): void => {
    if (held.length === 0) return;
    const chunk = held.length === 1 ? held[0]! : Buffer.concat(held);
    held.length = 0;
    // A connection lost meanwhile: pg has failed its queries already (its 'error'/'end').
    if (!stream.destroyed) (original as (chunk: Buffer) => boolean).call(stream, chunk);
  };

  const write = (...args: WriteArgs): boolean => {
    const [chunk, encodingOrCallback, callback] = args as [unknown, unknown, unknown];
    if (holding && Buffer.isBuffer(chunk) && encodingOrCallback === undefined && callback === undefined) {
      held.push(chunk);
      return true;
    }
    send();
    return (original as (...a: WriteArgs) => boolean).apply(stream, args);
  };
  stream.write = write as Writable['write'];

  return () => {
    if (!holding) return;
    holding = false;
    if (hadOwnWrite) stream.write = original;
    else delete (stream as Partial<Pick<Writable, 'write'>>).write;
    send();
  };
}
