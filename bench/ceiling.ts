/**
 * The HTTP ceilings in the same run, at the same connection counts as the CEPS rows:
 *
 * - a bare Fastify JSON reply (GET and POST) in its own process; its idle RSS is the
 *   floor any Fastify server on this Node starts from;
 * - Fastify + raw better-sqlite3 (sqlite-http-target.ts): a POST that inserts one
 *   record, a GET that selects one by id and a GET of one indexed query page, over the
 *   same seed — the least work a server must do per CEPS write/read/query, against
 *   which the targets are judged.
 */
import type autocannon from 'autocannon';
import { load, type LoadRow } from './load.js';
import { idleRssOf, scriptArgs, startReady, stop, type IdleRss } from './processes.js';
import { KINDS, PAGE, SEEDED, WRITES, seedId, smallBody, spread } from './dataset.js';

export const BARE_GET = 'bare Fastify GET';
export const BARE_POST = 'bare Fastify POST';
export const SQLITE_HTTP_WRITE = 'Fastify + SQLite insert';
export const SQLITE_HTTP_READ = 'Fastify + SQLite read by id';
export const SQLITE_HTTP_QUERY = 'Fastify + SQLite indexed query';

export async function runHttpCeiling(connections: number[], seconds: number, seed: number, settleMs: number, log: (s: string) => void): Promise<{ rows: LoadRow[]; idleRss: IdleRss }> {
  const rows: LoadRow[] = [];
  let idleRss: IdleRss = {};
  const bare = await startReady<{ port: number }>(scriptArgs('bench/bare-target'));
  try {
    // Measured as freehold serve's is (startup.ts), so the two compare.
    idleRss = await idleRssOf(bare.child, 2000, settleMs);
    const url = `http://127.0.0.1:${bare.info.port}/`;
    for (const c of connections) {
      rows.push(await load({ name: BARE_GET, backend: 'ceiling', connections: c, seconds, opts: { url } }, log));
      rows.push(await load({
        name: BARE_POST, backend: 'ceiling', connections: c, seconds,
        opts: { url, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"hello"}' },
      }, log));
    }
  } finally {
    await stop(bare.child);
  }
  const withDb = await startReady<{ port: number }>([...scriptArgs('bench/sqlite-http-target'), String(seed)]);
  try {
    const url = `http://127.0.0.1:${withDb.info.port}`;
    let i = 0;
    for (const c of connections) {
      rows.push(await load({
        name: SQLITE_HTTP_WRITE, backend: 'ceiling', connections: c, seconds,
        opts: { url, requests: [{ method: 'POST', path: `/ceps/write/${WRITES}`, headers: { 'content-type': 'application/json' }, setupRequest: (req: autocannon.Request) => ({ ...req, body: smallBody(i++) }) }] },
      }, log));
      rows.push(await load({
        name: SQLITE_HTTP_READ, backend: 'ceiling', connections: c, seconds,
        // The same walk over the seed as the CEPS read row.
        opts: { url, requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, method: 'GET', path: `/ceps/read/${SEEDED}/${seedId(spread(i++, seed))}` }) }] },
      }, log));
      rows.push(await load({
        name: SQLITE_HTTP_QUERY, backend: 'ceiling', connections: c, seconds,
        // The same queries as the CEPS indexed query row.
        opts: { url, requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, method: 'GET', path: `/ceps/query/${SEEDED}?kind=k${i++ % KINDS}&_count=${PAGE}` }) }] },
      }, log));
    }
  } finally {
    await stop(withDb.child);
  }
  return { rows, idleRss };
}
