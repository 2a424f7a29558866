import { dirname } from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { FreeholdError } from '../../core/errors.js';
import { compileSqlite, compileSqliteOrder, sqliteArrayProbe, sqliteValueExpression } from '../../query/sqlite.js';
import type { ArraysAt } from '../../query/condition-compiler.js';
import { comparedJsonPaths, pathKey } from '../../query/compared-paths.js';
import { PATH_SEGMENT } from '../../query/validate.js';
import type { Condition, FieldPath, QueryOptions } from '../../query/types.js';
import type { BatchOp, Change, RecordStore, RecordUpdate, StoredRecord } from '../types.js';
import { jsonOverBytes } from '../record-json.js';
import { makeDirs } from '../make-dirs.js';
import { atTurnEnd } from '../../turn-end.js';
import { defaultCheckpointer, type Checkpointer, type CheckpointRegistration } from './checkpointer.js';
import { QueryOffload, type QueryOffloadOptions, type Recheck } from './query-offload.js';

/**
 * The default record backend: one SQLite file, one physical `records` table for
 * every (owner, app table). Each record is stored whole as JSON text in `data`
 * (so `get` returns exactly what was stored, reserved fields included); `id`,
 * `created` and `modified` duplicate the reserved fields as real columns so that
 * lookups, the default newest-first order and date filters use plain indexes.
 *
 * Every write and its `changes` row commit in one transaction, so the change feed
 * never misses or invents a write. better-sqlite3 is synchronous; the async methods
 * simply wrap it (a single SQLite connection serialises writes anyway, and a
 * statement on a local file is faster than a thread hop).
 */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  owner    TEXT    NOT NULL,
  tbl      TEXT    NOT NULL,
  id       TEXT    NOT NULL,
  created  INTEGER NOT NULL,
  modified INTEGER NOT NULL,
  data     TEXT    NOT NULL,
  PRIMARY KEY (owner, tbl, id)
);
CREATE INDEX IF NOT EXISTS records_by_modified ON records (owner, tbl, modified DESC, id);
CREATE TABLE IF NOT EXISTS changes (
  seq   INTEGER PRIMARY KEY, -- no AUTOINCREMENT: change rows are never deleted, so seq only grows, without a sqlite_sequence write per change
  owner TEXT    NOT NULL,
  tbl   TEXT    NOT NULL,
  id    TEXT    NOT NULL,
  op    TEXT    NOT NULL,
  at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_owner ON changes (owner, seq);
`;

/** Ad-hoc query statements kept prepared; queries from one app repeat the same shapes. */
const STATEMENT_CACHE_SIZE = 200;
const MAX_INDEX_FIELDS = 8;
const DEFAULT_ORDER = 'modified DESC, id ASC';
/**
 * With its limit bound as a bare `?`, SQLite (3.53 here) prepares a statement again at
 * every run, since the limit's value may change its plan: ~7 µs a run measured
 * in-process, against ~45 µs for a whole 50-record page, and more under load. Behind a
 * unary plus the value is an expression the planner leaves alone; the plans of every
 * query shape we tried are unchanged.
 */
const LIMIT_OFFSET = 'LIMIT +? OFFSET +?';

interface WriteJob {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  result?: { ok: true; value: unknown } | { ok: false; error: unknown };
}

interface Statements {
  insert: Database.Statement;
  update: Database.Statement;
  upsert: Database.Statement;
  get: Database.Statement;
  delete: Database.Statement;
  change: Database.Statement;
  listTables: Database.Statement;
  usage: Database.Statement;
  changes: Database.Statement;
  dropChanges: Database.Statement;
  drop: Database.Statement;
  totalChanges: Database.Statement;
  dataVersion: Database.Statement;
  begin: Database.Statement;
  commit: Database.Statement;
}

export class SqliteRecordStore implements RecordStore {
  readonly kind = 'sqlite';
  private db: Database.Database | null = null;
  private s!: Statements;
  private readonly cache = new Map<string, Database.Statement>();
  /** Runs a list of writes in one transaction, each in its own savepoint. */
  private txGroup!: (jobs: WriteJob[]) => void;
  /** Inside txGroup this is a SAVEPOINT: a failing write rolls back only itself. */
  private txOne!: (run: () => unknown) => unknown;
  private pending: WriteJob[] = [];
  private flushScheduled = false;
  /** This file's place in the checkpoint worker's care; null for ':memory:' and once closed. */
  private checkpoints: CheckpointRegistration | null = null;
  /** Hands queries to a second thread on a busy server (query-offload.ts); null for ':memory:' or when turned off. */
  private offload: QueryOffload | null = null;
  /** SQLite total_changes() at the last commit, to tell the checkpointer how much each commit wrote. */
  private totalChanges = 0;
  /** A read transaction is open for the current event-loop turn (reading()). */
  private readTurn = false;
  private readonly endReadTurn = (): void => {
    if (!this.readTurn) return;
    this.readTurn = false;
    this.turnProbes.clear();
    if (this.db?.inTransaction) this.s.commit.run();
  };
  /**
   * The value expressions the records indexes lead with after (owner, tbl): the JSON paths
   * whose arrays arrayPlan can probe with an index seek. Read from the schema when first
   * needed, and again when a query compares a path not among them and the schema has
   * changed since (another process made an index).
   */
  private indexLeads: { schemaVersion: number; leads: Set<string> } | null = null;
  /** Per JSON path (by pathKey): its value expression and its array probe, made once. */
  private readonly pathProbes = new Map<string, { expr: string; sql: string }>();
  /**
   * Array probe answers of this turn's read transaction, by owner, table and path: one
   * snapshot, so one answer (cleared with the transaction, before any write commits).
   */
  private readonly turnProbes = new Map<string, boolean>();
  /** changeStamp()'s value for the current event-loop turn; cleared when the turn ends. */
  private turnStamp: number | undefined;
  private readonly endTurn = (): void => { this.turnStamp = undefined; };

  /** `file` is a path, or ':memory:' for a private in-memory database. */
  /**
   * `durability`: `normal` (default) survives a killed process, and a power loss can
   * drop the last few commits; `full` also fsyncs every commit (power-safe, slower).
   * `checkpointer`: who moves the WAL into the database file (tests pass their own).
   */
  constructor(
    private readonly file: string,
    private readonly durability: 'normal' | 'full' = 'normal',
    private readonly checkpointer: Checkpointer = defaultCheckpointer,
    private readonly queryThread: Partial<QueryOffloadOptions> | false = process.env.FREEHOLD_SQLITE_QUERIES === 'main' ? false : {},
  ) {}

  /** The query thread's state (tests). */
  get queryOffload(): QueryOffload | null {
    return this.offload;
  }

  async init(): Promise<void> {
    if (this.db) return;
    if (this.file !== ':memory:') {
      // A store on this file closing just before must be fully closed, worker side too.
      await this.checkpointer.closed(this.file);
      if (this.db) return; // a concurrent init() got there first
      makeDirs(dirname(this.file));
    }
    const db = new Database(this.file);
    db.pragma('journal_mode = WAL');
    db.pragma(this.durability === 'full' ? 'synchronous = FULL' : 'synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    // Reads straight from the mapped file skip a syscall per page; point reads dominate CEPS traffic.
    db.pragma('mmap_size = 268435456');
    db.pragma('cache_size = -32000');
    db.exec(SCHEMA);
    this.db = db;
    pinPlannerStats(db);
    this.s = {
      insert: db.prepare(
        'INSERT INTO records (owner, tbl, id, created, modified, data) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      update: db.prepare('UPDATE records SET created = ?, modified = ?, data = ? WHERE owner = ? AND tbl = ? AND id = ?'),
      upsert: db.prepare(
        'INSERT INTO records (owner, tbl, id, created, modified, data) VALUES (?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (owner, tbl, id) DO UPDATE SET created = excluded.created, modified = excluded.modified, data = excluded.data',
      ),
      get: db.prepare('SELECT data FROM records WHERE owner = ? AND tbl = ? AND id = ?').pluck(),
      delete: db.prepare('DELETE FROM records WHERE owner = ? AND tbl = ? AND id = ? RETURNING data').pluck(),
      change: db.prepare('INSERT INTO changes (owner, tbl, id, op, at) VALUES (?, ?, ?, ?, ?)'),
      listTables: db.prepare('SELECT tbl AS "table", count(*) AS count FROM records WHERE owner = ? GROUP BY tbl ORDER BY tbl'),
      usage: db.prepare('SELECT count(*) AS records, coalesce(sum(length(CAST(data AS BLOB))), 0) AS bytes FROM records WHERE owner = ?'),
      changes: db.prepare('SELECT seq, tbl AS "table", id, op, at FROM changes WHERE owner = ? AND seq > ? ORDER BY seq LIMIT +?'), // LIMIT_OFFSET says why `+?`
      dropChanges: db.prepare(
        "INSERT INTO changes (owner, tbl, id, op, at) SELECT owner, tbl, id, 'delete', ? FROM records WHERE owner = ? AND tbl = ?",
      ),
      drop: db.prepare('DELETE FROM records WHERE owner = ? AND tbl = ?'),
      totalChanges: db.prepare('SELECT total_changes()').pluck(),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      begin: db.prepare('BEGIN'),
      commit: db.prepare('COMMIT'),
    };
    this.totalChanges = this.s.totalChanges.get() as number;
    // The checkpointer sets this connection's wal_autocheckpoint and journal_size_limit (who trims the WAL file).
    if (this.file !== ':memory:') this.checkpoints = this.checkpointer.register(this.file, db);
    if (this.file !== ':memory:' && this.queryThread !== false) this.offload = new QueryOffload(this.file, this.queryThread);
    this.txOne = db.transaction((run: () => unknown) => run());
    this.txGroup = db.transaction((jobs: WriteJob[]) => {
      for (const job of jobs) {
        try {
          job.result = { ok: true, value: this.txOne(job.run) };
        } catch (error) {
          job.result = { ok: false, error };
        }
      }
    });
  }

  async close(): Promise<void> {
    // Queries handed over are answered first; then the thread's connection closes, so the
    // checkpointer's stays the last one (checkpointer.ts).
    const offload = this.offload;
    this.offload = null;
    await offload?.close();
    this.endReadTurn();
    if (this.db) this.flush(true); // queued writes were promised; commit them first
    this.cache.clear();
    this.db?.close();
    this.db = null;
    this.indexLeads = null;
    const checkpoints = this.checkpoints;
    this.checkpoints = null;
    // With the worker's connection still open, ours was not the last: the worker's, closed
    // now, checkpoints the rest of the WAL and removes it, off the event loop.
    await checkpoints?.close();
  }

  async create(owner: string, table: string, record: StoredRecord): Promise<void> {
    await this.write(() => this.createSync(owner, table, record));
  }

  async get(owner: string, table: string, id: string): Promise<StoredRecord | null> {
    const data = this.reading().s.get.get(owner, table, id) as string | undefined;
    return data === undefined ? null : (JSON.parse(data) as StoredRecord);
  }

  /**
   * SQLite's data_version: it moves when any other connection, in any process, commits
   * to the file. Read once per event-loop turn: every request authorised in one turn
   * shares the value, which a commit elsewhere could only have beaten by the length of
   * that turn (as if it had landed just after). Read alone, it cost a read transaction
   * with its WAL locks, ~4 µs under load, a twentieth of a CEPS read (bench/, README
   * "Performance"); it is read inside the turn's read transaction (reading()).
   */
  changeStamp(): number | undefined {
    if (!this.db) return undefined;
    if (this.turnStamp === undefined) {
      this.turnStamp = this.reading().s.dataVersion.get() as number;
      atTurnEnd(this.endTurn);
    }
    return this.turnStamp;
  }

  /** The record's JSON exactly as stored: reads go out without a parse and a re-serialise. */
  async getJson(owner: string, table: string, id: string): Promise<string | null> {
    return (this.reading().s.get.get(owner, table, id) as string | undefined) ?? null;
  }

  async replace(owner: string, table: string, record: StoredRecord): Promise<boolean> {
    return this.write(() => this.replaceSync(owner, table, record));
  }

  async put(owner: string, table: string, record: StoredRecord): Promise<void> {
    await this.write(() => this.putSync(owner, table, record));
  }

  /**
   * Reads, rebuilds and rewrites the record inside one write transaction, so no other
   * write of it can come between (two merges at once both land), and the update needs
   * no separate read before it is queued.
   */
  async update(owner: string, table: string, id: string, change: RecordUpdate): Promise<{ _date_created: number; _date_modified: number } | null> {
    return this.write(() => {
      const stored = this.s.get.get(owner, table, id) as string | undefined;
      if (stored === undefined) return null;
      const record = change.build(JSON.parse(stored) as StoredRecord);
      const data = serialise(record);
      // Over the limit: the caller's general path measures it again and refuses it.
      if (jsonOverBytes(data, change.maxBytes)) return null;
      this.s.update.run(record._date_created, record._date_modified, data, owner, table, id);
      this.s.change.run(owner, table, id, 'put', Date.now());
      return { _date_created: record._date_created, _date_modified: record._date_modified };
    });
  }

  async delete(owner: string, table: string, id: string): Promise<StoredRecord | null> {
    return this.write(() => this.deleteSync(owner, table, id));
  }

  /** Finds and rewrites the matches inside one write transaction (RecordStore.updateWhere). */
  async updateWhere(owner: string, table: string, where: Condition, limit: number, build: (stored: StoredRecord) => StoredRecord): Promise<number | null> {
    return this.write(() => {
      const records = this.queryRows(owner, table, where, { sort: [], skip: 0, limit }).map((d) => build(JSON.parse(d) as StoredRecord));
      for (const r of records) this.replaceSync(owner, table, r);
      return records.length;
    });
  }

  /** Finds and deletes the matches inside one write transaction (RecordStore.deleteWhere). */
  async deleteWhere(owner: string, table: string, where: Condition, limit: number): Promise<number | null> {
    return this.write(() => {
      const ids = this.queryRows(owner, table, where, { sort: [], skip: 0, limit }, 'id');
      for (const id of ids) this.deleteSync(owner, table, id);
      return ids.length;
    });
  }

  async query(owner: string, table: string, where: Condition, options: QueryOptions): Promise<StoredRecord[]> {
    return this.queryRows(owner, table, where, options).map((d) => JSON.parse(d) as StoredRecord);
  }

  /** The matching records' JSON text (or only their ids), in order. */
  private queryRows(owner: string, table: string, where: Condition, options: QueryOptions, column: 'data' | 'id' = 'data'): string[] {
    const { sql, params } = querySql(owner, table, where, options, column, this.arrayPlan(owner, table, where).arraysAt);
    return this.selectTexts(sql, params);
  }

  private selectTexts(sql: string, params: unknown[]): string[] {
    return this.reading().statement(sql).all(...params) as string[];
  }

  /** A query page as one JSON array; on a busy server, possibly answered by the query thread (query-offload.ts). */
  async queryJson(owner: string, table: string, where: Condition, options: QueryOptions): Promise<string> {
    const page = (): { sql: string; params: unknown[]; recheck: Recheck | null } => {
      const plan = this.arrayPlan(owner, table, where);
      return { ...querySql(owner, table, where, options, 'data', plan.arraysAt), recheck: plan.recheck };
    };
    const inline = ({ sql, params }: { sql: string; params: unknown[] }): string => `[${this.selectTexts(sql, params).join(',')}]`;
    const first = page();
    // Should the thread find an array the plan ruled out (written since), this thread plans again.
    if (this.offload?.wants()) return this.offload.run(first.sql, first.params, first.recheck, () => inline(page()));
    return inline(first);
  }

  async count(owner: string, table: string, where: Condition): Promise<number> {
    const { sql, params } = compileSqlite(where, 'data', this.arrayPlan(owner, table, where).arraysAt);
    const stmt = this.reading().statement(`SELECT count(*) FROM records WHERE owner = ? AND tbl = ? AND ${sql}`);
    return stmt.get(owner, table, ...params) as number;
  }

  /**
   * Which JSON paths of `where` must look into arrays too (compileSqlite's arraysAt): all,
   * except each path an index leads with whose probe (an index seek) finds no array in
   * this (owner, table): those keep the bare, index-served plan. `recheck` is the same
   * probes over those paths, for a thread that runs the query on a later snapshot
   * (truthy: an array has appeared since, plan again). In the caller's read transaction.
   */
  private arrayPlan(owner: string, table: string, where: Condition): { arraysAt: ArraysAt; recheck: Recheck | null } {
    const paths = comparedJsonPaths(where);
    if (paths.size === 0) return { arraysAt: () => true, recheck: null };
    let leads = this.indexedLeads(false);
    const free = new Set<string>();
    const probes: string[] = [];
    for (const [key, path] of paths) {
      const probe = this.pathProbe(key, path);
      if (!leads.has(probe.expr)) leads = this.indexedLeads(true);
      if (!leads.has(probe.expr)) continue;
      if (this.hasArrays(owner, table, key, probe.sql)) continue;
      free.add(key);
      probes.push(probe.sql);
    }
    if (free.size === 0) return { arraysAt: () => true, recheck: null };
    return {
      arraysAt: (path) => !free.has(pathKey(path)),
      recheck: { sql: probes.length === 1 ? probes[0]! : `SELECT ${probes.map((p) => `(${p})`).join(' OR ')}`, params: probes.flatMap(() => [owner, table]) },
    };
  }

  private pathProbe(key: string, path: FieldPath): { expr: string; sql: string } {
    let probe = this.pathProbes.get(key);
    if (!probe) {
      const expr = sqliteValueExpression(path, 'data');
      probe = { expr, sql: `SELECT ${sqliteArrayProbe(expr)}` };
      if (this.pathProbes.size >= STATEMENT_CACHE_SIZE) this.pathProbes.clear();
      this.pathProbes.set(key, probe);
    }
    return probe;
  }

  /** The probe's answer, kept for the rest of the turn when asked in the turn's read transaction. */
  private hasArrays(owner: string, table: string, key: string, sql: string): boolean {
    const inTurn = this.reading().readTurn;
    const turnKey = inTurn ? `${owner}\u0000${table}\u0000${key}` : '';
    const known = inTurn ? this.turnProbes.get(turnKey) : undefined;
    if (known !== undefined) return known;
    const found = Boolean(this.statement(sql).get(owner, table));
    if (inTurn) this.turnProbes.set(turnKey, found);
    return found;
  }

  /** indexLeads' set; `recheck`: read it again if the schema changed since. */
  private indexedLeads(recheck: boolean): Set<string> {
    if (this.indexLeads && !recheck) return this.indexLeads.leads;
    const schemaVersion = this.reading().statement('PRAGMA schema_version').get() as number;
    if (this.indexLeads?.schemaVersion !== schemaVersion) {
      const sqls = this.statement(
        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'records' AND sql IS NOT NULL",
      ).all() as string[];
      this.indexLeads = { schemaVersion, leads: new Set(sqls.flatMap((sql) => INDEX_LEAD.exec(sql)?.[1] ?? [])) };
    }
    return this.indexLeads.leads;
  }

  async batch(owner: string, ops: BatchOp[]): Promise<void> {
    await this.write(() => this.batchSync(owner, ops));
  }

  /**
   * One physical table serves every app table, so an index cannot be partial per
   * table without embedding the table name in SQL; instead it leads with
   * (owner, tbl) and is named by a hash of its expressions, which makes it shared by
   * every table indexing the same fields and makes the call idempotent.
   */
  async ensureIndex(_owner: string, _table: string, fields: string[][]): Promise<void> {
    const db = this.open().db!;
    this.endReadTurn(); // schema changes write: not inside this turn's read transaction
    if (fields.length === 0 || fields.length > MAX_INDEX_FIELDS) {
      throw new FreeholdError('bad_request', `An index needs 1 to ${MAX_INDEX_FIELDS} fields`);
    }
    for (const path of fields) {
      if (path.length === 0 || !path.every((seg) => PATH_SEGMENT.test(seg))) {
        throw new FreeholdError('bad_request', `Invalid index field ${JSON.stringify(path.join('.'))}`);
      }
    }
    const exprs = fields.map((path) => sqliteValueExpression(path, 'data'));
    // Ending in CEPS's default order lets an equality query read its page already sorted
    // and stop at the limit, instead of sorting every match. ('v2' names this layout.)
    const name = 'records_x_' + createHash('sha256').update(JSON.stringify(['v2', ...exprs])).digest('hex').slice(0, 20);
    db.exec(`CREATE INDEX IF NOT EXISTS ${name} ON records (owner, tbl, ${exprs.join(', ')}, modified DESC, id)`);
    pinPlannerStats(db);
    this.offload?.restart();
  }

  async listTables(owner: string): Promise<Array<{ table: string; count: number }>> {
    return this.reading().s.listTables.all(owner) as Array<{ table: string; count: number }>;
  }

  async usage(owner: string): Promise<{ records: number; bytes: number }> {
    return this.reading().s.usage.get(owner) as { records: number; bytes: number };
  }

  async changes(owner: string, sinceSeq: number, limit: number): Promise<Change[]> {
    return this.reading().s.changes.all(owner, sinceSeq, limit) as Change[];
  }

  async dropTable(owner: string, table: string): Promise<number> {
    return this.write(() => {
      this.s.dropChanges.run(Date.now(), owner, table);
      return this.s.drop.run(owner, table).changes;
    });
  }

  /**
   * Group commit. On a disk, the cost of a small write is almost all in committing
   * it (WAL frames, checkpoints), so writes issued in the same event-loop turn (e.g.
   * from concurrent requests) share one transaction; each runs in its own savepoint,
   * so one write failing (a create conflict) affects no other. A write's promise
   * settles only after its transaction commits, and writes apply in call order.
   */
  private write<T>(run: () => T): Promise<T> {
    this.open();
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** `force`: commit now even if the checkpointer holds commits (close()). */
  private flush(force = false): void {
    // The WAL is due to restart: the checkpointer holds commits (not reads) until the
    // worker has caught up, which takes a few ms. Later writes join this queue meanwhile.
    const hold = force ? null : this.checkpoints?.writeHold();
    if (hold) {
      void hold.then(() => this.flush());
      return;
    }
    this.flushScheduled = false;
    const jobs = this.pending;
    this.pending = [];
    if (jobs.length === 0) return;
    // The group commits on the latest data, and reads after it see it.
    this.endReadTurn();
    try {
      if (!this.db) throw new Error('SqliteRecordStore closed before a queued write ran');
      this.txGroup(jobs);
    } catch (error) {
      // The commit itself failed (disk full, lock timeout): nothing was written.
      for (const job of jobs) job.reject(error);
      return;
    }
    if (this.checkpoints) {
      const total = this.s.totalChanges.get() as number;
      this.checkpoints.committed(total - this.totalChanges);
      this.totalChanges = total;
    }
    for (const job of jobs) {
      const r = job.result!;
      if (r.ok) job.resolve(r.value);
      else job.reject(r.error);
    }
  }

  // --- synchronous bodies, always run inside a transaction ---

  private createSync(owner: string, table: string, r: StoredRecord): void {
    const data = serialise(r);
    if (this.s.insert.run(owner, table, r._id, r._date_created, r._date_modified, data).changes === 0) {
      throw new FreeholdError('conflict', `A record with id ${r._id} already exists in ${table}`);
    }
    this.s.change.run(owner, table, r._id, 'put', Date.now());
  }

  private replaceSync(owner: string, table: string, r: StoredRecord): boolean {
    const data = serialise(r);
    if (this.s.update.run(r._date_created, r._date_modified, data, owner, table, r._id).changes === 0) return false;
    this.s.change.run(owner, table, r._id, 'put', Date.now());
    return true;
  }

  private putSync(owner: string, table: string, r: StoredRecord): void {
    this.s.upsert.run(owner, table, r._id, r._date_created, r._date_modified, serialise(r));
    this.s.change.run(owner, table, r._id, 'put', Date.now());
  }

  private deleteSync(owner: string, table: string, id: string): StoredRecord | null {
    const data = this.s.delete.get(owner, table, id) as string | undefined;
    if (data === undefined) return null;
    this.s.change.run(owner, table, id, 'delete', Date.now());
    return JSON.parse(data) as StoredRecord;
  }

  private batchSync(owner: string, ops: BatchOp[]): void {
    for (const op of ops) {
      switch (op.kind) {
        case 'create':
          this.createSync(owner, op.table, op.record);
          break;
        case 'put':
          this.putSync(owner, op.table, op.record);
          break;
        case 'delete':
          this.deleteSync(owner, op.table, op.id);
          break;
        default:
          throw new FreeholdError('bad_request', `Unknown batch op ${JSON.stringify((op as { kind: unknown }).kind)}`);
      }
    }
  }

  private open(): this {
    if (!this.db) throw new Error('SqliteRecordStore used before init() or after close()');
    return this;
  }

  /**
   * Every read runs inside one read transaction per event-loop turn, begun by the
   * turn's first read and committed when the turn ends (atTurnEnd) or before a write. A
   * statement outside a transaction is a transaction of its own, with a lock and an
   * unlock of the WAL index each time (fcntl calls): ~2.5 µs of a ~5 µs point read
   * in-process, more under load; sharing one per turn gave CEPS read at 32
   * connections about +10% (bench/, README "Performance"). The reads of a turn
   * see one snapshot, as requests answered together may; another process's commit
   * shows from the next turn, this process's own writes at once (a group commit
   * ends the read transaction first). A turn is short: the transaction never waits
   * on I/O, so it does not hold back checkpoints.
   */
  private reading(): this {
    if (!this.readTurn && !this.open().db!.inTransaction) {
      this.s.begin.run();
      this.readTurn = true;
      atTurnEnd(this.endReadTurn);
    }
    return this;
  }

  private statement(sql: string): Database.Statement {
    const db = this.open().db!;
    let stmt = this.cache.get(sql);
    if (stmt) {
      // Re-insert to keep the Map in least-recently-used order.
      this.cache.delete(sql);
    } else {
      stmt = db.prepare(sql).pluck();
      if (this.cache.size >= STATEMENT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(sql, stmt);
    return stmt;
  }
}

/**
 * The value expression an index made by ensureIndex leads with after (owner, tbl), in the
 * schema's text of it; JSON paths only (reserved columns never hold arrays).
 */
const INDEX_LEAD = /ON records \(owner, tbl, (json_extract\(data, '[^']*'\))/;

/** A query page's SELECT of one text column, and its parameters. */
function querySql(owner: string, table: string, where: Condition, options: QueryOptions, column: 'data' | 'id', arraysAt: ArraysAt): { sql: string; params: unknown[] } {
  const { sql, params } = compileSqlite(where, 'data', arraysAt);
  const order = compileSqliteOrder(options.sort, 'data') || DEFAULT_ORDER;
  return {
    sql: `SELECT ${column} FROM records WHERE owner = ? AND tbl = ? AND ${sql} ORDER BY ${order} ${LIMIT_OFFSET}`,
    params: [owner, table, ...params, options.limit, options.skip],
  };
}

/** Checks the reserved fields the columns depend on, then serialises the whole record. */
function serialise(r: StoredRecord): string {
  if (typeof r._id !== 'string' || r._id.length === 0) throw new FreeholdError('bad_request', 'Record _id must be a non-empty string');
  if (!Number.isFinite(r._date_created) || !Number.isFinite(r._date_modified)) {
    throw new FreeholdError('bad_request', 'Record _date_created and _date_modified must be numbers');
  }
  return JSON.stringify(r);
}

/**
 * SQLite's planner, without statistics, prefers walking `records_by_modified` (it
 * saves a sort) over an app-declared field index, and so scans a whole table for an
 * equality query. Real ANALYZE statistics would fix that but drift with the data and
 * cost a scan to make; instead we pin fixed statistics that describe the shape every
 * owner's data has: (owner, tbl) selects many rows, a declared field narrows to few.
 * SQLite's docs describe this use of sqlite_stat1 ("fixed results of ANALYZE").
 */
function pinPlannerStats(db: Database.Database): void {
  const indexes = db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'records' AND sql IS NOT NULL",
  ).pluck().all() as string[];
  db.exec('ANALYZE sqlite_schema'); // makes sqlite_stat1 exist
  const hasStat = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").pluck().get();
  if (!hasStat) db.exec('ANALYZE records');
  db.transaction(() => {
    db.prepare("DELETE FROM sqlite_stat1 WHERE tbl = 'records'").run();
    const put = db.prepare("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('records', ?, ?)");
    // Primary key (owner, tbl, id): one row per id.
    put.run('records', '1000000 100000 10000 1');
    for (const name of indexes) {
      // Every records index starts (owner, tbl): many rows each. Past that, a field narrows to
      // ~10 rows and each further column halves it; records_by_modified is (…, modified, id).
      const columns = (db.prepare(`PRAGMA index_info(${JSON.stringify(name)})`).all()).length;
      const stat = [1000000, 100000, 10000];
      for (let i = 2; i < columns; i++) stat.push(Math.max(1, Math.floor(10 / 2 ** (i - 2))));
      put.run(name, stat.join(' '));
    }
  })();
  db.exec('ANALYZE sqlite_schema'); // reloads the statistics into the planner
}
