import { after, describe } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from './server.js';
import { postgresSuite } from './postgres.js';

/**
 * Defines `tests` once per record backend, each with servers of its own: SQLite (the
 * default), flat files (in a temporary folder) and PostgreSQL (a fresh schema each
 * start; required in CI, see postgresSuite). `pgPrefix` names the PostgreSQL
 * connections, to find them in pg_stat_activity.
 */
export function forEachRecordBackend(title: string, pgPrefix: string,
  tests: (label: string, start: () => Promise<TestServer>) => void): void {
  describe(`${title}, sqlite`, () => tests('sqlite', () => startTestServer()));
  describe(`${title}, flatfile`, () => {
    const root = mkdtempSync(path.join(tmpdir(), 'freehold-flat-'));
    after(() => rmSync(root, { recursive: true, force: true }));
    // A folder per server: two stores writing one root at once are not supported (record-store.ts, quietOthers).
    tests('flatfile', () => startTestServer({ config: { records: `flatfile:${mkdtempSync(path.join(root, 'server-'))}` } }));
  });
  postgresSuite(`${title}, postgres`, pgPrefix, (scratch) => tests('postgres', () => startTestServer({ config: { records: scratch.schemaUrl() } })));
}
