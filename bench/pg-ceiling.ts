/**
 * The PostgreSQL ceiling on this machine: raw `pg` single-row INSERTs into a table
 * shaped like freehold's (text key columns + JSONB), each its own autocommit
 * transaction, from 1 client and from 8 concurrent clients. The storage issue's
 * target is a CEPS write on postgres at ≥ 50% of this (same concurrency).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface PgCeiling {
  /** Inserts/s with one client, one at a time. */
  insert1: number;
  /** Inserts/s with 8 clients inserting concurrently. */
  insert8: number;
}

async function insertLoop(client: pg.Client, table: string, prefix: string, until: number): Promise<number> {
  const body = JSON.stringify({ title: 'hello', text: 'lorem ipsum dolor sit amet', n: 1 });
  let n = 0;
  while (performance.now() < until) {
    await client.query({ name: 'ins', text: `INSERT INTO ${table} (owner, tbl, id, created, modified, data) VALUES ($1, $2, $3, $4, $5, $6)`, values: ['bench', 'com.freehold.bench', `${prefix}${n}`, n, n, body] });
    n++;
  }
  return n;
}

export async function measurePgCeiling(url: string, seconds: number): Promise<PgCeiling> {
  const schema = `bench_raw_${randomBytes(5).toString('hex')}`;
  const table = `"${schema}".t`;
  const clients = await Promise.all(Array.from({ length: 8 }, async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  }));
  const [first] = clients;
  try {
    await first!.query(`CREATE SCHEMA "${schema}"`);
    await first!.query(`CREATE TABLE ${table} (owner TEXT NOT NULL, tbl TEXT NOT NULL, id TEXT NOT NULL, created BIGINT NOT NULL, modified BIGINT NOT NULL, data JSONB NOT NULL, PRIMARY KEY (owner, tbl, id))`);
    let t0 = performance.now();
    const one = await insertLoop(first!, table, 'a', t0 + seconds * 1000);
    const insert1 = one / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const counts = await Promise.all(clients.map((c, k) => insertLoop(c, table, `b${k}-`, t0 + seconds * 1000)));
    const insert8 = counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
    return { insert1: Math.round(insert1), insert8: Math.round(insert8) };
  } finally {
    await first!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
