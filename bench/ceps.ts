/**
 * CEPS record rows against one running target: write, read by id, query (equality
 * on the manifest-indexed field), update, delete, at each connection count; plus
 * the same query on a field without an index, at one connection (it scans).
 */
import type autocannon from 'autocannon';
import type { ChildProcess } from 'node:child_process';
import { PAGE, SEEDED, WRITES, WRITE_PATH, kindOf, queryPath, readPath, seedId, smallBody, spread } from './dataset.js';
import { load, type LoadRow } from './load.js';
import { peakRssDuring } from './processes.js';
import type { CeilingOp } from './ceiling.js';

export interface CepsTarget {
  child: ChildProcess;
  base: string;
  token: string;
  seed: number;
  backend: string;
  /** The command name of a database server's processes beside the target (`postgres`), whose CPU rows also count. */
  database?: string;
}

type Req = autocannon.Request;

/** The indexed query row's requests: one page of records of one `kind` each, walking the kinds. */
export function indexedQuery(t: CepsTarget, next: () => number): Omit<autocannon.Options, 'connections' | 'duration' | 'amount'> {
  return {
    url: t.base, headers: { authorization: `Bearer ${t.token}` },
    requests: [{ setupRequest: (req: Req) => ({ ...req, method: 'GET', path: queryPath(next()) }) }],
  };
}

/**
 * A write row leaves the target work to finish in the background (SQLite's checkpoint
 * in its worker thread, PostgreSQL's WAL writer): a pause after it keeps that work
 * out of the next row, whichever server that row measures.
 */
const AFTER_WRITES_MS = 1000;

/**
 * `paired`, when given, runs just before the CEPS write, read and query rows: the
 * run measures each one's ceiling row there (ceiling.ts says why).
 */
export async function runCeps(t: CepsTarget, connections: number[], seconds: number, log: (s: string) => void,
  paired?: (op: CeilingOp, connections: number) => Promise<unknown>): Promise<LoadRow[]> {
  const rows: LoadRow[] = [];
  const auth = { authorization: `Bearer ${t.token}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const run = async (name: string, c: number, opts: Omit<autocannon.Options, 'connections' | 'duration' | 'amount'>, amount?: number) => {
    const cpu = { server: t.child.pid, ...(t.database ? { database: t.database } : {}) };
    const { result, peak } = await peakRssDuring(t.child, () => load({ name, backend: t.backend, connections: c, seconds, amount, opts, cpu }, log));
    rows.push({ ...result, ...(peak ? { rssPeak: Math.round(peak.rss * 10) / 10 } : {}) });
  };
  const settle = () => new Promise((r) => setTimeout(r, AFTER_WRITES_MS));
  let i = 0;
  for (const c of connections) {
    // Ids of the records this round writes: the delete row removes exactly those.
    const written: string[] = [];
    await paired?.('write', c);
    await run('CEPS write', c, {
      url: t.base,
      requests: [{
        method: 'POST', path: WRITE_PATH, headers: json,
        setupRequest: (req: Req) => ({ ...req, body: smallBody(i++) }),
        onResponse: (status: number, body: string) => { if (status === 200) written.push((JSON.parse(body) as { _id: string })._id); },
      }],
    });
    await settle();
    await paired?.('read', c);
    await run('CEPS read by id', c, {
      url: t.base, headers: auth,
      requests: [{ setupRequest: (req: Req) => ({ ...req, method: 'GET', path: readPath(i++, t.seed) }) }],
    });
    await paired?.('query', c);
    await run(`CEPS query (indexed)`, c, indexedQuery(t, () => i++));
    await run('CEPS update', c, {
      url: t.base,
      requests: [{
        setupRequest: (req: Req) => {
          // Same `kind` as the seed gave the record, so the query rows stay comparable.
          const j = spread(i++, t.seed);
          return { ...req, method: 'PUT', path: `/ceps/update/${SEEDED}/${seedId(j)}`, headers: json, body: smallBody(j) };
        },
      }],
    });
    await settle();
    let d = 0;
    if (written.length > 0) {
      await run('CEPS delete', c, {
        url: t.base, headers: auth,
        requests: [{ setupRequest: (req: Req) => ({ ...req, method: 'DELETE', path: `/ceps/delete/${WRITES}/${written[d++ % written.length]}` }) }],
      }, written.length);
      await settle();
    }
  }
  // Without an index every query reads the whole table: one connection shows the cost plainly.
  await run('CEPS query (no index)', 1, {
    url: t.base, headers: auth,
    requests: [{ setupRequest: (req: Req) => ({ ...req, method: 'GET', path: `/ceps/query/${SEEDED}?tag=${kindOf(i++)}&_count=${PAGE}` }) }],
  });
  return rows;
}

