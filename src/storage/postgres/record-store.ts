import { createHash } from 'node:crypto';
import pg from 'pg';
import { FreeholdError } from '../../core/errors.js';
import { socketsUsing, type StoreConnectOptions } from '../connect.js';
import { asSentText, compilePostgres, compilePostgresOrder, encodeText, fromJsonb, jsonbToJson, postgresArrayRange, postgresIndexedExpression, postgresValueExpression, toJsonb } from '../../query/postgres.js';
import type { ArraysAt } from '../../query/condition-compiler.js';
import { comparedJsonPaths, pathKey } from '../../query/compared-paths.js';
import { PATH_SEGMENT } from '../../query/validate.js';
import type { Condition, FieldPath, QueryOptions } from '../../query/types.js';
import type { BatchOp, Change, RecordStore, RecordUpdate, StoredRecord } from '../types.js';
import { DDL_LOCK, quoteIdent, statements, systemChannel, type Statements } from './sql.js';
import { ChangeListener } from './change-listener.js';
import { parsePostgresUrl, type PostgresOptions } from './url.js';
import { SharedConnection } from './shared-connection.js';
import { StatementNames } from './statement-names.js';
import { WriteQueue, type Combiner, type Statement } from './write-queue.js';
import { inTransaction } from './transaction.js';

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
 *   - Call order: writes issued together apply in the order they were called. The
 *     per-owner WriteQueue keeps it, and commits the writes that pile up behind an
 *     in-flight one as one pipelined transaction: one round trip and one commit for
 *     the group (write-queue.ts). Creates, updates and puts queued next to each other
 *     in a group (a batch's too) go as one statement (sql.ts, …Many), each answered as
 *     if alone.
 * Connections are pipelined (pg's `pipeline` mode): a group, or a batch, goes out
 * in one socket write, though a pooled connection still serves one caller at a
 * time. Point reads (`get`, which every request makes to check its token) skip the
 * pool: they share one more connection, batched per event-loop turn
 * (shared-connection.ts). Queries share another, so a token check never waits
 * behind a 50-record page; while a slow query holds that one up, queries go to the
 * pool. Writes never go to either, as a commit waiting on its WAL flush would hold
 * up every read behind it. Queries and counts are named statements (one per query
 * shape, statement-names.ts), so a connection parses and plans each shape once.
 */

const { Pool } = pg;
/** Background ANALYZE after this many writes, then after twice as many more, and so on. */
const FIRST_ANALYZE_AFTER = 1000;
const ANALYZE_DELAY_MS = 1000;
const MAX_INDEX_FIELDS = 8;
const DEFAULT_ORDER = 'modified DESC, id ASC';
/** How old indexLeads may be before a query comparing an unknown path reads them again. */
const INDEX_LEADS_RECHECK_MS = 5000;
/**
 * How long a query that found an array in a guarded path sends the next ones on that
 * path straight to the two-armed statement (one round trip instead of two), and how
 * many such (scope, path) pairs are remembered.
 */
const ARRAYS_SEEN_MS = 60_000;
const ARRAYS_SEEN = 10_000;

/** Paths whose guard texts are kept (arraySplit); apps query a few fields each. */
const PATH_PROBES = 256;
/** The second column of each index on the records table ($1) whose first is scope, as printed. */
const INDEX_LEADS = `SELECT pg_get_indexdef(i.indexrelid, 2, true) FROM pg_index i
  WHERE i.indrelid = to_regclass($1) AND i.indnatts >= 2 AND pg_get_indexdef(i.indexrelid, 1, true) = 'scope'`;

/** arraySplit's answer: the guard, the guarded paths' keys, and the arraysAt that leaves them bare. */
interface ArraySplit {
  guard: string;
  keys: ReadonlySet<string>;
  arraysAt: ArraysAt;
}

/**
 * Queries go to the pool while the shared query connection has gone this long without
 * an answer. An indexed page takes ~0.1 ms, so even a few dozen queued ones answer
 * well within it; what goes past it is a slow query.
 */
const QUERY_STALL_MS = 20;
/** PostgreSQL's program_limit_exceeded: a btree entry over ~2.7 kB (a huge value in an indexed field). */
const PG_LIMIT_EXCEEDED = '54000';
/** Bytes of `"_id":`, `,"_date_created":`, `,"_date_modified":`, two 16-digit dates, commas and braces, rounded up. */
const UPDATE_OVERHEAD = 80;
const PG_UNIQUE_VIOLATION = '23505';
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

/**
 * Settings of every session this store opens. No JIT: CEPS statements are short, and
 * PostgreSQL's JIT compiles a large WHERE clause for seconds to minutes, during which
 * the backend ignores cancel and terminate requests (an audit kept one busy for 30
 * minutes with one query of ~2,700 conditions, before the 200-condition cap on GET
 * queries). An `options` parameter in the connection string takes precedence.
 */
const SESSION_OPTIONS = '-c jit=off';

export class PostgresRecordStore implements RecordStore {
  readonly kind = 'postgres';
  private pool: pg.Pool | null = null;
  /** Point reads (get): one pipelined connection beside the pool (shared-connection.ts). */
  private reads: SharedConnection | null = null;
  /** Queries: one more, apart from point reads so a token check never waits behind a query. */
  private queries: SharedConnection | null = null;
  private starting: Promise<void> | null = null;
  /** Hears other connections' changes to system records: the change stamp (change-listener.ts). */
  private systemChanges: ChangeListener | null = null;
  private readonly options: PostgresOptions;
  private readonly sql: Statements;
  private readonly writes = new WriteQueue(() => this.db(), translate, this.combiner());
  /** Names for query and count texts, so each connection parses and plans a query shape once. */
  private readonly names = new StatementNames();
  /**
   * The expressions the records indexes lead with after scope, as pg_get_indexdef prints
   * them (postgresIndexedExpression): the JSON paths arraySplit can guard with an index
   * seek. Read at start and after ensureIndex; read again in the background (at most
   * every few seconds) when a query compares a path not among them, since another process
   * may have made an index. Queries never wait for it: pg_get_indexdef waits for any lock
   * on the table, and until it answers the set they use only costs some the guard.
   */
  private indexLeads = new Set<string>();
  private indexLeadsReadAt = 0;
  private indexLeadsReading: Promise<void> | null = null;
  private readonly pathProbes = new Map<string, { indexed: string; seek: string }>();
  /** Until when a guarded path (by scope and pathKey) is taken to hold arrays: see queryArray. */
  private readonly arraysAt = new Map<string, number>();
  private analyzeEvery = FIRST_ANALYZE_AFTER;
  private writesUntilAnalyze = FIRST_ANALYZE_AFTER;
  private analyzeTimer: NodeJS.Timeout | null = null;
  private analyzing: Promise<void> | null = null;

  /** Settings every connection of this store starts from (pool, shared connections, listener). */
  private readonly clientBase: pg.ClientConfig;

  /**
   * `url` is a postgres:// or postgresql:// URL, with optional `pool` and `schema`
   * parameters; `connect`, how its connections resolve the server's name.
   */
  constructor(url: string, connect: StoreConnectOptions = {}) {
    this.options = parsePostgresUrl(url);
    this.sql = statements(this.options.schema);
    this.clientBase = { connectionString: this.options.connectionString, ...(connect.lookup ? { stream: socketsUsing(connect.lookup) } : {}) };
  }

  async init(): Promise<void> {
    if (this.pool) return;
    this.starting ??= this.start().finally(() => (this.starting = null));
    await this.starting;
  }

  private async start(): Promise<void> {
    const pool = new Pool({ ...this.clientBase, options: SESSION_OPTIONS, max: this.options.poolSize, types, pipeline: true });
    // An idle client whose connection drops emits 'error' on the pool; without a listener
    // that would crash the process. The pool discards the client; the next query reconnects.
    pool.on('error', () => {});
    try {
      const { rows } = await pool.query<[boolean]>({ text: this.sql.installed, values: this.sql.installedNames, rowMode: 'array' });
      if (!rows[0]![0]) {
        await inTransaction(pool, async (c) => {
          // Concurrent CREATE … IF NOT EXISTS can still fail on a catalog unique index; the lock makes
          // concurrent init() calls (several processes starting at once) take turns.
          await c.query('SELECT pg_advisory_xact_lock($1, 0)', [DDL_LOCK]);
          if (this.options.schema) await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.options.schema)}`);
          await c.query(this.sql.schema);
        }).catch((error: unknown) => {
          throw privilegeHint(error, 'create its tables', 'Start freehold once as a role that may create them (the database owner), then run it as this one');
        });
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
    this.pool = pool;
    this.reads = new SharedConnection({ ...this.clientBase, options: SESSION_OPTIONS, types });
    this.queries = new SharedConnection({ ...this.clientBase, options: SESSION_OPTIONS, types }, true);
    this.systemChanges = new ChangeListener(this.clientBase, systemChannel(this.options.schema));
    await this.systemChanges.start();
    await this.readIndexLeads();
  }

  async close(): Promise<void> {
    // Queued writes were promised: let them finish first.
    await this.writes.drain();
    if (this.analyzeTimer) clearTimeout(this.analyzeTimer);
    this.analyzeTimer = null;
    await this.analyzing;
    const pool = this.pool;
    const shared = [this.reads, this.queries, this.systemChanges];
    this.pool = null;
    this.reads = null;
    this.queries = null;
    this.systemChanges = null;
    await Promise.all(shared.map((c) => c?.close()));
    await pool?.end();
  }

  /** Writes (a batch: each of its records) that committed combined with others into one statement (tests). */
  get combinedWrites(): number {
    return this.writes.combined;
  }

  async create(owner: string, table: string, record: StoredRecord): Promise<void> {
    const statement = combinable(this.recordWrite('fh_create', this.sql.create, owner, table, record), 'create', table);
    await this.write(owner, 1, [statement], ([r]) => {
      if (r!.rowCount === 0) throw conflict(record._id, table);
    });
  }

  async get(owner: string, table: string, id: string): Promise<StoredRecord | null> {
    const text = await this.getText(owner, table, id);
    return text === null ? null : fromJsonb<StoredRecord>(text);
  }

  /**
   * Moves when any connection, in any process, commits an update or deletion of a
   * system record (the trigger in sql.ts), which is all its user, the token cache,
   * needs: it keeps only rows it found. Undefined while not listening.
   */
  changeStamp(): number | undefined {
    return this.systemChanges?.current();
  }

  /** The record as JSON text, without a parse and a re-serialise (CEPS reads). */
  async getJson(owner: string, table: string, id: string): Promise<string | null> {
    const text = await this.getText(owner, table, id);
    return text === null ? null : jsonbToJson(text);
  }

  private async getText(owner: string, table: string, id: string): Promise<string | null> {
    const { rows } = await this.reader().query<[string]>({ name: 'fh_get', text: this.sql.get, values: [owner, table, id], rowMode: 'array' });
    return rows.length === 0 ? null : rows[0]![0];
  }

  async replace(owner: string, table: string, record: StoredRecord): Promise<boolean> {
    return this.write(owner, 1, [this.recordWrite('fh_replace', this.sql.replace, owner, table, record)], ([r]) => r!.rowCount !== 0);
  }

  /**
   * One statement (sql.ts, updateOf) instead of a read and a write: one round trip, and
   * the stored record is neither sent here nor parsed. Records within a few bytes of
   * `maxBytes`, by the store's rough count, are left to the caller's exact path.
   */
  async update(owner: string, table: string, id: string, change: RecordUpdate): Promise<{ _date_created: number; _date_modified: number } | null> {
    const plain = JSON.stringify(change.fields);
    // What the new record adds to `base` at most: the fields (counted as the limit counts
    // them, before any encoding), then the id and two dates of up to 16 digits with their keys.
    const budget = change.maxBytes - Buffer.byteLength(plain) - Buffer.byteLength(JSON.stringify(id)) - UPDATE_OVERHEAD;
    if (budget < 0) return null;
    const values: unknown[] = [owner, table, id, toJsonb(change.fields, plain), change.modified, budget, Date.now()];
    let statement: Statement;
    let kind: string;
    if (change.keep === 'all') {
      statement = { name: 'fh_update_merge', text: this.sql.updateMerge, values, rowMode: 'array' };
      kind = 'update-merge';
    } else {
      const keep = change.keep.map(encodeText);
      values.push(keep);
      statement = { name: 'fh_update_keep', text: this.sql.updateKeep, values, rowMode: 'array' };
      // Combined updates share one list of kept fields (a CEPS update's is always the same).
      kind = `update-keep:${JSON.stringify(keep)}`;
    }
    statement.combine = { kind, key: rowKey(table, id), bytes: (values[3] as string).length };
    return this.write(owner, 1, [statement], ([r]) => {
      const row = (r!.rows as Array<[number, number]>)[0];
      return row ? { _date_created: row[0], _date_modified: row[1] } : null;
    });
  }

  async put(owner: string, table: string, record: StoredRecord): Promise<void> {
    await this.write(owner, 1, [this.recordWrite('fh_put', this.sql.put, owner, table, record)], () => undefined);
  }

  async delete(owner: string, table: string, id: string): Promise<StoredRecord | null> {
    return this.write(owner, 1, [this.deleteWrite(owner, table, id)], ([r]) => {
      const rows = r!.rows as Array<[string]>;
      return rows.length === 0 ? null : fromJsonb<StoredRecord>(rows[0]![0]);
    });
  }

  /**
   * Finds and rewrites the matches in one transaction, in its place in the owner's write
   * order (RecordStore.updateWhere): the owner's lock first, so the matches are read
   * after every write before it committed, and locked (FOR UPDATE) against writers that
   * do not take the owner's lock. A record `build` refuses (too large) rolls back all.
   */
  async updateWhere(owner: string, table: string, where: Condition, limit: number, build: (stored: StoredRecord) => StoredRecord): Promise<number | null> {
    return this.exclusive(owner, async (c) => {
      const records = (await this.lockMatches(c, owner, table, where, limit, 'data')).map((d) => build(fromJsonb<StoredRecord>(d)));
      // Sent together (the connection pipelines them): one round trip for the lot.
      const written = await Promise.all(records.map((r) => c.query(this.recordWrite('fh_replace', this.sql.replace, owner, table, r))));
      return written.length;
    });
  }

  /** Finds and deletes the matches in one transaction, as updateWhere does (RecordStore.deleteWhere). */
  async deleteWhere(owner: string, table: string, where: Condition, limit: number): Promise<number | null> {
    return this.exclusive(owner, async (c) => {
      const ids = await this.lockMatches(c, owner, table, where, limit, 'id');
      const deleted = await Promise.all(ids.map((id) => c.query(this.deleteWrite(owner, table, id))));
      return deleted.filter((r) => r.rows.length > 0).length;
    });
  }

  /** Inside an exclusive write: takes the owner's lock, then selects and row-locks up to `limit` matches. */
  private async lockMatches(c: pg.PoolClient, owner: string, table: string, where: Condition, limit: number, column: 'data' | 'id'): Promise<string[]> {
    await c.query({ name: 'fh_owner_lock', text: this.sql.ownerLock, values: [owner] });
    const params: unknown[] = [scopeOf(owner, table)];
    // FOR UPDATE takes no UNION: the guard is asked first, in this transaction, under the owner's lock.
    const split = this.arraySplit(where);
    const arrays = split && (await c.query<[boolean]>({ name: this.names.of(`SELECT ${split.guard}`), text: `SELECT ${split.guard}`, values: params, rowMode: 'array' })).rows[0]![0];
    const cond = compilePostgres(where, 'data', params, split && !arrays ? split.arraysAt : undefined);
    params.push(limit);
    const text = `SELECT ${column} FROM ${this.sql.records} WHERE scope = $1 AND ${cond} LIMIT $${params.length} FOR UPDATE`;
    const { rows } = await c.query<[string]>({ name: this.names.of(text), text, values: params, rowMode: 'array' });
    return rows.map((r) => r[0]);
  }

  async query(owner: string, table: string, where: Condition, options: QueryOptions): Promise<StoredRecord[]> {
    return fromJsonb<StoredRecord[]>(await this.queryArray(owner, table, where, options));
  }

  async queryJson(owner: string, table: string, where: Condition, options: QueryOptions): Promise<string> {
    return jsonbToJson(await this.queryArray(owner, table, where, options));
  }

  /**
   * The matching records, in order, as one JSON array in jsonb's text. PostgreSQL joins
   * them: one row to receive instead of one per record halved the driver's share of a
   * 50-record page (~75 → ~50 µs of Node CPU per query). The aggregate sorts its
   * input by the page's own (total) order rather than trusting it to arrive in the
   * subquery's order, which PostgreSQL documents as usual, not guaranteed; the page
   * passes on the columns that order reads.
   */
  private async queryArray(owner: string, table: string, where: Condition, options: QueryOptions): Promise<string> {
    const split = this.arraySplit(where);
    const scope = scopeOf(owner, table);
    if (split && !this.arraysSeen(scope, split)) {
      // The usual case: no array in the guarded fields. The bare page and the guard, in one
      // snapshot; only if the guard finds an array is the page asked again, with both arms.
      const { text, values } = this.pageStatement(owner, table, where, options, 'bare', split);
      const { rows } = await this.queryConnection().query<[boolean, string]>({ name: this.names.of(text), text, values, rowMode: 'array' });
      if (!rows[0]![0]) return rows[0]![1];
      this.sawArrays(scope, split);
    }
    const { text, values } = this.pageStatement(owner, table, where, options, split ? 'arms' : 'plain', split);
    const { rows } = await this.queryConnection().query<[string]>({ name: this.names.of(text), text, values, rowMode: 'array' });
    return rows[0]![0];
  }

  /**
   * queryArray's statements (apart, so tests can read their plans). `plain`: no guarded
   * path, array branches where the paths need them. With a guard (arraySplit): `bare`
   * answers the guard's value beside the page compiled without the guarded paths' array
   * branches (right when the guard is false); `arms` runs one of two arms, which
   * PostgreSQL picks by evaluating the uncorrelated guard once and skipping the arm it
   * rules out ("One-Time Filter"), each stopping at skip + limit so the bare arm keeps its
   * index-ordered, early-stopping plan. `known`: arraySplit(where), when the caller has it.
   */
  private pageStatement(owner: string, table: string, where: Condition, options: QueryOptions, mode: 'plain' | 'bare' | 'arms',
    known?: ArraySplit | null): { text: string; values: unknown[] } {
    const params: unknown[] = [scopeOf(owner, table)];
    const split = mode === 'plain' ? null : (known === undefined ? this.arraySplit(where) : known);
    if (mode !== 'plain' && !split) throw new Error('A guarded page needs a guarded path');
    const cond = mode === 'bare' ? '' : compilePostgres(where, 'data', params);
    const bare = split ? compilePostgres(where, 'data', params, split.arraysAt) : '';
    let order = compilePostgresOrder(options.sort, 'data') || DEFAULT_ORDER;
    // A total order makes skip/limit pages stable; SQLite leaves such ties unspecified.
    if (!options.sort.some((k) => k.path.length === 1 && k.path[0] === '_id') && options.sort.length > 0) order += ', id ASC';
    params.push(options.limit, options.skip);
    const n = params.length;
    const [limit, skip] = [`$${n - 1}`, `$${n}`];
    const select = (c: string): string => `SELECT body, data, id, created, modified FROM ${this.sql.records} WHERE scope = $1 AND ${c} ORDER BY ${order}`;
    const page = split && mode === 'arms'
      ? `SELECT * FROM ((${select(`${bare} AND NOT ${split.guard}`)} LIMIT ${limit}::int8 + ${skip}::int8) UNION ALL ` +
        `(${select(`${cond} AND ${split.guard}`)} LIMIT ${limit}::int8 + ${skip}::int8)) arms ORDER BY ${order} LIMIT ${limit} OFFSET ${skip}`
      : `${select(mode === 'bare' ? bare : cond)} LIMIT ${limit} OFFSET ${skip}`;
    const guard = split && mode === 'bare' ? `${split.guard}, ` : '';
    const text = `SELECT ${guard}'[' || coalesce(string_agg(body, ',' ORDER BY ${order}), '') || ']' FROM (${page}) page`;
    return { text, values: params };
  }

  /** Whether a guarded path of `split` was seen holding an array in `scope` lately (then queries go straight to the arms). */
  private arraysSeen(scope: string, split: ArraySplit): boolean {
    const now = performance.now();
    for (const key of split.keys) {
      const until = this.arraysAt.get(`${scope}\u0000${key}`);
      if (until !== undefined && until > now) return true;
    }
    return false;
  }

  private sawArrays(scope: string, split: ArraySplit): void {
    if (this.arraysAt.size >= ARRAYS_SEEN) this.arraysAt.clear();
    for (const key of split.keys) this.arraysAt.set(`${scope}\u0000${key}`, performance.now() + ARRAYS_SEEN_MS);
  }

  async count(owner: string, table: string, where: Condition): Promise<number> {
    const params: unknown[] = [scopeOf(owner, table)];
    const split = this.arraySplit(where);
    const cond = compilePostgres(where, 'data', params);
    const bare = split && compilePostgres(where, 'data', params, split.arraysAt);
    const count = (c: string): string => `SELECT count(*) FROM ${this.sql.records} WHERE scope = $1 AND ${c}`;
    const text = split && bare ? `SELECT (${count(`${bare} AND NOT ${split.guard}`)}) + (${count(`${cond} AND ${split.guard}`)})` : count(cond);
    const { rows } = await this.db().query<[number]>({ name: this.names.of(text), text, values: params, rowMode: 'array' });
    return rows[0]![0];
  }

  async batch(owner: string, ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return;
    const statements = ops.map((op): Statement => {
      switch (op.kind) {
        case 'create':
          return combinable(this.recordWrite('fh_create_strict', this.sql.createStrict, owner, op.table, op.record), 'create-strict', op.table);
        case 'put':
          return combinable(this.recordWrite('fh_put', this.sql.put, owner, op.table, op.record), 'put', op.table);
        case 'delete':
          return this.deleteWrite(owner, op.table, op.id);
        default:
          throw new FreeholdError('bad_request', `Unknown batch op ${JSON.stringify((op as { kind: unknown }).kind)}`);
      }
    });
    // The statements run back to back in one transaction, so the batch is all or nothing.
    await this.write(owner, ops.length, statements, () => undefined);
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
    const qualified = this.options.schema ? `${quoteIdent(this.options.schema)}.${name}` : name;
    // Already there (every app indexing these fields shares it): nothing to do, and nothing a role
    // that does not own the table may not do.
    const { rows } = await this.db().query<[boolean]>({ text: 'SELECT to_regclass($1) IS NOT NULL', values: [qualified], rowMode: 'array' });
    if (rows[0]![0]) return this.rereadIndexLeads(); // made by another process, maybe since this one read them
    const create = `CREATE INDEX IF NOT EXISTS ${name} ON ${this.sql.records} (scope, ${exprs.join(', ')})`;
    await inTransaction(this.db(), async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, 1)', [DDL_LOCK]);
      await c.query(create);
    }).catch((error: unknown) => {
      throw privilegeHint(error, `create the index an app declares (${name})`, `Run as the table's owner: ${create}`);
    });
    await this.rereadIndexLeads(); // the queries from now on are guarded for this one
    this.analyzeSoon(); // statistics for the new expressions
  }

  /**
   * For the paths of `where` that an index leads with: a guard that is true when some
   * record of the (owner, table) in $1 holds a non-empty array at one of them (an index
   * seek each), and the arraysAt that compiles their leaves bare, for when it is false.
   * Null when no compared path is indexed (the array branches cost nothing extra then:
   * no index plan to lose). Paths off any index keep their array branches either way.
   */
  private arraySplit(where: Condition): ArraySplit | null {
    const paths = comparedJsonPaths(where);
    if (paths.size === 0) return null;
    const keys = new Set<string>();
    const seeks: string[] = [];
    for (const [key, path] of paths) {
      const probe = this.pathProbe(key, path);
      if (this.indexLeads.has(probe.indexed)) {
        keys.add(key);
        seeks.push(probe.seek);
      } else if (performance.now() - this.indexLeadsReadAt > INDEX_LEADS_RECHECK_MS) {
        void this.readIndexLeads().catch(() => undefined);
      }
    }
    if (seeks.length === 0) return null;
    return { guard: seeks.length === 1 ? seeks[0]! : `(${seeks.join(' OR ')})`, keys, arraysAt: (path) => !keys.has(pathKey(path)) };
  }

  /** Per JSON path (by pathKey): its indexed expression as printed, and its guard's seek; made once. */
  private pathProbe(key: string, path: FieldPath): { indexed: string; seek: string } {
    let probe = this.pathProbes.get(key);
    if (!probe) {
      const range = postgresArrayRange(postgresValueExpression(path, 'data'));
      probe = { indexed: postgresIndexedExpression(path), seek: `EXISTS(SELECT 1 FROM ${this.sql.records} WHERE scope = $1 AND ${range})` };
      if (this.pathProbes.size >= PATH_PROBES) this.pathProbes.clear();
      this.pathProbes.set(key, probe);
    }
    return probe;
  }

  /** Reads indexLeads anew: after any read in flight, which may have begun before a change. */
  private async rereadIndexLeads(): Promise<void> {
    await this.indexLeadsReading?.catch(() => undefined);
    await this.readIndexLeads();
  }

  /** Reads indexLeads (one read at a time). */
  private readIndexLeads(): Promise<void> {
    this.indexLeadsReadAt = performance.now();
    this.indexLeadsReading ??= this.db()
      .query<[string]>({ name: 'fh_index_leads', text: INDEX_LEADS, values: [this.sql.records], rowMode: 'array' })
      .then(({ rows }) => { this.indexLeads = new Set(rows.map((r) => r[0])); })
      .finally(() => { this.indexLeadsReading = null; });
    return this.indexLeadsReading;
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
    const drop: Statement = { name: 'fh_drop', text: this.sql.drop, values: [owner, table, Date.now()], rowMode: 'array' };
    return this.write(owner, 1, [drop], ([r]) => (r!.rows as Array<[number]>)[0]![0]);
  }

  // --- writes: built here, committed in order by the owner's queue ---

  /** A create, put or replace: each takes (owner, table, id, created, modified, data, at). */
  private recordWrite(name: string, text: string, owner: string, table: string, r: StoredRecord): Statement {
    return { name, text, values: [owner, table, ...columns(r), Date.now()] };
  }

  /**
   * Creates, updates and a batch's puts and creates queued together go as one statement
   * each (sql.ts, …Many): for small records most of PostgreSQL's work per write is the
   * statement itself, not the row.
   */
  private combiner(): Combiner {
    return {
      combine: (statements) => {
        const values = (i: number) => statements.map((s) => s.values[i]);
        const jsonArray = (i: number) => `[${values(i).join(',')}]`;
        const owner = statements[0]!.values[0];
        const kind = statements[0]!.combine!.kind;
        // A create's or put's values: owner, table, id, created, modified, data, at (recordWrite).
        const inserts = { 'create': ['fh_create_many', this.sql.createMany], 'create-strict': ['fh_create_strict_many', this.sql.createStrictMany], 'put': ['fh_put_many', this.sql.putMany] } as const;
        if (kind in inserts) {
          const [name, text] = inserts[kind as keyof typeof inserts];
          return { name, text, values: [owner, values(1), values(2), values(3), values(4), jsonArray(5), values(6)], rowMode: 'array' };
        }
        // An update's: owner, table, id, fields, modified, budget, at[, kept fields] (update).
        const shared = [owner, values(1), values(2), jsonArray(3), values(4), values(5), values(6)];
        return kind === 'update-merge'
          ? { name: 'fh_update_merge_many', text: this.sql.updateMergeMany, values: shared, rowMode: 'array' }
          : { name: 'fh_update_keep_many', text: this.sql.updateKeepMany, values: [...shared, statements[0]!.values[7]], rowMode: 'array' };
      },
      // Rows of the combined statement lead with the position (from 1) of the write they answer.
      split: (statements, result) => {
        const answered = new Map((result.rows as unknown[][]).map((row) => [Number(row[0]), row.slice(1)]));
        return statements.map((_, i) => {
          const row = answered.get(i + 1);
          return { ...result, rows: row && row.length > 0 ? [row] : [], rowCount: row ? 1 : 0 };
        });
      },
    };
  }

  private deleteWrite(owner: string, table: string, id: string): Statement {
    return { name: 'fh_delete', text: this.sql.delete, values: [owner, table, id, Date.now()], rowMode: 'array' };
  }

  private write<T>(owner: string, rows: number, statements: Statement[], result: (results: pg.QueryResult[]) => T): Promise<T> {
    this.db();
    this.countWrites(rows);
    return this.writes.run(owner, { statements, result });
  }

  /** Statistics go stale as rows change: ANALYZE after 1000 written, then 2000 more, and so on. */
  private countWrites(rows: number): void {
    this.writesUntilAnalyze -= rows;
    if (this.writesUntilAnalyze <= 0) {
      this.analyzeEvery *= 2;
      this.writesUntilAnalyze = this.analyzeEvery;
      this.analyzeSoon();
    }
  }

  /** An update or delete by query: a transaction of its own, in the owner's write order (write-queue.ts). */
  private async exclusive(owner: string, run: (c: pg.PoolClient) => Promise<number>): Promise<number> {
    this.db();
    const rows = await this.writes.run(owner, { run });
    this.countWrites(rows);
    return rows;
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

  private reader(): SharedConnection {
    if (!this.reads) throw new Error('PostgresRecordStore used before init() or after close()');
    return this.reads;
  }

  /**
   * The shared query connection, unless a slow query (an unindexed filter over a big
   * table) is holding it up: then the pool, so that only the queries already sent
   * behind it wait.
   */
  private queryConnection(): Pick<SharedConnection, 'query'> {
    if (!this.queries) throw new Error('PostgresRecordStore used before init() or after close()');
    return this.queries.stalledFor() < QUERY_STALL_MS ? this.queries : this.db();
  }

  private db(): pg.Pool {
    if (!this.pool) throw new Error('PostgresRecordStore used before init() or after close()');
    return this.pool;
  }
}

/**
 * Marks a create or put (recordWrite) as one the write queue may send with its
 * neighbours of the same `kind` as one statement (the store's combiner).
 */
function combinable(statement: Statement, kind: string, table: string): Statement {
  statement.combine = { kind, key: rowKey(table, String(statement.values[2])), bytes: (statement.values[5] as string).length };
  return statement;
}

/**
 * The row (table, id) names as PostgreSQL will see it, for telling two writes of one row
 * apart from writes of two: table names hold no NUL, and strings differing here only in
 * lone surrogates are one row there.
 */
function rowKey(table: string, id: string): string {
  return asSentText(`${table}\u0000${id}`);
}

/** The SQLSTATE of a driver error, if it is one. */
function pgCode(error: unknown): unknown {
  return error instanceof Error ? (error as { code?: unknown }).code : undefined;
}

/** PostgreSQL's insufficient_privilege, and "must be owner" (reported with it). */
const PG_INSUFFICIENT_PRIVILEGE = '42501';

/** A privilege error with what the operator can do about it; any other error as it is. */
function privilegeHint(error: unknown, what: string, fix: string): unknown {
  if (pgCode(error) !== PG_INSUFFICIENT_PRIVILEGE) return error;
  return new Error(`The PostgreSQL role may not ${what}: ${(error as Error).message}. ${fix}.`, { cause: error });
}

function conflict(id: string, table: string): FreeholdError {
  return new FreeholdError('conflict', `A record with id ${id} already exists in ${table}`);
}

/** Driver errors the caller should see as domain errors; record writes name (owner, table, id) in $1..$3. */
function translate(error: unknown, statement: Statement | undefined): unknown {
  const code = pgCode(error);
  if (code === PG_LIMIT_EXCEEDED) {
    return new FreeholdError('too_large', 'A value in an indexed field is too large to index (about 2.7 kB at most)');
  }
  // Only a batch's strict create can meet the primary key: every other write tolerates an existing row.
  if (code === PG_UNIQUE_VIOLATION && statement?.name === 'fh_create_strict') {
    return conflict(String(statement.values[2]), String(statement.values[1]));
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
