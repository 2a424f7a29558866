import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresRecordStore } from '../../src/storage/postgres/record-store.js';

/**
 * The PostgreSQL server the tests may use (`DATABASE_URL`; `scripts/pg-dev.sh start`
 * prints one). In CI it must be there: a missing server fails instead of skipping.
 */
export function postgresUrl(): string | undefined {
  const url = process.env.DATABASE_URL;
  if (!url && process.env.CI) throw new Error('DATABASE_URL is not set: CI must run the PostgreSQL tests (see .ci/run)');
  return url;
}

/**
 * A test file's scratch space on the PostgreSQL server: stores opened in schemas of
 * their own (dropped when the file's tests are done) and an admin pool for looking
 * at, or getting in the way of, what a store does.
 */
export class PostgresScratch {
  readonly admin: pg.Pool;
  private readonly schemas: string[] = [];

  constructor(readonly databaseUrl: string, private readonly appPrefix: string) {
    this.admin = new pg.Pool({ connectionString: databaseUrl, max: 3 });
    after(async () => {
      for (const s of this.schemas) await this.admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      await this.admin.end();
    });
  }

  /** A new schema name, dropped after the file's tests. */
  schema(): string {
    const schema = `fh_test_${randomBytes(6).toString('hex')}`;
    this.schemas.push(schema);
    return schema;
  }

  /** A store URL for a new schema of its own (dropped after the file's tests). */
  schemaUrl(): string {
    const u = new URL(this.databaseUrl);
    u.searchParams.set('schema', this.schema());
    return u.toString();
  }

  /**
   * Runs `fn` with a store in a fresh schema, its connections named `app` (to find them
   * in pg_stat_activity); `params` go on the store URL. The store is closed after.
   */
  async withStore(params: Record<string, string>, fn: (store: PostgresRecordStore, app: string, schema: string) => Promise<void>): Promise<void> {
    const schema = this.schema();
    const app = `${this.appPrefix}${randomBytes(4).toString('hex')}`;
    const u = new URL(this.databaseUrl);
    u.searchParams.set('schema', schema);
    u.searchParams.set('application_name', app);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const store = new PostgresRecordStore(u.toString());
    await store.init();
    try {
      await fn(store, app, schema);
    } finally {
      await store.close();
    }
  }
}

/**
 * Defines a file's PostgreSQL tests when a server is there. Without one: a single
 * test, skipped on a developer's machine and failing in CI, which must run them all.
 */
export function postgresSuite(name: string, appPrefix: string, define: (scratch: PostgresScratch) => void): void {
  const url = process.env.DATABASE_URL;
  if (url) {
    define(new PostgresScratch(url, appPrefix));
  } else if (process.env.CI) {
    test(name, () => assert.fail('DATABASE_URL is not set: CI must run the PostgreSQL tests (.ci/run starts a cluster and sets it)'));
  } else {
    test.skip(`${name}: DATABASE_URL is not set (run \`export DATABASE_URL=$(scripts/pg-dev.sh start)\`)`);
  }
}
