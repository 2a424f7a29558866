import pg from 'pg';
import { holdWrites } from './held-writes.js';
import { checkOut, inTransaction } from './transaction.js';

/** One statement of a write; named, so each connection parses and plans it once. */
export interface Statement {
  name: string;
  text: string;
  values: unknown[];
  rowMode?: 'array';
  /**
   * Set when the queue's Combiner may send the statement together with neighbours of
   * the same `kind` (the same write's, or other writes') as one statement. `key` names
   * what it writes: two statements with the same key are never combined (the second
   * must see the first done). `bytes`: its size, which bounds a combined statement's.
   */
  combine?: { kind: string; key: string; bytes: number };
}

/**
 * Makes one statement of several (the store's: multi-row inserts and updates), and
 * gives each original statement its own result back from the combined one's.
 */
export interface Combiner {
  /** One statement doing what `statements` (two or more, of one kind, in order) do, in that order. */
  combine(statements: Statement[]): Statement;
  /** The combined statement's result as the results each of `statements` would have had alone. */
  split(statements: Statement[], result: pg.QueryResult): pg.QueryResult[];
}

/** A write: statements that commit together, and what its caller gets from their results. */
export interface Write<T> {
  statements: Statement[];
  /** Runs once the statements have committed; may throw (a conflict seen as "no row inserted"). */
  result: (results: pg.QueryResult[]) => T;
}

/**
 * A write that must look before it writes (update or delete by query): `run` gets a
 * pooled client inside a transaction of its own (BEGIN before, COMMIT after; ROLLBACK
 * if it throws) and may query and write on it. It runs alone, in its place in the
 * owner's order: after every write called before it has settled, before any called
 * after it is sent.
 */
export interface Exclusive<T> {
  run: (client: pg.PoolClient) => Promise<T>;
}

interface Job {
  write: Write<unknown> | Exclusive<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** A combined statement holding it failed: it is sent on its own from then on, to find the culprit. */
  alone?: boolean;
}

/** What a group sends: `statement` does the group's statements `from` … `from + originals.length - 1`. */
interface Part {
  statement: Statement;
  from: number;
  originals: Statement[];
  /** Combined parts only: the jobs whose statements it holds. */
  jobs?: Job[];
}

/** At most this many writes share one transaction. */
const MAX_GROUP = 500;
/** At most this many bytes of records go in one combined statement (bigger writes go alone). */
const MAX_COMBINED_BYTES = 1024 * 1024;

/**
 * Per-owner write queue with group commit, over a pool of pipelined connections.
 *
 * Writes of one owner apply in the order they were called (the storage suite relies
 * on it, and SQLite gives it): while one of the owner's writes is in flight, later
 * ones wait, then go together as one transaction. The whole group is sent at once
 * (pipelined: BEGIN, every statement, COMMIT) and costs one round trip, however
 * many writes it holds; a lone single-statement write commits on its own.
 *
 * Consecutive statements that the store marks combinable (creates, updates, a batch's
 * puts) go as one statement (the `combiner`'s): PostgreSQL plans, executes and logs one
 * statement instead of one per write, which is most of its cost for small records.
 *
 * A write that fails with an SQL error (a batch's conflict, a value too large to
 * index) aborts its group's transaction; it alone is rejected and the others are
 * sent again, in order, as the next group. When the failing statement was a combined
 * one, which of its writes failed is unknown: nothing is rejected, and its writes are
 * sent again each on its own. A lost connection rejects the whole group: whether it
 * committed is unknown, so nothing is retried.
 */
export class WriteQueue {
  private readonly queues = new Map<string, Job[]>();
  private readonly flushing = new Map<string, Promise<void>>();
  /** Statements that committed as part of a combined one (tests). */
  combined = 0;

  constructor(
    private readonly pool: () => pg.Pool,
    /** Maps a driver error (and the statement that met it, when known) to what the caller sees. */
    private readonly translate: (error: unknown, statement: Statement | undefined) => unknown,
    private readonly combiner?: Combiner,
  ) {}

  run<T>(owner: string, write: Write<T> | Exclusive<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job: Job = { write, resolve: resolve as (v: unknown) => void, reject };
      const queue = this.queues.get(owner);
      if (queue) queue.push(job);
      else this.queues.set(owner, [job]);
      // flush() awaits before it can finish, so it is registered here before its `finally` runs.
      if (!this.flushing.has(owner)) this.flushing.set(owner, this.flush(owner));
    });
  }

  /** Resolves once every queued write has settled. */
  async drain(): Promise<void> {
    while (this.flushing.size > 0) await Promise.allSettled([...this.flushing.values()]);
  }

  private async flush(owner: string): Promise<void> {
    const queue = this.queues.get(owner)!;
    try {
      while (queue.length > 0) {
        if (isExclusive(queue[0]!.write)) {
          await this.runExclusive(queue.shift()!);
          continue;
        }
        // A group ends before the next exclusive write: that one must see the group committed.
        const next = queue.findIndex((job) => isExclusive(job.write));
        const size = Math.min(MAX_GROUP, next < 0 ? queue.length : next);
        queue.unshift(...(await this.runGroup(queue.splice(0, size))));
      }
    } catch (error) {
      // Not expected (runGroup settles what it takes), but a queued write must never be left unsettled.
      for (const job of queue.splice(0)) job.reject(error);
    } finally {
      // Synchronously after seeing an empty queue, so no write can slip in between.
      this.queues.delete(owner);
      this.flushing.delete(owner);
    }
  }

  /** Runs one exclusive write in its own transaction; settles it, whatever happens. */
  private async runExclusive(job: Job): Promise<void> {
    try {
      job.resolve(await inTransaction(this.pool(), (job.write as Exclusive<unknown>).run));
    } catch (error) {
      job.reject(this.translate(error, undefined));
    }
  }

  /** Runs one group; returns the writes to send again (those a failing write rolled back). */
  private async runGroup(jobs: Job[]): Promise<Job[]> {
    const parts = this.plan(jobs);
    if (parts.length === 1) return this.runAlone(jobs, parts[0]!);

    let client: pg.PoolClient;
    let release: (discard?: Error | boolean) => void;
    try {
      ({ client, release } = await checkOut(this.pool()));
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return [];
    }
    // All sent before any answer is read. Each query ends in its own Sync, so after an error the
    // rest of the transaction fails ("aborted") and COMMIT answers ROLLBACK: nothing half-done.
    // One socket write for the group, not one per query (a syscall costs more than a statement
    // here), and not through cork(): held-writes.ts says why.
    const send = holdWrites(client.connection.stream);
    let sent: Array<Promise<pg.QueryResult>>;
    try {
      sent = [client.query('BEGIN'), ...parts.map((p) => client.query(p.statement)), client.query('COMMIT')];
    } finally {
      send();
    }
    const settled = await Promise.allSettled(sent);
    const failed = settled.findIndex((s) => s.status === 'rejected');
    if (failed < 0) {
      release();
      this.settleAll(jobs, parts, settled.slice(1, -1).map((s) => (s as PromiseFulfilledResult<pg.QueryResult>).value));
      return [];
    }

    const error = (settled[failed] as PromiseRejectedResult).reason as unknown;
    if (!(error instanceof pg.DatabaseError)) {
      // The connection failed: the transaction may or may not have committed.
      release(error instanceof Error ? error : true);
      for (const job of jobs) job.reject(error);
      return [];
    }
    // The server refused a statement, so the transaction rolled back and the connection is idle.
    release();
    const part = failed === 0 || failed === sent.length - 1 ? null : parts[failed - 1]!;
    if (!part) {
      for (const job of jobs) job.reject(this.translate(error, undefined));
      return [];
    }
    if (part.jobs) return this.sendAlone(jobs, part.jobs);
    const culprit = jobOf(jobs, part.from);
    culprit.reject(this.translate(error, part.statement));
    return jobs.filter((job) => job !== culprit);
  }

  /** A group that is one statement (one write, or combined writes): sent without BEGIN and COMMIT, as it commits alone. */
  private async runAlone(jobs: Job[], part: Part): Promise<Job[]> {
    let result: pg.QueryResult;
    try {
      result = await this.pool().query(part.statement);
    } catch (error) {
      if (part.jobs && error instanceof pg.DatabaseError) return this.sendAlone(jobs, part.jobs);
      const reason = part.jobs ? error : this.translate(error, part.statement);
      for (const job of jobs) job.reject(reason);
      return [];
    }
    this.settleAll(jobs, [part], [result]);
    return [];
  }

  /** After a combined statement failed: every write of the group goes again, those it held each on its own. */
  private sendAlone(jobs: Job[], combined: Job[]): Job[] {
    for (const job of combined) job.alone = true;
    return jobs;
  }

  /** Each job's results, from the parts' results (combined ones split back). */
  private settleAll(jobs: Job[], parts: Part[], results: pg.QueryResult[]): void {
    const each = parts.flatMap((p, i) => {
      if (!p.jobs) return [results[i]!];
      this.combined += p.originals.length;
      return this.combiner!.split(p.originals, results[i]!);
    });
    let at = 0;
    for (const job of jobs) {
      const n = statementsOf(job).length;
      settle(job, each.slice(at, at + n));
      at += n;
    }
  }

  /** The group's statements as sent: runs of combinable statements (of one write, or of several) made one statement each. */
  private plan(jobs: Job[]): Part[] {
    const parts: Part[] = [];
    let at = 0;
    let run: Statement[] = [];
    let runFrom = 0;
    let runJobs = new Set<Job>();
    let kind = '';
    let bytes = 0;
    const keys = new Set<string>();
    const endRun = (): void => {
      if (run.length === 1) parts.push({ statement: run[0]!, from: runFrom, originals: run });
      else if (run.length > 1) parts.push({ statement: this.combiner!.combine(run), from: runFrom, originals: run, jobs: [...runJobs] });
      run = [];
      runJobs = new Set();
      keys.clear();
      bytes = 0;
    };
    for (const job of jobs) {
      for (const statement of statementsOf(job)) {
        const c = this.combiner && !job.alone ? statement.combine : undefined;
        if (run.length > 0 && (!c || c.kind !== kind || keys.has(c.key) || bytes + c.bytes > MAX_COMBINED_BYTES)) endRun();
        if (!c) {
          parts.push({ statement, from: at++, originals: [statement] });
          continue;
        }
        if (run.length === 0) runFrom = at;
        run.push(statement);
        runJobs.add(job);
        kind = c.kind;
        keys.add(c.key);
        bytes += c.bytes;
        at++;
      }
    }
    endRun();
    return parts;
  }
}

/** The job owning the group's `index`-th statement. */
function jobOf(jobs: Job[], index: number): Job {
  for (const job of jobs) {
    const n = statementsOf(job).length;
    if (index < n) return job;
    index -= n;
  }
  throw new Error('statement index out of range');
}

/** A group's job: flush keeps exclusive writes out of groups, so every job in one has statements. */
function statementsOf(job: Job): Statement[] {
  return (job.write as Write<unknown>).statements;
}

function isExclusive(write: Write<unknown> | Exclusive<unknown>): write is Exclusive<unknown> {
  return 'run' in write;
}

function settle(job: Job, results: pg.QueryResult[]): void {
  try {
    job.resolve((job.write as Write<unknown>).result(results));
  } catch (error) {
    job.reject(error);
  }
}
