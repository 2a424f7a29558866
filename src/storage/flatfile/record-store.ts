import { randomBytes } from 'node:crypto';
import { readdir, rename, rm } from 'node:fs/promises';
import { existsSync, linkSync, lstatSync, mkdirSync, realpathSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FreeholdError } from '../../core/errors.js';
import { compareForSort, compareStrings, matches } from '../../query/evaluate.js';
import type { Condition, QueryOptions, SortKey } from '../../query/types.js';
import { PATH_SEGMENT } from '../../query/validate.js';
import type { BatchOp, Change, RecordStore, RecordUpdate, StoredRecord } from '../types.js';
import { makeDirs } from '../make-dirs.js';
import { jsonOverBytes } from '../record-json.js';
import { ChangeLog } from './changelog.js';
import { parseRecord, serializeRecord } from './format.js';
import { PendingSync } from './checkpoint.js';
import { sharedDiskThread, type DiskThread } from './disk-thread.js';
import { DIR_MODE, fsyncDir, isErrno, linkTempSync, listDir, removeLeftovers, replaceWithTempSync, truncateDurably, unlinkIfExistsSync, writeTempSync } from './fsutil.js';
import { buildWriteEntry, frameEntry, readJournals, restoreBefore, rollBackLegacy, rollForward, type DropEntry } from './journal.js';
import { JournalFiles } from './journal-files.js';
import { decodeSegment, encodeSegment, FlatFilePaths, idFromFileName, RECORD_SUFFIX, TRASH_PREFIX } from './paths.js';
import { OCCUPIED, Plan, type PlannedWrite, type WriteChecks } from './plan.js';
import { BackgroundUnlinks, retiredNameFor } from './background-unlink.js';
import { SystemChangeStamp } from './system-stamp.js';
import { lockRoot } from './root-lock.js';
import { SYSTEM_OWNER } from '../../core/system-tables.js';
import { nothingAt, readRecordFile, readRecordOrOccupant, TableCache } from './table-cache.js';

/**
 * Records as plain JSON files, one per record, so an owner can read, grep, edit,
 * back up and leave with their data using ordinary tools. Layout, journal and limits
 * are described in docs/flatfile.md; the pieces:
 *
 *   paths.ts       owner/table/id → one escaped path segment each, never outside the root
 *   format.ts      record file format (pretty JSON) and its validation
 *   plan.ts        deciding a unit of writes in memory before touching disk
 *   journal.ts     write-ahead journal: commit protocol and crash roll-forward
 *   journal-files.ts  the two journal files an owner's units append to in turn
 *   checkpoint.ts  what a checkpoint must fsync before it empties a journal file
 *   changelog.ts   the per-owner `_changes.jsonl` and its seq
 *   table-cache.ts parsed records per table for queries, revalidated against disk
 *   watch.ts       directory watching (inotify) and the barrier that makes it exact
 *   eq-index.ts    in-memory equality indexes that narrow a query's candidates
 *
 * Concurrency. Writes are serialised per owner by an in-process queue (a mutex that
 * also groups): writes issued while a unit is in flight wait, then commit together as
 * the next unit, each decided on its own so one failing write affects no other (the
 * same contract as the SQLite store's group commit). A unit is acknowledged once its
 * journal entry is durable and its files are in place; fsyncing those files happens
 * in a background checkpoint (journal.ts). Readers never see half a unit: a unit's
 * files are put in place synchronously, and readers wait while recovery runs. All of this is
 * in-process only: two processes must not share one flat-file root.
 *
 * Queries take the table's candidates from the cache (every record, or those an
 * equality index leaves), filter with `matches`, sort with `compareForSort`: the
 * reference semantics of the query language, so answers equal SQLite's. A hand edit
 * that completed before a query started is seen by it (table-cache.ts, watch.ts).
 */

/** Jobs and record bytes per unit: bound the journal's size and a unit's latency. */
const MAX_UNIT_JOBS = 256;
const MAX_UNIT_BYTES = 16 * 1024 * 1024;
/** Past this much unflushed work a unit waits for the running checkpoint (bounds the journal and recovery). */
const MAX_PENDING_JOURNAL_BYTES = 64 * 1024 * 1024;
const MAX_PENDING_FILES = 20_000;
/**
 * A checkpoint is due this long after the previous one began, or at once when this
 * many files wait for it. Spacing them out makes each one a single `sync -f` over many
 * files (checkpoint.ts) rather than, back to back, a stream of small ones whose fsyncs
 * and disk-cache flushes queue ahead of the journal's fdatasync, which every write's
 * answer waits for. Nothing waits for a checkpoint but the journal's space: what it
 * covers is durable in the journal already.
 */
const CHECKPOINT_AFTER_MS = 500;
const CHECKPOINT_FILES = 4096;
/**
 * Past this many retired files not yet unlinked, a unit waits until the queue is back
 * under it: a burst of deletes and updates is absorbed, a sustained stream goes at the
 * pace the disk frees files (bounds the queue's memory and the backlog of temp names).
 */
const MAX_PENDING_UNLINKS = 4096;
/** While the disk refuses even recovery, how often to try again. */
const RECOVERY_RETRY_MS = 1000;
const MAX_INDEX_FIELDS = 8;
/** SQLite's default order (`modified DESC, id ASC`), in evaluate.ts terms. */
const DEFAULT_SORT: SortKey[] = [
  { path: ['_date_modified'], direction: -1 },
  { path: ['_id'], direction: 1 },
];
const ID_ASC: SortKey = { path: ['_id'], direction: 1 };
/** The stores open in this process, by their root's real path (quietOthers). */
const openStores = new Map<string, Set<FlatFileRecordStore>>();

interface Job {
  /** Decides the job against the unit's plan (synchronous; throws to refuse it). */
  run?: (plan: Plan) => unknown;
  /** A dropTable: runs as a unit of its own. */
  drop?: string;
  /**
   * An update or delete by query: makes its `run` once every write before it has
   * committed, and runs as a unit of its own before any write after it.
   */
  makeRun?: () => Promise<(plan: Plan) => unknown>;
  /** Bytes of record text the job writes. */
  bytes: number;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

class OwnerState {
  readonly queue: Job[] = [];
  draining = false;
  /** Set while a unit's files are being changed; readers wait for it. */
  applying: Promise<void> | null = null;
  /** A unit's outcome or a checkpoint failed: recover (roll forward) before anything else. */
  broken = false;
  /** Opened at the owner's first write (a read must not create the owner's directory). */
  journal: JournalFiles | null = null;
  /** Changed since the last checkpoint's switch, not yet fsynced. The first checkpoint is due at once. */
  pending = new PendingSync(-Infinity);
  checkpointing: Promise<void> | null = null;
  /** Waiting for the next checkpoint to be due (checkpointSoon). */
  checkpointTimer: NodeJS.Timeout | null = null;
  /** Between a unit's journal append and its files being noted in `pending`: no checkpoint may switch files then. */
  inUnit = false;
  /** Resolved when the queue is empty and nothing is draining (for close()). */
  idle: Array<() => void> = [];

  constructor(readonly log: ChangeLog) {}

  /** Resolves once every queued write has committed (at once if none is queued). */
  async drained(): Promise<void> {
    if (this.draining || this.queue.length > 0) await new Promise<void>((r) => this.idle.push(r));
  }
}

export class FlatFileRecordStore implements RecordStore {
  readonly kind = 'flatfile';
  private readonly paths: FlatFilePaths;
  private readonly cache: TableCache;
  /** Syncs and removals nobody waits on in a request (disk-thread.ts). */
  private readonly disk: DiskThread;
  private readonly unlinks: BackgroundUnlinks;
  private readonly owners = new Map<string, Promise<OwnerState>>();
  /** The owners whose opening has finished (quietOthers looks only at these). */
  private readonly openOwners = new Map<string, OwnerState>();
  private opened = false;
  private closed = false;
  private readonly watching: boolean;
  private systemStamp: SystemChangeStamp | null = null;
  /** Gives back the root's lock (root-lock.ts); null while not open. */
  private unlock: (() => void) | null = null;

  /** The root's real path, naming it in `openStores`. */
  private rootKey = '';
  /** When a checkpoint is due (checkpointSoon). */
  private readonly checkpointAfterMs: number;
  private readonly checkpointFiles: number;

  /**
   * `watch: false` checks every file on every query instead of watching directories
   * (tests of that path); `disk`: a disk thread of its own (tests), not the process's;
   * `checkpoint`: other spacing than CHECKPOINT_AFTER_MS / CHECKPOINT_FILES (tests).
   */
  constructor(root: string, options: { watch?: boolean; disk?: DiskThread; checkpoint?: { afterMs: number; files: number } } = {}) {
    this.paths = new FlatFilePaths(root);
    this.checkpointAfterMs = options.checkpoint?.afterMs ?? CHECKPOINT_AFTER_MS;
    this.checkpointFiles = options.checkpoint?.files ?? CHECKPOINT_FILES;
    this.disk = options.disk ?? sharedDiskThread();
    this.unlinks = new BackgroundUnlinks(this.disk);
    this.cache = new TableCache({ watch: options.watch });
    this.watching = options.watch !== false;
  }

  /** Creates the root and recovers every owner (finishing crashed units). Idempotent. */
  async init(): Promise<void> {
    this.closed = false;
    makeDirs(this.paths.root, DIR_MODE);
    // Before recovery: another process's journals are not ours to roll forward.
    this.unlock ??= lockRoot(this.paths.root);
    this.opened = true;
    this.rootKey = realpathSync(this.paths.root);
    if (!openStores.has(this.rootKey)) openStores.set(this.rootKey, new Set());
    openStores.get(this.rootKey)!.add(this);
    const entries = await readdir(this.paths.root, { withFileTypes: true });
    for (const e of entries) {
      const owner = e.isDirectory() ? decodeSegment(e.name, 'dir') : null;
      if (owner !== null) await this.ready(owner);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    // Queued writes were promised: let them commit first.
    for (const p of this.owners.values()) {
      const st = await p.catch(() => null);
      await st?.drained();
      // A clean stop leaves empty journals behind.
      if (st) {
        await this.checkpointNow(st).catch(() => {});
        st.journal?.close();
        st.journal = null;
      }
    }
    this.cache.close();
    this.systemStamp?.close();
    this.systemStamp = null;
    await this.unlinks.drained();
    this.owners.clear();
    this.openOwners.clear();
    this.opened = false;
    const others = openStores.get(this.rootKey);
    others?.delete(this);
    if (others?.size === 0) openStores.delete(this.rootKey);
    this.unlock?.();
    this.unlock = null;
  }

  /**
   * Moves with any change under the system owner's folder (system-stamp.ts), so the
   * token cache can trust a token file it read until something there changes. None
   * without directory watching.
   */
  changeStamp(): number | undefined {
    if (!this.opened || this.closed || !this.watching) return undefined;
    this.systemStamp ??= new SystemChangeStamp(this.paths.owner(SYSTEM_OWNER));
    return this.systemStamp.current();
  }

  // --- reads ---

  async get(owner: string, table: string, id: string): Promise<StoredRecord | null> {
    const file = this.paths.record(owner, table, id);
    await this.readable(owner);
    const got = readRecordFile(file);
    if (!got || got.record._id === id) return got?.record ?? null;
    // Another id's file answered to this name: a case-insensitive file system folding
    // 'A' and 'a'. Not this record.
    if (foldsTogether(got.record._id, id)) return null;
    throw new FreeholdError('internal', `Record file ${file} holds _id ${JSON.stringify(got.record._id)}, but its name says ${JSON.stringify(id)}`);
  }

  async query(owner: string, table: string, where: Condition, options: QueryOptions): Promise<StoredRecord[]> {
    const dir = this.paths.table(owner, table);
    // The barrier first: waiting for a unit afterwards can only add changes, never hide one.
    const watched = await this.cache.barrier(dir);
    await this.readable(owner);
    const hits = this.cache.select(dir, where, watched).filter((r) => matches(r, where));
    // `_id` last makes the order total, so equal keys come back the same way every time.
    const sort = options.sort.length === 0 ? DEFAULT_SORT : options.sort.some((k) => k.path.length === 1 && k.path[0] === '_id') ? options.sort : [...options.sort, ID_ASC];
    hits.sort((a, b) => compareForSort(a, b, sort));
    // Copies: the cached objects must not be changed by callers.
    return structuredClone(hits.slice(options.skip, options.skip + options.limit));
  }

  async count(owner: string, table: string, where: Condition): Promise<number> {
    const dir = this.paths.table(owner, table);
    const watched = await this.cache.barrier(dir);
    await this.readable(owner);
    let n = 0;
    for (const r of this.cache.select(dir, where, watched)) if (matches(r, where)) n++;
    return n;
  }

  /**
   * Counts record file names rather than parsing every record: cheap, and equal to
   * `count(all)` unless a file is broken (which a query reports by name).
   */
  async listTables(owner: string): Promise<Array<{ table: string; count: number }>> {
    const ownerDir = this.paths.owner(owner);
    await this.readable(owner);
    const out: Array<{ table: string; count: number }> = [];
    for (const e of listDir(ownerDir)) {
      const table = e.isDirectory() ? decodeSegment(e.name, 'dir') : null;
      if (table === null) continue;
      const count = listDir(join(ownerDir, e.name)).filter((f) => f.isFile() && idFromFileName(f.name) !== null).length;
      if (count > 0) out.push({ table, count });
    }
    return out.sort((a, b) => compareStrings(a.table, b.table));
  }

  async usage(owner: string): Promise<{ records: number; bytes: number }> {
    const ownerDir = this.paths.owner(owner);
    await this.readable(owner);
    let records = 0;
    let bytes = 0;
    for (const e of listDir(ownerDir)) {
      if (!e.isDirectory() || decodeSegment(e.name, 'dir') === null) continue;
      for (const f of listDir(join(ownerDir, e.name))) {
        if (!f.isFile() || idFromFileName(f.name) === null) continue;
        records++;
        bytes += statSync(join(ownerDir, e.name, f.name)).size;
      }
    }
    return { records, bytes };
  }

  async changes(owner: string, sinceSeq: number, limit: number): Promise<Change[]> {
    this.paths.owner(owner);
    const st = await this.readable(owner);
    return st.log.read(sinceSeq, limit);
  }

  /**
   * Indexes live in memory only (table-cache.ts): the first field of each declared
   * index gets an equality index when the table is next loaded. Nothing is stored,
   * so after a restart a path is indexed again when a query first compares it by
   * equality (the cache indexes such paths on demand anyway).
   */
  async ensureIndex(owner: string, table: string, fields: string[][]): Promise<void> {
    this.paths.table(owner, table);
    if (fields.length === 0 || fields.length > MAX_INDEX_FIELDS) {
      throw new FreeholdError('bad_request', `An index needs 1 to ${MAX_INDEX_FIELDS} fields`);
    }
    for (const path of fields) {
      if (path.length === 0 || !path.every((seg) => PATH_SEGMENT.test(seg))) {
        throw new FreeholdError('bad_request', `Invalid index field ${JSON.stringify(path.join('.'))}`);
      }
    }
    this.cache.declareIndex(this.paths.table(owner, table), fields[0]!);
  }

  // --- writes: each decides itself against the unit's plan ---

  async create(owner: string, table: string, record: StoredRecord): Promise<void> {
    const text = this.prepare(owner, table, record);
    await this.enqueue(owner, (plan) => createIn(plan, table, record._id, text), text.length);
  }

  async replace(owner: string, table: string, record: StoredRecord): Promise<boolean> {
    const text = this.prepare(owner, table, record);
    return (await this.enqueue(owner, (plan) => {
      if (plan.current(table, record._id) === null) return false;
      plan.write(table, record._id, text);
      return true;
    }, text.length)) as boolean;
  }

  async put(owner: string, table: string, record: StoredRecord): Promise<void> {
    const text = this.prepare(owner, table, record);
    await this.enqueue(owner, (plan) => plan.write(table, record._id, text), text.length);
  }

  /**
   * Rebuilds the record from its current text inside the unit that writes it, so no
   * other write of it can come between (two merges at once both land). Anything
   * unusual (no record, a file that does not parse or names another id, a result over
   * the limit) is left to the caller's general path, which decides it as before.
   */
  async update(owner: string, table: string, id: string, change: RecordUpdate): Promise<{ _date_created: number; _date_modified: number } | null> {
    const file = this.paths.record(owner, table, id);
    const estimate = JSON.stringify(change.fields).length;
    return (await this.enqueue(owner, (plan) => {
      const text = plan.current(table, id);
      if (text === null) return null;
      let stored: StoredRecord;
      try {
        stored = parseRecord(text, file);
      } catch {
        return null;
      }
      if (stored._id !== id) return null;
      const record = change.build(stored);
      if (jsonOverBytes(JSON.stringify(record), change.maxBytes)) return null;
      plan.write(table, id, serializeRecord(record));
      return { _date_created: record._date_created, _date_modified: record._date_modified };
    }, estimate)) as { _date_created: number; _date_modified: number } | null;
  }

  async delete(owner: string, table: string, id: string): Promise<StoredRecord | null> {
    const file = this.paths.record(owner, table, id);
    return (await this.enqueue(owner, (plan) => deleteIn(plan, table, id, file))) as StoredRecord | null;
  }

  async batch(owner: string, ops: BatchOp[]): Promise<void> {
    this.paths.owner(owner);
    if (ops.length === 0) return;
    // Validate and serialise everything up front: the batch fails before queueing if any op is malformed.
    const prepared = ops.map((op) => {
      switch (op.kind) {
        case 'create':
        case 'put': {
          const text = this.prepare(owner, op.table, op.record);
          return { kind: op.kind, table: op.table, id: op.record._id, text, file: '' };
        }
        case 'delete':
          return { kind: op.kind, table: op.table, id: op.id, text: null, file: this.paths.record(owner, op.table, op.id) };
        default:
          throw new FreeholdError('bad_request', `Unknown batch op ${JSON.stringify((op as { kind: unknown }).kind)}`);
      }
    });
    await this.enqueue(owner, (plan) => {
      const child = plan.child();
      for (const op of prepared) {
        if (op.kind === 'create') createIn(child, op.table, op.id, op.text!);
        else if (op.kind === 'put') child.write(op.table, op.id, op.text);
        else deleteIn(child, op.table, op.id, op.file);
      }
      plan.merge(child);
    }, prepared.reduce((sum, op) => sum + (op.text?.length ?? 0), 0));
  }

  /**
   * Finds the matches once every write before this one has committed, then rewrites
   * them in a unit of its own (RecordStore.updateWhere): each judged again on its text
   * in that unit, so a file edited by hand in between is neither undone nor, no longer
   * matching, rewritten. A record `build` refuses leaves the whole unit unwritten.
   */
  async updateWhere(owner: string, table: string, where: Condition, limit: number, build: (stored: StoredRecord) => StoredRecord): Promise<number | null> {
    return (await this.exclusive(owner, table, where, limit, (child, id, stored) => {
      const record = build(stored);
      if (record._id !== id) throw new Error('updateWhere: build must keep the record id');
      child.write(table, id, this.prepare(owner, table, record));
    })) as number;
  }

  /** Finds and deletes the matches as updateWhere does (RecordStore.deleteWhere). */
  async deleteWhere(owner: string, table: string, where: Condition, limit: number): Promise<number | null> {
    return (await this.exclusive(owner, table, where, limit, (child, id) => child.write(table, id, null))) as number;
  }

  /** An update or delete by query: `each` writes one current match into the unit's plan. */
  private async exclusive(owner: string, table: string, where: Condition, limit: number,
    each: (child: Plan, id: string, stored: StoredRecord) => void): Promise<unknown> {
    this.paths.table(owner, table);
    const st = await this.ready(owner);
    const makeRun = async () => {
      const candidates = (await this.query(owner, table, where, { sort: [], skip: 0, limit })).map((r) => r._id);
      return (plan: Plan) => {
        const child = plan.child();
        let n = 0;
        for (const id of candidates) {
          const text = child.current(table, id);
          if (text === null) continue;
          const stored = parseRecord(text, this.paths.record(owner, table, id));
          if (stored._id !== id || !matches(stored, where)) continue;
          each(child, id, stored);
          n++;
        }
        plan.merge(child);
        return n;
      };
    };
    return new Promise((resolve, reject) => this.push(owner, st, { makeRun, bytes: 0, resolve, reject }));
  }

  /** Moves the table directory aside in one rename, logs a delete per record, then removes it. */
  async dropTable(owner: string, table: string): Promise<number> {
    this.paths.table(owner, table);
    const st = await this.ready(owner);
    return new Promise<number>((resolve, reject) => {
      this.push(owner, st, { drop: table, bytes: 0, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  // --- the write queue ---

  /** Checks names and serialises the record now, so errors surface at once and later mutation cannot leak in. */
  private prepare(owner: string, table: string, record: StoredRecord): string {
    const text = serializeRecord(record);
    this.paths.record(owner, table, record._id);
    return text;
  }

  private async enqueue(owner: string, run: (plan: Plan) => unknown, bytes = 0): Promise<unknown> {
    const st = await this.ready(owner);
    return new Promise((resolve, reject) => this.push(owner, st, { run, bytes, resolve, reject }));
  }

  private push(owner: string, st: OwnerState, job: Job): void {
    if (this.closed || !this.opened) {
      job.reject(new Error('FlatFileRecordStore used before init() or after close()'));
      return;
    }
    st.queue.push(job);
    if (!st.draining) {
      st.draining = true;
      // Wait a turn so that writes issued together (concurrent requests) share a unit.
      setImmediate(() => void this.drain(owner, st));
    }
  }

  private async drain(owner: string, st: OwnerState): Promise<void> {
    while (st.queue.length > 0) {
      let jobs: Job[];
      const alone = (job: Job) => job.drop !== undefined || job.makeRun !== undefined;
      if (alone(st.queue[0]!)) {
        jobs = st.queue.splice(0, 1);
      } else {
        let n = 0;
        let bytes = 0;
        while (n < st.queue.length && n < MAX_UNIT_JOBS && !alone(st.queue[n]!) && (n === 0 || bytes + st.queue[n]!.bytes <= MAX_UNIT_BYTES)) {
          bytes += st.queue[n]!.bytes;
          n++;
        }
        jobs = st.queue.splice(0, n);
      }
      let outcomes: Outcome[];
      try {
        if (st.broken) await this.recover(owner, st);
        if (st.journal && (st.journal.size > MAX_PENDING_JOURNAL_BYTES || st.pending.files.size > MAX_PENDING_FILES)) await st.checkpointing?.catch(() => {});
        if (this.unlinks.pending >= MAX_PENDING_UNLINKS) await this.unlinks.whenBelow(MAX_PENDING_UNLINKS);
        const first = jobs[0]!;
        outcomes = first.drop !== undefined ? [await this.runDrop(owner, st, first.drop)]
          : first.makeRun ? await this.runExclusive(owner, st, first, first.makeRun)
            : await this.runUnit(owner, st, jobs);
      } catch (error) {
        outcomes = jobs.map(() => ({ ok: false, error }));
      }
      this.checkpointSoon(st);
      jobs.forEach((job, i) => {
        const o = outcomes[i]!;
        if (o.ok) job.resolve(o.value);
        else job.reject(o.error);
      });
    }
    st.draining = false;
    for (const r of st.idle.splice(0)) r();
  }

  /** An exclusive job: its run is made now that every write before it has committed. */
  private async runExclusive(owner: string, st: OwnerState, job: Job, makeRun: () => Promise<(plan: Plan) => unknown>): Promise<Outcome[]> {
    let run: (plan: Plan) => unknown;
    try {
      run = await makeRun();
    } catch (error) {
      return [{ ok: false, error }];
    }
    return this.runUnit(owner, st, [{ ...job, run }]);
  }

  private async runUnit(owner: string, st: OwnerState, jobs: Job[]): Promise<Outcome[]> {
    const plan = new Plan((table, id) => this.readForWrite(owner, table, id), this.writeChecks(owner));
    const outcomes: Outcome[] = jobs.map((job) => {
      try {
        return { ok: true, value: job.run!(plan) };
      } catch (error) {
        return { ok: false, error };
      }
    });
    if (plan.changes.length === 0) return outcomes;
    try {
      await this.commit(owner, st, plan);
    } catch (error) {
      // Nothing of the unit was committed: every write in it fails (refused ones keep their own reason).
      return outcomes.map((o) => (o.ok ? { ok: false, error } : o));
    }
    return outcomes;
  }

  /**
   * Stage, commit, apply (journal.ts); the checkpoint comes later. Returns once the
   * unit is durable and visible; throws only when it is neither and never will be.
   */
  private async commit(owner: string, st: OwnerState, plan: Plan): Promise<void> {
    const writes = plan.writes();
    const at = Date.now();
    const seqBefore = st.log.seq;
    const changesOffset = st.log.size;
    const changes: Change[] = plan.changes.map((c, i) => ({ seq: seqBefore + i + 1, table: c.table, id: c.id, op: c.op, at }));
    const tables = [...new Set(writes.map((w) => w.table))];
    // Each record's path, once: staging, applying and the checkpoint's list all need it.
    const files = new Map(writes.map((w) => [w, this.paths.record(owner, w.table, w.id)]));
    st.journal ??= await JournalFiles.open(this.paths, owner);
    const journal = st.journal;

    // 1. Stage. Temp files are not records (and are removed at open), so they need no journal.
    const temps = new Map<PlannedWrite, string>();
    const dropTemps = (): void => {
      for (const t of temps.values()) {
        try {
          unlinkIfExistsSync(t);
        } catch {
          // a temp left behind is removed at the next open
        }
      }
    };
    let newTables = false;
    try {
      for (const w of writes) {
        if (w.text === null) continue;
        const file = files.get(w)!;
        let tmp: string;
        try {
          tmp = writeTempSync(file, w.text);
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw e;
          // The table's first record. An empty table directory left by a crash here is harmless: it holds no records.
          if (mkdirSync(this.paths.table(owner, w.table), { recursive: true, mode: DIR_MODE }) !== undefined) newTables = true;
          tmp = writeTempSync(file, w.text);
        }
        temps.set(w, tmp);
      }
    } catch (error) {
      dropTemps();
      throw error;
    }

    // 2. Commit: the entry, durable.
    st.inUnit = true;
    try {
      let start: number;
      try {
        start = await journal.append(frameEntry(buildWriteEntry(changesOffset, seqBefore, changes, writes)));
      } catch (error) {
        dropTemps();
        if (await this.settle(owner, st, seqBefore + changes.length)) return;
        throw error;
      }

      // 3. Apply, with readers held off until it is done: they see all of the unit or none of it.
      const touched: PlannedWrite[] = [];
      let failure: { error: unknown } | null = null;
      await this.applying(st, async () => {
        try {
          for (const w of writes) {
            const file = files.get(w)!;
            if (w.text === null) {
              touched.push(w);
              this.retire(file, false);
            } else if (w.before === null) {
              // Exclusive even against anything outside this process; an outside file is not ours to restore.
              if (!linkTempSync(temps.get(w)!, file, w.text)) throw nameTaken(file, w.table, w.id);
              touched.push(w);
            } else {
              touched.push(w);
              this.retire(file, true);
              replaceWithTempSync(temps.get(w)!, file);
            }
          }
          st.log.append(changes);
        } catch (error) {
          failure = { error };
          dropTemps();
          // Revoked before readers may look again, so no reader sees a unit that then fails.
          if (await this.revoke(owner, st, start, touched, changesOffset)) return;
          if (await this.settle(owner, st, seqBefore + changes.length, false)) failure = null;
        } finally {
          this.invalidate(owner, tables, writes);
        }
      });
      if (failure) throw (failure as { error: unknown }).error;
      for (const w of writes) if (w.text !== null) st.pending.files.add(files.get(w)!);
      for (const t of tables) st.pending.dirs.add(this.paths.table(owner, t));
      if (newTables) st.pending.dirs.add(this.paths.owner(owner));
      st.pending.log = true;
    } finally {
      st.inUnit = false;
    }
  }

  /**
   * Takes a record file's name away from its inode without freeing the inode here:
   * deleting (`keep` false) renames the file to a temp name, replacing (`keep` true)
   * links one to it, so that the rename of its replacement drops a name but frees
   * nothing. The temp name is unlinked in the thread pool.
   *
   * Why: freeing a small file's inode and block can wait on the disk. On ext4 without
   * a journal mounted with `discard` (this project's benchmark machine), the freed
   * block is discarded synchronously, inside unlink(2) or the rename(2) that replaces
   * the file: ~35% of the event loop's time in the update row at 32 connections went
   * to rename. Freeing in the thread pool keeps that wait off every other request.
   */
  private retire(file: string, keep: boolean): void {
    const name = retiredNameFor(file);
    try {
      if (keep) linkSync(file, name);
      else renameSync(file, name);
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ENOTDIR')) return;
      if (!keep) throw e;
      return; // no hard links here (EPERM and the like): the rename frees the old inode itself
    }
    this.unlinks.add(name);
  }

  /** Marks a unit as being applied, so that readers wait for it to finish. */
  private async applying(st: OwnerState, apply: () => Promise<void>): Promise<void> {
    let done!: () => void;
    st.applying = new Promise<void>((r) => (done = r));
    try {
      await apply();
    } finally {
      st.applying = null;
      done();
    }
  }

  private invalidate(owner: string, tables: string[], writes: PlannedWrite[]): void {
    for (const t of tables) {
      this.cache.invalidate(this.paths.table(owner, t), writes.filter((w) => w.table === t).map((w) => encodeSegment(w.id, 'id') + RECORD_SUFFIX));
    }
  }

  /**
   * Takes back a committed unit whose apply failed, so that its callers may be told
   * it failed: old texts restored and the log cut back (durably), then the entry
   * truncated off the journal. False if that could not be done.
   */
  private async revoke(owner: string, st: OwnerState, start: number, touched: PlannedWrite[], changesOffset: number): Promise<boolean> {
    try {
      await restoreBefore(this.paths, owner, touched.map((w) => ({ table: w.table, id: w.id, text: w.before })), changesOffset);
      await st.journal!.revoke(start);
      st.log.load();
      return true;
    } catch {
      st.broken = true;
      return false;
    }
  }

  /**
   * A unit whose outcome is unknown (its journal append failed, or it could not be
   * revoked): recover, which rolls forward whatever the journal durably holds, and
   * report what recovery found (committed iff the log reached `seqAfter`). An error
   * is never reported for a unit that could still be rolled forward later, so while
   * the disk refuses even recovery, this keeps trying (until the store is closed).
   */
  private async settle(owner: string, st: OwnerState, seqAfter: number, holdReaders = true): Promise<boolean> {
    for (;;) {
      try {
        await this.recover(owner, st, holdReaders);
        return st.log.seq >= seqAfter;
      } catch (error) {
        if (this.closed) throw new FreeholdError('internal', `Write outcome unknown: recovery of ${owner} failed (${(error as Error).message}); it is retried at the next start`);
        await new Promise((r) => setTimeout(r, RECOVERY_RETRY_MS));
      }
    }
  }

  /**
   * Starts a checkpoint in the background if there is work and none is running (and no
   * unit is between append and apply), once it is due (CHECKPOINT_AFTER_MS); until then a
   * timer waits for it.
   */
  private checkpointSoon(st: OwnerState): void {
    if (st.checkpointing || st.inUnit || st.pending.empty || !st.journal || st.broken) return;
    const wait = st.pending.files.size >= this.checkpointFiles ? 0 : this.checkpointAfterMs - (performance.now() - st.pending.since);
    if (wait > 0) {
      st.checkpointTimer ??= setTimeout(() => {
        st.checkpointTimer = null;
        this.checkpointSoon(st);
      }, wait).unref();
      return;
    }
    st.checkpointing = this.checkpoint(st)
      .catch(() => {
        st.broken = true; // the journal still holds everything: the next unit recovers first
      })
      .finally(() => {
        st.checkpointing = null;
        this.checkpointSoon(st);
      });
  }

  /** Waits for a running checkpoint, then runs one over everything so far. */
  private async checkpointNow(st: OwnerState): Promise<void> {
    while (st.checkpointing) await st.checkpointing;
    if (st.pending.empty || !st.journal || st.broken) return;
    const p = this.checkpoint(st);
    st.checkpointing = p.catch(() => undefined).finally(() => (st.checkpointing = null));
    await p;
  }

  /** Step 4 (journal.ts): switch journal files, make the old file's units durable, empty it. */
  private async checkpoint(st: OwnerState): Promise<void> {
    // Whatever started it, this one covers what the timer was waiting for.
    if (st.checkpointTimer) clearTimeout(st.checkpointTimer);
    st.checkpointTimer = null;
    const pending = st.pending;
    st.pending = new PendingSync();
    const old = st.journal!.switch();
    await pending.flush(this.disk, st.log.file);
    await st.journal!.empty(old);
  }

  private async runDrop(owner: string, st: OwnerState, table: string): Promise<Outcome> {
    const dir = this.paths.table(owner, table);
    const ownerDir = this.paths.owner(owner);
    const ids = listDir(dir)
      .filter((f) => f.isFile())
      .map((f) => idFromFileName(f.name))
      .filter((id): id is string => id !== null)
      .sort(compareStrings);
    if (ids.length === 0) {
      await rm(dir, { recursive: true, force: true }); // nothing but temp files or an empty directory
      this.cache.invalidate(dir);
      return { ok: true, value: 0 };
    }
    st.journal ??= await JournalFiles.open(this.paths, owner);
    const at = Date.now();
    const seqBefore = st.log.seq;
    const changesOffset = st.log.size;
    const changes: Change[] = ids.map((id, i) => ({ seq: seqBefore + i + 1, table, id, op: 'delete', at }));
    const entry: DropEntry = { version: 2, kind: 'drop', table, trash: TRASH_PREFIX + randomBytes(8).toString('hex'), changesOffset, seqBefore, changes };
    const trash = join(ownerDir, entry.trash);
    const seqAfter = seqBefore + changes.length;
    const done = async (): Promise<Outcome> => {
      await rm(trash, { recursive: true, force: true }).catch(() => {}); // housekeeping: leftovers go at the next open
      return { ok: true, value: ids.length };
    };
    st.inUnit = true;
    try {
      let start: number;
      try {
        start = await st.journal.append(frameEntry(JSON.stringify(entry)));
      } catch (error) {
        if (await this.settle(owner, st, seqAfter)) return await done();
        throw error;
      }
      const journal = st.journal;
      let failure: { error: unknown } | null = null;
      await this.applying(st, async () => {
        try {
          await rename(dir, trash);
          st.log.append(changes);
        } catch (error) {
          failure = { error };
          // Revoked (journal.ts) before readers may look again.
          try {
            if (existsSync(trash)) await rename(trash, dir);
            await fsyncDir(ownerDir);
            await truncateDurably(this.paths.changes(owner), changesOffset);
            await journal.revoke(start);
            st.log.load();
            return;
          } catch {
            st.broken = true;
          }
          if (await this.settle(owner, st, seqAfter, false)) failure = null;
        } finally {
          this.cache.invalidate(dir);
        }
      });
      if (failure) throw (failure as { error: unknown }).error;
      st.pending.dirs.add(ownerDir);
      st.pending.log = true;
    } finally {
      st.inUnit = false;
    }
    // Nothing may be journalled after a drop until the drop is checkpointed: roll-forward then never meets a later unit in a dropped table.
    try {
      await this.checkpointNow(st);
    } catch (error) {
      st.broken = true;
      if (!(await this.settle(owner, st, seqAfter))) throw error;
    }
    return await done();
  }

  /** Recovery in the running store: what open does (see ready), with readers held off. */
  private async recover(owner: string, st: OwnerState, holdReaders = true): Promise<void> {
    while (st.checkpointing) await st.checkpointing.catch(() => {});
    const run = async () => {
      await this.recoverOnDisk(owner);
      st.journal?.reset();
      st.pending = new PendingSync();
      st.log.load();
      this.cache.clear();
      st.broken = false;
    };
    // Inside a unit's apply, readers are held off already.
    if (holdReaders) await this.applying(st, run);
    else await run();
  }

  /** Rolls forward what the journal files hold (or back, for a version 1 journal), empties them, removes leftovers. */
  private async recoverOnDisk(owner: string): Promise<void> {
    const { entries, legacy } = await readJournals(this.paths, owner);
    if (legacy) await rollBackLegacy(this.paths, owner, legacy);
    await rollForward(this.paths, owner, entries);
    for (const file of this.paths.journals(owner)) await truncateDurably(file, 0);
    await removeLeftovers(this.paths.owner(owner));
  }

  /**
   * For one unit, refusals of hand-made obstacles (plan.ts WriteChecks). Found while
   * planning, only the writes concerned fail; found while staging or applying, they
   * would fail every write grouped in the unit.
   * - A table whose folder's place something else holds (a file made by hand): one stat
   *   per table per unit.
   * - A record name that something other than a record file holds (a folder, symlink or
   *   pipe): seen by the read the planner makes anyway.
   */
  private writeChecks(owner: string): WriteChecks {
    const checked = new Map<string, boolean>();
    const table = (table: string): void => {
      let ok = checked.get(table);
      if (ok === undefined) {
        // stat, not lstat: a table folder replaced by a symlink to a folder is followed by writes (docs/flatfile.md).
        const st = statSync(this.paths.table(owner, table), { throwIfNoEntry: false });
        ok = st === undefined || st.isDirectory();
        checked.set(table, ok);
      }
      if (!ok) throw new FreeholdError('conflict', `Something that is not a folder holds the place of table ${table}'s folder; move it away to write to this table`);
    };
    const occupied = (table: string, id: string): never => {
      throw occupiedName(table, id);
    };
    return { table, occupied };
  }

  /**
   * The planner's view of a record on disk: its exact text. A file holding an id that
   * differs only in case means the file system folded the two names together (case
   * insensitivity): writing would clobber the other record, so refuse. Any other
   * mismatch or a broken file is a hand edit gone wrong: a put may replace it, a
   * delete reports it.
   */
  private readForWrite(owner: string, table: string, id: string): string | null | typeof OCCUPIED {
    const file = this.paths.record(owner, table, id);
    if (nothingAt(file)) return null;
    const read = readRecordOrOccupant(file);
    if (read === OCCUPIED) return OCCUPIED;
    const got = read?.text ?? null;
    if (got === null) return null;
    let stored: unknown;
    try {
      stored = (JSON.parse(got) as { _id?: unknown })._id;
    } catch {
      return got;
    }
    if (typeof stored === 'string' && stored !== id && foldsTogether(stored, id)) {
      throw new FreeholdError('conflict', `Record id ${JSON.stringify(id)} collides with ${JSON.stringify(stored)} in ${table}: this file system ignores case in file names`);
    }
    return got;
  }

  // --- owners ---

  /** Opens an owner once: recovers its journal (journal.ts), removes leftover temp files, loads the seq. */
  private ready(owner: string): Promise<OwnerState> {
    this.paths.owner(owner);
    if (!this.opened) return Promise.reject(new Error('FlatFileRecordStore used before init() or after close()'));
    let p = this.owners.get(owner);
    if (!p) {
      p = (async () => {
        await this.quietOthers(owner);
        await this.recoverOnDisk(owner);
        const st = new OwnerState(new ChangeLog(this.paths.changes(owner)));
        st.log.load();
        this.openOwners.set(owner, st);
        return st;
      })();
      this.owners.set(owner, p);
      p.catch(() => this.owners.delete(owner)); // let the next call try again
    }
    return p;
  }

  /**
   * Another store open on this root in this process (the root lock lets a process open
   * its root more than once: `migrate`'s same-store probe, tests) must not have units of
   * this owner in its journal while this one recovers it: recovery empties the journal
   * files, behind the other's back. Its writes so far are checkpointed first, as its
   * close would. Only owners the other has finished opening are looked at: one it is
   * still opening has written nothing yet. Two such stores writing one owner at the same
   * time are not supported.
   */
  private async quietOthers(owner: string): Promise<void> {
    for (const other of openStores.get(this.rootKey) ?? []) {
      if (other === this) continue;
      const st = other.openOwners.get(owner);
      if (!st) continue;
      await st.drained();
      await other.checkpointNow(st);
    }
  }

  /** An owner state in which reads see only committed units. */
  private async readable(owner: string): Promise<OwnerState> {
    const st = await this.ready(owner);
    if (st.broken) await this.enqueue(owner, () => undefined); // the queue recovers first
    while (st.applying) await st.applying;
    return st;
  }
}

/** Whether a case-insensitive file system would give two ids one file (approximately: Unicode case folding varies). */
function foldsTogether(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase() || a.toUpperCase() === b.toUpperCase();
}

function createIn(plan: Plan, table: string, id: string, text: string): void {
  if (plan.current(table, id) !== null) throw new FreeholdError('conflict', `A record with id ${id} already exists in ${table}`);
  plan.write(table, id, text);
}

function deleteIn(plan: Plan, table: string, id: string, file: string): StoredRecord | null {
  const text = plan.current(table, id);
  if (text === null) return null;
  const old = parseRecord(text, file);
  plan.write(table, id, null);
  return old;
}

/**
 * The name a new record needed was taken when it was linked into place: by a record
 * someone else wrote just before, or by something of the owner's own that is not a
 * record file (a folder, a symlink, a named pipe), which only a hand change can clear.
 */
function nameTaken(file: string, table: string, id: string): FreeholdError {
  let isFile = true;
  try {
    isFile = lstatSync(file).isFile();
  } catch {
    // Gone again already: it was a record, taken and removed.
  }
  return isFile ? new FreeholdError('conflict', `A record with id ${id} already exists in ${table}`) : occupiedName(table, id);
}

function occupiedName(table: string, id: string): FreeholdError {
  return new FreeholdError('conflict', `Something that is not a record file holds the name of id ${id} in ${table}; move it away to write this record`);
}
