import { randomBytes } from 'node:crypto';

/**
 * The PostgreSQL server the tests may use (`DATABASE_URL`; `scripts/pg-dev.sh start`
 * prints one). In CI it must be there: a missing server fails instead of skipping.
 */
export function postgresUrl(): string | undefined {
  const url = process.env.DATABASE_URL;
  if (!url && process.env.CI) throw new Error('DATABASE_URL is not set: CI must run the PostgreSQL tests (see .ci/run)');
  return url;
}

/** A fresh schema name, so that each test's stores start empty. */
export function freshSchemaUrl(base: string): string {
  const u = new URL(base);
  u.searchParams.set('schema', `t_${randomBytes(6).toString('hex')}`);
  return u.toString();
}
