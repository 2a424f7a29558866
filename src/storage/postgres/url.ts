/** Parsing of postgres:// URLs, kept apart from the store so it loads without the driver. */

export interface PostgresOptions {
  /** The URL without our own parameters, for `pg`. */
  connectionString: string;
  /** Pooled connections (writes, counts); point reads share one more, queries another (shared-connection.ts), and one listens (change-listener.ts). */
  poolSize: number;
  /** Schema holding the tables (created if missing); null for the connection's default (public). */
  schema: string | null;
}

const DEFAULT_POOL_SIZE = 10;
/** Lower-case only: the name is used as a quoted identifier, and unquoted it would fold to lower case. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * `postgres://user:pass@host:5432/db?pool=10&schema=freehold`. `pool` (1-1000,
 * default 10) and `schema` are ours and are removed; every other parameter
 * (sslmode, application_name, …) goes to `pg` as it is.
 */
export function parsePostgresUrl(url: string): PostgresOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`Invalid PostgreSQL URL ${JSON.stringify(url.replace(/:[^:@/]*@/, ':…@'))}`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`Not a postgres:// URL: ${u.protocol}`);
  const pool = u.searchParams.get('pool');
  const schema = u.searchParams.get('schema');
  u.searchParams.delete('pool');
  u.searchParams.delete('schema');
  let poolSize = DEFAULT_POOL_SIZE;
  if (pool !== null) {
    poolSize = /^\d{1,4}$/.test(pool) ? Number(pool) : NaN;
    if (!(poolSize >= 1 && poolSize <= 1000)) throw new Error(`PostgreSQL URL parameter pool must be an integer from 1 to 1000, got ${JSON.stringify(pool)}`);
  }
  if (schema !== null && !SCHEMA_NAME.test(schema)) {
    throw new Error(`PostgreSQL URL parameter schema must match ${SCHEMA_NAME.source}, got ${JSON.stringify(schema)}`);
  }
  return { connectionString: u.toString(), poolSize, schema };
}
