import { createHash } from 'node:crypto';
import pg from 'pg';
import { FreeholdError } from '../../core/errors.js';
import { compilePostgres, compilePostgresOrder, fromJsonb, postgresValueExpression, toJsonb } from '../../query/postgres.js';
import { PATH_SEGMENT } from '../../query/validate.js';
import type { Condition, QueryOptions } from '../../query/types.js';
import type { BatchOp, Change, RecordStore, StoredRecord } from '../types.js';
import { parsePostgresUrl, type PostgresOptions } from './url.js';

export { parsePostgresUrl, type PostgresOptions } from './url.js';

/**
 * Records in PostgreSQL: one `records` table for every (owner, app table), each
 * record stored whole as jsonb in `data` (reserved fields included, so `get`
 * returns exactly what was stored), with `id`, `created` and `modified` copied
 * into real columns for lookups, the default newest-first order and date filters.
 * Text columns use COLLATE "C" so ids sort by code point, as in SQLite.
 *
 * Indexes. `scope` is a generated column naming (owner, table) in one value, and
 * every secondary index leads with it while the primary key leads with
 * (owner, tbl). A point read (owner = … AND tbl = … AND id = …) can then use only
 * the primary key. Were the secondary indexes led by (owner, tbl) too, then on a
 * table without statistics (new, or a new owner absent from them) the planner sees
 * them all as equally cheap and may scan an owner's whole table through one, which
 * measured 100x slower. Queries filter by `scope` and so use the secondary indexes.
 * Statistics still matter for choosing among those, so the store also runs ANALYZE
 * in the background after bulk writes (autovacuum would, but only up to a minute
 * later and only once 10% of the whole table changed).
 *
 * Writes. Each write is one statement that also appends its `changes` row, so it
 * commits atomically in one round trip. Two orderings matter:
 *   - Change feed: readers page by `seq > last`, so seqs must become visible in
 *     order, but a bigserial is assigned at insert and transactions may commit out
 *     of order, letting a reader skip a change. Every write therefore first takes a
 *     per-owner transaction-scoped advisory lock, which serialises an owner's
 *     writes (across processes too) so seq order is commit order.
 *   - Call order: writes issued together apply in the order they were called (the
 *     suite relies on it, and SQLite gives it). Each owner has a queue; while one
 *     write runs, later ones wait and then commit together in one transaction
 *     (group commit: one commit, one lock wait for many writes). Batches run in a
 *     savepoint so a failing batch leaves the rest of the group alone; if a group
 *     fails for another reason (an SQL error) its writes are retried one by one,
 *     so one bad write never fails another.
 */

const { Pool } = pg;
type Queryable = pg.Pool | pg.PoolClient;

/** Advisory lock namespaces ("free", "fref"): init/DDL, and one lock per owner for writes. */
const DDL_LOCK = 1718773093;
const OWNER_LOCK = 1718773094;
const MAX_GROUP = 500;
/** Background ANALYZE after this many writes, then after twice as many more, and so on. */
const FIRST_ANALYZE_AFTER = 1000;
const ANALYZE_DELAY_MS = 1000;
const MAX_INDEX_FIELDS = 8;
const DEFAULT_ORDER = 'modified DESC, id ASC';
/** PostgreSQL's program_limit_exceeded: a btree entry over ~2.7 kB (a huge value in an indexed field). */
const PG_LIMIT_EXCEEDED = '54000';
const PG_JSONB = 3802;
const PG_INT8 = 20;

/**
 * jsonb arrives as text so fromJsonb can decode escaped strings; int8 (counts,
 * seqs, epoch ms) as numbers: every value we store fits in a double exactly.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === PG_JSONB) return (v: string) => v;
    if (oid === PG_INT8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

interface Job {
  run: (db: Queryable) => Promise<unknown>;
  /** Several statements: runs in a savepoint when it shares a transaction. */
  multi: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class PostgresRecordStore implements RecordStore {
  readonly kind = 'postgres';
  private pool: pg.Pool | null = null;
  private starting: Promise<void> | null = null;
  private readonly options: PostgresOptions;
  private readonly sql: ReturnType<typeof statements>;
  private readonly queues = new Map<string, Job[]>();
  private readonly flushing = new Map<string, Promise<void>>();
  private analyzeEvery = FIRST_ANALYZE_AFTER;
  private writesUntilAnalyze = FIRST_ANALYZE_AFTER;
  private analyzeTimer: NodeJS.Timeout | null = null;
  private analyzing: Promise<void> | null = null;

  /** `url` is a postgres:// or postgresql:// URL, with optional `pool` and `schema` parameters. */
  constructor(url: string) {
    this.options = parsePostgresUrl(url);
    this.sql = statements(this.options.schema);
  }

  async init(): Promise<void> {
    if (this.pool) return;
    this.starting ??= this.start().finally(() => (this.starting = null));
    await this.starting;
  }

  private async start(): Promise<void> {
    const pool = new Pool({ connectionString: this.options.connectionString, max: this.options.poolSize, types });
    // An idle client whose connection drops emits 'error' on the pool; without a listener
    // that would crash the process. The pool discards the client; the next query reconnects.
    pool.on('error', () => {});
    try {
      await inTransaction(pool, async (c) => {
        // Concurrent CREATE … IF NOT EXISTS can still fail on a catalog unique index; the lock makes
        // concurrent init() calls (several processes starting at once) take turns.
        await c.query('SELECT pg_advisory_xact_lock($1, 0)', [DDL_LOCK]);
        if (this.options.schema) await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.options.schema)}`);
        await c.query(this.sql.schema);
      });
    } catch (error) {
      await pool.end();
      throw error;
    }
    this.pool = pool;
  }

  async close(): Promise<void> {
    // Queued writes were promised: let them finish first.
    while (this.flushing.size > 0) await Promise.allSettled([...this.flushing.values()]);
    if (this.analyzeTimer) clearTimeout(this.analyzeTimer);
    this.analyzeTimer = null;
    await this.analyzing;
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  async create(owner: string, table: string, record: StoredRecord): Promise<void> {
    await this.write(owner, false, 1, (db) => this.createIn(db, owner, table, record));
  }

  async get(owner: string, table: string, id: string): Promise<StoredRecord | null> {
    const { rows } = await this.db().query<[string]>({ name: 'fh_get', text: this.sql.get, values: [owner, table, id], rowMode: 'array' });
    return rows.length === 0 ? null : fromJsonb<StoredRecord>(rows[0]![0]);
  }

  async replace(owner: string, table: string, record: StoredRecord): Promise<boolean> {
    return this.write(owner, false, 1, (db) => this.replaceIn(db, owner, table, record));
  }

  async put(owner: string, table: string, record: StoredRecord): Promise<void> {
    await this.write(owner, false, 1, (db) => this.putIn(db, owner, table, record));
  }

  async delete(owner: string, table: string, id: string): Promise<StoredRecord | null> {
    return this.write(owner, false, 1, (db) => this.deleteIn(db, owner, table, id));
  }

  async query(owner: string, table: string, where: Condition, options: QueryOptions): Promise<StoredRecord[]> {
    const params: unknown[] = [scopeOf(owner, table)];
    const cond = compilePostgres(where, 'data', params);
    let order = compilePostgresOrder(options.sort, 'data') || DEFAULT_ORDER;
    // A total order makes skip/limit pages stable; SQLite leaves such ties unspecified.
    if (!options.sort.some((k) => k.path.length === 1 && k.path[0] === '_id') && options.sort.length > 0) order += ', id ASC';
    params.push(options.limit, options.skip);
    const n = params.length;
    const text = `SELECT data FROM ${this.sql.records} WHERE scope = $1 AND ${cond} ORDER BY ${order} LIMIT $${n - 1} OFFSET $${n}`;
    const { rows } = await this.db().query<[string]>({ text, values: params, rowMode: 'array' });
    return rows.map((r) => fromJsonb<StoredRecord>(r[0]));
  }

  async count(owner: string, table: string, where: Condition): Promise<number> {
    const params: unknown[] = [scopeOf(owner, table)];
    const cond = compilePostgres(where, 'data', params);
    const text = `SELECT count(*) FROM ${this.sql.records} WHERE scope = $1 AND ${cond}`;
    const { rows } = await this.db().query<[number]>({ text, values: params, rowMode: 'array' });
    return rows[0]![0];
  }

  async batch(owner: string, ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return;
    await this.write(owner, true, ops.length, async (db) => {
      for (const op of ops) {
        switch (op.kind) {
          case 'create':
            await this.createIn(db, owner, op.table, op.record);
            break;
          case 'put':
            await this.putIn(db, owner, op.table, op.record);
            break;
          case 'delete':
            await this.deleteIn(db, owner, op.table, op.id);
            break;
          default:
            throw new FreeholdError('bad_request', `Unknown batch op ${JSON.stringify((op as { kind: unknown }).kind)}`);
        }
      }
    });
  }

  /**
   * One physical table serves every app table, so an index leads with (owner, tbl)
   * and is named by a hash of its expressions: shared by every table indexing the
   * same fields, and idempotent. The expressions are exactly those compilePostgres
   * emits for equality, so the planner can match them. (SQLite pins planner
   * statistics for the same reason the trailing columns below exist.)
   */
  async ensureIndex(_owner: string, _table: string, fields: string[][]): Promise<void> {
    if (fields.length === 0 || fields.length > MAX_INDEX_FIELDS) {
      throw new FreeholdError('bad_request', `An index needs 1 to ${MAX_INDEX_FIELDS} fields`);
    }
    for (const path of fields) {
      if (path.length === 0 || !path.every((seg) => PATH_SEGMENT.test(seg))) {
        throw new FreeholdError('bad_request', `Invalid index field ${JSON.stringify(path.join('.'))}`);
      }
    }
    const exprs = fields.map((path) => postgresValueExpression(path, 'data'));
    // Trailing (modified DESC, id): an equality query in CEPS order (newest first) reads the
    // index already in order and stops at its limit, so the planner prefers it over walking
    // records_by_modified whatever its statistics say (none, for a new index).
    if (!exprs.includes('modified') && !exprs.includes('id')) exprs.push('modified DESC', 'id');
    const name = 'records_x_' + createHash('sha256').update(JSON.stringify(exprs)).digest('hex').slice(0, 20);
    await inTransaction(this.db(), async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, 1)', [DDL_LOCK]);
      await c.query(`CREATE INDEX IF NOT EXISTS ${name} ON ${this.sql.records} (scope, ${exprs.join(', ')})`);
    });
    this.analyzeSoon(); // statistics for the new expressions
  }

  async listTables(owner: string): Promise<Array<{ table: string; count: number }>> {
    const { rows } = await this.db().query<[string, number]>({ name: 'fh_tables', text: this.sql.listTables, values: [owner], rowMode: 'array' });
    return rows.map(([table, count]) => ({ table, count }));
  }

  async usage(owner: string): Promise<{ records: number; bytes: number }> {
    const { rows } = await this.db().query<[string, string]>({ name: 'fh_usage', text: this.sql.usage, values: [owner], rowMode: 'array' });
    return { records: Number(rows[0]?.[0] ?? 0), bytes: Number(rows[0]?.[1] ?? 0) };
  }

  async changes(owner: string, sinceSeq: number, limit: number): Promise<Change[]> {
    const { rows } = await this.db().query<Change>({ name: 'fh_changes', text: this.sql.changes, values: [owner, sinceSeq, limit] });
    return rows;
  }

  async dropTable(owner: string, table: string): Promise<number> {
    return this.write(owner, false, 1, async (db) => {
      const { rows } = await db.query<[number]>({ name: 'fh_drop', text: this.sql.drop, values: [owner, table, Date.now()], rowMode: 'array' });
      return rows[0]![0];
    });
  }

  // --- single writes; each is one statement, valid alone or inside a transaction ---

  private async createIn(db: Queryable, owner: string, table: string, r: StoredRecord): Promise<void> {
    const { rowCount } = await db.query({ name: 'fh_create', text: this.sql.create, values: [owner, table, ...columns(r), Date.now()] });
    if (rowCount === 0) throw new FreeholdError('conflict', `A record with id ${r._id} already exists in ${table}`);
  }

  private async replaceIn(db: Queryable, owner: string, table: string, r: StoredRecord): Promise<boolean> {
    const { rowCount } = await db.query({ name: 'fh_replace', text: this.sql.replace, values: [owner, table, ...columns(r), Date.now()] });
    return rowCount !== 0;
  }

  private async putIn(db: Queryable, owner: string, table: string, r: StoredRecord): Promise<void> {
    await db.query({ name: 'fh_put', text: this.sql.put, values: [owner, table, ...columns(r), Date.now()] });
  }

  private async deleteIn(db: Queryable, owner: string, table: string, id: string): Promise<StoredRecord | null> {
    const { rows } = await db.query<[string]>({ name: 'fh_delete', text: this.sql.delete, values: [owner, table, id, Date.now()], rowMode: 'array' });
    return rows.length === 0 ? null : fromJsonb<StoredRecord>(rows[0]![0]);
  }

  // --- per-owner write queue with group commit ---

  private write<T>(owner: string, multi: boolean, rows: number, run: (db: Queryable) => Promise<T>): Promise<T> {
    this.db();
    this.writesUntilAnalyze -= rows;
    if (this.writesUntilAnalyze <= 0) {
      this.analyzeEvery *= 2;
      this.writesUntilAnalyze = this.analyzeEvery;
      this.analyzeSoon();
    }
    return new Promise<T>((resolve, reject) => {
      const queue = this.queues.get(owner);
      const job: Job = { run, multi, resolve: resolve as (v: unknown) => void, reject };
      if (queue) queue.push(job);
      else this.queues.set(owner, [job]);
      if (!this.flushing.has(owner)) this.flushing.set(owner, this.flush(owner));
    });
  }

  private async flush(owner: string): Promise<void> {
    try {
      for (;;) {
        const queue = this.queues.get(owner)!;
        if (queue.length === 0) break;
        const jobs = queue.splice(0, MAX_GROUP);
        if (jobs.length === 1 && !jobs[0]!.multi) {
          // The common case, one write: its statement commits on its own, one round trip.
          settle(jobs[0]!, await outcome(() => jobs[0]!.run(this.db())));
        } else {
          await this.runGroup(jobs);
        }
      }
    } catch (error) {
      // Not expected (outcome() catches), but a queued write must never be left unsettled.
      for (const job of this.queues.get(owner)!.splice(0)) job.reject(error);
    } finally {
      // Synchronously after seeing an empty queue, so no write can slip in between.
      this.queues.delete(owner);
      this.flushing.delete(owner);
    }
  }

  private async runGroup(jobs: Job[]): Promise<void> {
    const results: Outcome[] = [];
    const committed = await outcome(() =>
      inTransaction(this.db(), async (c) => {
        for (const job of jobs) {
          if (job.multi) await c.query('SAVEPOINT fh_job');
          const r = await outcome(() => job.run(c));
          if (job.multi) await c.query(r.ok ? 'RELEASE SAVEPOINT fh_job' : 'ROLLBACK TO SAVEPOINT fh_job; RELEASE SAVEPOINT fh_job');
          // An SQL error outside a savepoint has aborted the transaction: retry one by one.
          else if (!r.ok && r.error instanceof pg.DatabaseError) throw r.error;
          results.push(r);
        }
      }),
    );
    if (committed.ok) {
      jobs.forEach((job, i) => settle(job, results[i]!));
    } else if (jobs.length > 1) {
      for (const job of jobs) await this.runGroup([job]); // find the bad one; the rest still commit, in order
    } else {
      settle(jobs[0]!, committed);
    }
  }

  /** Refreshes planner statistics shortly (debounced), off the request path; failures only cost plan quality. */
  private analyzeSoon(): void {
    if (this.analyzeTimer || this.analyzing) return;
    this.analyzeTimer = setTimeout(() => {
      this.analyzeTimer = null;
      if (!this.pool) return;
      this.analyzing = this.pool.query(`ANALYZE ${this.sql.records}`).then(
        () => {},
        () => {},
      ).finally(() => (this.analyzing = null));
    }, ANALYZE_DELAY_MS);
    this.analyzeTimer.unref();
  }

  private db(): pg.Pool {
    if (!this.pool) throw new Error('PostgresRecordStore used before init() or after close()');
    return this.pool;
  }
}

/** Runs `fn` in a transaction on a pooled client; a client whose ROLLBACK fails is discarded. */
async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const value = await fn(c);
    await c.query('COMMIT');
    c.release();
    return value;
  } catch (error) {
    const clean = await c.query('ROLLBACK').then(() => true, () => false);
    c.release(!clean);
    throw error;
  }
}

async function outcome(fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

function settle(job: Job, r: Outcome): void {
  if (r.ok) job.resolve(r.value);
  else job.reject(translate(r.error));
}

function translate(error: unknown): unknown {
  if (error instanceof Error && (error as { code?: unknown }).code === PG_LIMIT_EXCEEDED) {
    return new FreeholdError('too_large', 'A value in an indexed field is too large to index (about 2.7 kB at most)');
  }
  return error;
}

/** id, created, modified, data: checks what the columns need, then serialises the whole record. */
function columns(r: StoredRecord): [string, number, number, string] {
  if (typeof r._id !== 'string' || r._id.length === 0 || r._id.includes('\u0000')) {
    throw new FreeholdError('bad_request', 'Record _id must be a non-empty string without NUL');
  }
  if (!Number.isSafeInteger(r._date_created) || !Number.isSafeInteger(r._date_modified)) {
    throw new FreeholdError('bad_request', 'Record _date_created and _date_modified must be integers (epoch ms)');
  }
  return [r._id, r._date_created, r._date_modified, toJsonb(r)];
}

/** The `scope` column's value: PostgreSQL's length() counts code points, so this does too. */
export function scopeOf(owner: string, table: string): string {
  let n = 0;
  for (const _ of owner) n++;
  return `${n}:${owner}${table}`;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** All fixed SQL of one store, with table names qualified by the configured schema. */
function statements(schema: string | null) {
  const p = schema ? quoteIdent(schema) + '.' : '';
  const records = `${p}records`;
  const changes = `${p}changes`;
  // Taken first by every write (see the class comment); the lock CTE feeds the write, so it runs before it.
  const lock = `lock AS (SELECT pg_advisory_xact_lock(${OWNER_LOCK}, hashtext($1::text)) AS locked)`;
  const values = 'SELECT $1::text, $2::text, $3::text, $4::int8, $5::int8, $6::jsonb FROM lock';
  const logPut = `INSERT INTO ${changes} (owner, tbl, id, op, at) SELECT $1, $2, id, 'put', $7::int8 FROM w`;
  return {
    records,
    schema: `
      CREATE TABLE IF NOT EXISTS ${records} (
        owner    text COLLATE "C" NOT NULL,
        tbl      text COLLATE "C" NOT NULL,
        id       text COLLATE "C" NOT NULL,
        created  bigint NOT NULL,
        modified bigint NOT NULL,
        data     jsonb  NOT NULL,
        -- (owner, table) as one injective value (length-prefixed owner): see the class comment.
        scope    text COLLATE "C" NOT NULL GENERATED ALWAYS AS (length(owner)::text || ':' || owner || tbl) STORED,
        PRIMARY KEY (owner, tbl, id)
      );
      CREATE INDEX IF NOT EXISTS records_by_modified ON ${records} (scope, modified DESC, id);
      CREATE TABLE IF NOT EXISTS ${changes} (
        seq   bigserial PRIMARY KEY,
        owner text COLLATE "C" NOT NULL,
        tbl   text COLLATE "C" NOT NULL,
        id    text COLLATE "C" NOT NULL,
        op    text   NOT NULL,
        at    bigint NOT NULL
      );
      CREATE INDEX IF NOT EXISTS changes_by_owner ON ${changes} (owner, seq);`,
    get: `SELECT data FROM ${records} WHERE owner = $1 AND tbl = $2 AND id = $3`,
    create: `WITH ${lock}, w AS (INSERT INTO ${records} (owner, tbl, id, created, modified, data) ${values}
      ON CONFLICT DO NOTHING RETURNING id) ${logPut}`,
    put: `WITH ${lock}, w AS (INSERT INTO ${records} (owner, tbl, id, created, modified, data) ${values}
      ON CONFLICT (owner, tbl, id) DO UPDATE SET created = excluded.created, modified = excluded.modified, data = excluded.data
      RETURNING id) ${logPut}`,
    replace: `WITH ${lock}, w AS (UPDATE ${records} SET created = $4::int8, modified = $5::int8, data = $6::jsonb FROM lock
      WHERE owner = $1 AND tbl = $2 AND id = $3::text RETURNING id) ${logPut}`,
    delete: `WITH ${lock}, w AS (DELETE FROM ${records} USING lock WHERE owner = $1 AND tbl = $2 AND id = $3 RETURNING id, data),
      c AS (INSERT INTO ${changes} (owner, tbl, id, op, at) SELECT $1, $2, id, 'delete', $4::int8 FROM w) SELECT data FROM w`,
    drop: `WITH ${lock}, w AS (DELETE FROM ${records} USING lock WHERE owner = $1 AND tbl = $2 RETURNING id),
      c AS (INSERT INTO ${changes} (owner, tbl, id, op, at) SELECT $1, $2, id, 'delete', $3::int8 FROM w) SELECT count(*) FROM w`,
    listTables: `SELECT tbl, count(*) FROM ${records} WHERE owner = $1 GROUP BY tbl ORDER BY tbl`,
    usage: `SELECT count(*)::int8, coalesce(sum(octet_length(data::text)), 0)::int8 FROM ${records} WHERE owner = $1`,
    changes: `SELECT seq, tbl AS "table", id, op, at FROM ${changes} WHERE owner = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
  };
}
