/**
 * The combined ceiling for a CEPS record call: Fastify plus raw better-sqlite3, and
 * nothing else — no token, no validation beyond JSON parsing, no change log, no
 * logging. One row inserted per POST in its own transaction; one primary-key select
 * per GET; one page of an equality query on `kind` through the same expression index
 * freehold builds for a manifest-declared index, sent as the stored texts joined. Same
 * schema shape and pragmas as freehold's SQLite store, seeded with the same records,
 * so "% of ceiling" for CEPS write/read/query compares freehold with the least work
 * any HTTP server must do to store or fetch records on this machine.
 *
 *   sqlite-http-target.ts <seed>
 */
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SEEDED, WRITES, seedRecord } from './dataset.js';

const OWNER = 'bench';
const seed = Number(process.argv[2] ?? 0);
const dir = mkdtempSync(path.join(tmpdir(), 'freehold-bench-ceiling-'));
const db = new Database(path.join(dir, 'ceiling.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('mmap_size = 268435456');
db.exec(`CREATE TABLE records (owner TEXT NOT NULL, tbl TEXT NOT NULL, id TEXT NOT NULL, created INTEGER NOT NULL,
  modified INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (owner, tbl, id))`);
// freehold's layout for an app-declared index on `kind` (SqliteRecordStore.ensureIndex), made
// before the records, as an app's install makes it: built as rows arrive, it is laid out as a
// real store's is (built after them, it would be packed in order: ~10% faster to query).
const kind = `json_extract(data, '$."kind"')`;
db.exec(`CREATE INDEX records_by_kind ON records (owner, tbl, ${kind}, modified DESC, id)`);
const insert = db.prepare('INSERT INTO records (owner, tbl, id, created, modified, data) VALUES (?, ?, ?, ?, ?, ?)');
const select = db.prepare('SELECT data FROM records WHERE owner = ? AND tbl = ? AND id = ?').pluck();
// freehold's default order (modified DESC, id ASC); `+?` keeps SQLite from planning the
// statement again at every run, as freehold's store does (LIMIT_OFFSET in its record-store.ts).
const page = db.prepare(`SELECT data FROM records WHERE owner = ? AND tbl = ? AND ${kind} = ? ORDER BY modified DESC, id ASC LIMIT +?`).pluck();
const now = Date.now();
db.transaction(() => {
  for (let j = 0; j < seed; j++) {
    const r = seedRecord(j, now);
    insert.run(OWNER, SEEDED, r._id, r._date_created, r._date_modified, JSON.stringify(r));
  }
})();

const app = Fastify({ logger: false });
app.post('/ceps/write/:table', async (request) => {
  const t = Date.now();
  const record = { ...(request.body as object), _id: randomBytes(12).toString('base64url'), _date_created: t, _date_modified: t };
  insert.run(OWNER, WRITES, record._id, t, t, JSON.stringify(record));
  return { _id: record._id, _date_created: t, _date_modified: t };
});
app.get('/ceps/read/:table/:id', async (request, reply) => {
  const { table, id } = request.params as { table: string; id: string };
  const data = select.get(OWNER, table, id) as string | undefined;
  if (data === undefined) return reply.code(404).send({ error: 'not_found', message: 'No such record' });
  return JSON.parse(data) as object;
});
app.get('/ceps/query/:table', async (request, reply) => {
  const { table } = request.params as { table: string };
  const q = request.query as { kind?: string; _count?: string };
  const rows = page.all(OWNER, table, String(q.kind), Number(q._count ?? 50)) as string[];
  return reply.type('application/json; charset=utf-8').send(`[${rows.join(',')}]`);
});
await app.listen({ port: 0, host: '127.0.0.1' });
const addr = app.server.address();
process.send?.({ ready: { port: typeof addr === 'object' && addr ? addr.port : 0 } });
const shutdown = () => void app.close().finally(() => { db.close(); rmSync(dir, { recursive: true, force: true }); process.exit(0); });
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
