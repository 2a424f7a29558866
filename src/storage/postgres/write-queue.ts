import pg from 'pg';
import { holdWrites } from './held-writes.js';
import { inTransaction } from './transaction.js';

/** One statement of a write; named, so each connection parses and plans it once. */
export interface Statement {
  name: string;
  text: string;
  values: unknown[];
  rowMode?: 'array';
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
}

/** At most this many writes share one transaction. */
const MAX_GROUP = 500;

/**
 * Per-owner write queue with group commit, over a pool of pipelined connections.
 *
 * Writes of one owner apply in the order they were called (the storage suite relies
 * on it, and SQLite gives it): while one of the owner's writes is in flight, later
 * ones wait, then go together as one transaction. The whole group is sent at once
 * (pipelined: BEGIN, every statement, COMMIT) and costs one round trip, however
 * many writes it holds; a lone single-statement write commits on its own.
 *
 * A write that fails with an SQL error (a batch's conflict, a value too large to
 * index) aborts its group's transaction; it alone is rejected and the others are
 * sent again, in order, as the next group. A lost connection rejects the whole
 * group: whether it committed is unknown, so nothing is retried.
 */
export class WriteQueue {
  private readonly queues = new Map<string, Job[]>();
  private readonly flushing = new Map<string, Promise<void>>();

  constructor(
    private readonly pool: () => pg.Pool,
    /** Maps a driver error (and the statement that met it, when known) to what the caller sees. */
    private readonly translate: (error: unknown, statement: Statement | undefined) => unknown,
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
    const lone = jobs.length === 1 && statementsOf(jobs[0]!).length === 1 ? jobs[0]! : null;
    if (lone) {
      const statement = statementsOf(lone)[0]!;
      try {
        settle(lone, [await this.pool().query(statement)]);
      } catch (error) {
        lone.reject(this.translate(error, statement));
      }
      return [];
    }

    let client: pg.PoolClient;
    try {
      client = await this.pool().connect();
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return [];
    }
    // All sent before any answer is read. Each query ends in its own Sync, so after an error the
    // rest of the transaction fails ("aborted") and COMMIT answers ROLLBACK: nothing half-done.
    const statements = jobs.flatMap(statementsOf);
    // One socket write for the group, not one per query (a syscall costs more than a statement
    // here), and not through cork(): held-writes.ts says why.
    const release = holdWrites(client.connection.stream);
    let sent: Array<Promise<pg.QueryResult>>;
    try {
      sent = [client.query('BEGIN'), ...statements.map((s) => client.query(s)), client.query('COMMIT')];
    } finally {
      release();
    }
    const settled = await Promise.allSettled(sent);
    const failed = settled.findIndex((s) => s.status === 'rejected');
    if (failed < 0) {
      client.release();
      let at = 1;
      for (const job of jobs) {
        const n = statementsOf(job).length;
        settle(job, settled.slice(at, at + n).map((s) => (s as PromiseFulfilledResult<pg.QueryResult>).value));
        at += n;
      }
      return [];
    }

    const error = (settled[failed] as PromiseRejectedResult).reason as unknown;
    if (!(error instanceof pg.DatabaseError)) {
      // The connection failed: the transaction may or may not have committed.
      client.release(error instanceof Error ? error : true);
      for (const job of jobs) job.reject(error);
      return [];
    }
    // The server refused a statement, so the transaction rolled back and the connection is idle.
    client.release();
    const culprit = failed === 0 || failed === sent.length - 1 ? null : jobOf(jobs, failed - 1);
    if (!culprit) {
      for (const job of jobs) job.reject(this.translate(error, undefined));
      return [];
    }
    culprit.reject(this.translate(error, statements[failed - 1]));
    return jobs.filter((job) => job !== culprit);
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
