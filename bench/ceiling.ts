/**
 * The HTTP ceilings in the same run, at the same connection counts as the CEPS rows:
 *
 * - a bare Fastify JSON reply (GET and POST) in its own process; its idle RSS is the
 *   floor any Fastify server on this Node starts from;
 * - Fastify + raw better-sqlite3 (sqlite-http-target.ts): a POST that inserts one
 *   record, a GET that selects one by id and a GET of one indexed query page, over the
 *   same seed — the least work a server must do per CEPS write/read/query, against
 *   which the targets are judged.
 *
 * The Fastify + SQLite rows are paired with the CEPS rows they judge: the bench keeps
 * this server running beside the sqlite+fs target and measures each ceiling row right
 * before its CEPS row (run.ts). On a shared machine whose speed drifts over minutes,
 * a ceiling measured at the start of the run and a CEPS row measured minutes later
 * can differ by a third for reasons neither server controls; seconds apart, they meet
 * the same machine.
 */
import type autocannon from 'autocannon';
import { load, type LoadRow } from './load.js';
import { idleRssOf, scriptArgs, startReady, stop, type IdleRss, type Started } from './processes.js';
import { WRITE_PATH, queryPath, readPath, smallBody } from './dataset.js';

export const BARE_GET = 'bare Fastify GET';
export const BARE_POST = 'bare Fastify POST';
export const SQLITE_HTTP_WRITE = 'Fastify + SQLite insert';
export const SQLITE_HTTP_READ = 'Fastify + SQLite read by id';
export const SQLITE_HTTP_QUERY = 'Fastify + SQLite indexed query';

/** The CEPS rows that have a Fastify + SQLite ceiling row. */
export type CeilingOp = 'write' | 'read' | 'query';
const CEILING_OPS: CeilingOp[] = ['write', 'read', 'query'];

export async function runBareCeiling(connections: number[], seconds: number, settleMs: number, log: (s: string) => void): Promise<{ rows: LoadRow[]; idleRss: IdleRss }> {
  const rows: LoadRow[] = [];
  let idleRss: IdleRss = {};
  const bare = await startReady<{ port: number }>(scriptArgs('bench/bare-target'));
  try {
    // Measured as freehold serve's is (startup.ts), so the two compare.
    idleRss = await idleRssOf(bare.child, 2000, settleMs);
    const url = `http://127.0.0.1:${bare.info.port}/`;
    for (const c of connections) {
      const cpu = { server: bare.child.pid };
      rows.push(await load({ name: BARE_GET, backend: 'ceiling', connections: c, seconds, opts: { url }, cpu }, log));
      rows.push(await load({
        name: BARE_POST, backend: 'ceiling', connections: c, seconds, cpu,
        opts: { url, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"hello"}' },
      }, log));
    }
  } finally {
    await stop(bare.child);
  }
  return { rows, idleRss };
}

/** The Fastify + SQLite server, seeded as the CEPS targets are, measured one row at a time. */
export class SqliteHttpCeiling {
  readonly rows: LoadRow[] = [];
  private i = 0;

  private constructor(private readonly server: Started<{ port: number }>, private readonly seed: number) {}

  static async start(seed: number): Promise<SqliteHttpCeiling> {
    return new SqliteHttpCeiling(await startReady<{ port: number }>([...scriptArgs('bench/sqlite-http-target'), String(seed)]), seed);
  }

  /** Measures one ceiling row and keeps it. */
  async row(op: CeilingOp, connections: number, seconds: number, log: (s: string) => void): Promise<LoadRow> {
    const url = `http://127.0.0.1:${this.server.info.port}`;
    const next = () => this.i++;
    const specs: Record<CeilingOp, { name: string; opts: Omit<autocannon.Options, 'connections' | 'duration' | 'amount'> }> = {
      write: {
        name: SQLITE_HTTP_WRITE,
        opts: { url, requests: [{ method: 'POST', path: WRITE_PATH, headers: { 'content-type': 'application/json' }, setupRequest: (req: autocannon.Request) => ({ ...req, body: smallBody(next()) }) }] },
      },
      read: {
        name: SQLITE_HTTP_READ,
        // The same walk over the seed as the CEPS read row.
        opts: { url, requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, method: 'GET', path: readPath(next(), this.seed) }) }] },
      },
      query: {
        name: SQLITE_HTTP_QUERY,
        // The same queries as the CEPS indexed query row.
        opts: { url, requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, method: 'GET', path: queryPath(next()) }) }] },
      },
    };
    const row = await load({ name: specs[op].name, backend: 'ceiling', connections, seconds, opts: specs[op].opts, cpu: { server: this.server.child.pid } }, log);
    this.rows.push(row);
    return row;
  }

  /** Every row, unpaired: for a run that measures no sqlite+fs target to pair them with. */
  async runAll(connections: number[], seconds: number, log: (s: string) => void): Promise<void> {
    for (const c of connections) for (const op of CEILING_OPS) await this.row(op, c, seconds, log);
  }

  /** The rows in table order (by connections, then write, read, query), however they were measured. */
  sortedRows(): LoadRow[] {
    const rank = [SQLITE_HTTP_WRITE, SQLITE_HTTP_READ, SQLITE_HTTP_QUERY];
    return [...this.rows].sort((a, b) => a.connections - b.connections || rank.indexOf(a.name) - rank.indexOf(b.name));
  }

  async stop(): Promise<void> {
    await stop(this.server.child);
  }
}
