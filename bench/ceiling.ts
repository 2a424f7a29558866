/**
 * The HTTP ceiling in the same run: a bare Fastify JSON reply (GET and POST) in its
 * own process, at the same connection counts as the CEPS rows, so "% of ceiling"
 * compares like with like. Also reports the bare process's idle RSS: the floor any
 * Fastify server on this Node starts from.
 */
import { load, type LoadRow } from './load.js';
import { rssOf, scriptArgs, startReady, stop, type Rss } from './processes.js';

export async function runHttpCeiling(connections: number[], seconds: number, log: (s: string) => void): Promise<{ rows: LoadRow[]; idleRss?: Rss }> {
  const bare = await startReady<{ port: number }>(scriptArgs('bench/bare-target'));
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idleRss = await rssOf(bare.child);
    const url = `http://127.0.0.1:${bare.info.port}/`;
    const rows: LoadRow[] = [];
    for (const c of connections) {
      rows.push(await load({ name: 'bare Fastify GET', backend: 'ceiling', connections: c, seconds, opts: { url } }, log));
      rows.push(await load({
        name: 'bare Fastify POST', backend: 'ceiling', connections: c, seconds,
        opts: { url, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"hello"}' },
      }, log));
    }
    return { rows, idleRss };
  } finally {
    await stop(bare.child);
  }
}
