import pg from 'pg';
import { holdWrites } from './held-writes.js';

/**
 * One pipelined connection shared by every caller, for short reads. Queries
 * are sent as soon as they are made, without checking a connection out of a pool,
 * and those made in one turn of the event loop leave in one socket write: under
 * load, many lookups then cost one write, one server wake-up and one read, where
 * pooled connections cost each lookup its own. On this kind of machine (few cores,
 * costly syscalls) that is most of a lookup's price.
 *
 * The server answers in order, so a slow query holds up the ones behind it: callers
 * send only queries expected to be quick, and `stalledFor` lets them go elsewhere
 * while one is not. A lost connection fails the queries then in flight (as a pooled
 * one would); the next query opens a new connection.
 */
export class SharedConnection {
  private client: pg.Client | null = null;
  private flushScheduled = false;
  private closed = false;
  private inFlight = 0;
  /** performance.now() when an answer last came back, or when the first of those in flight was sent. */
  private progressAt = 0;
  private readonly settled = (): void => {
    this.inFlight--;
    this.progressAt = performance.now();
  };

  /** `watchProgress` makes `stalledFor` work, at the price of one more promise reaction per query. */
  constructor(
    private readonly config: pg.ClientConfig,
    private readonly watchProgress = false,
  ) {}

  query<R extends unknown[]>(config: pg.QueryConfig & { rowMode: 'array' }): Promise<pg.QueryArrayResult<R>> {
    if (this.closed) return Promise.reject(new Error('SharedConnection used after close()'));
    const client = this.client ?? this.open();
    this.holdTurnWrites(client);
    const result = client.query<R>(config);
    if (this.watchProgress) {
      if (this.inFlight++ === 0) this.progressAt = performance.now();
      result.then(this.settled, this.settled);
    }
    return result;
  }

  /**
   * Milliseconds the connection has had queries in flight without an answer coming
   * back; 0 when idle or flowing. Answers come in order, so a large value means a slow
   * query is holding up everything sent after it. Always 0 without `watchProgress`.
   */
  stalledFor(): number {
    return this.inFlight === 0 ? 0 : performance.now() - this.progressAt;
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = null;
    if (!client) return;
    // Answers come in order, so once this one is back every query sent before it is too.
    await client.query('SELECT 1').catch(() => undefined);
    await client.end().catch(() => undefined);
  }

  private open(): pg.Client {
    const client = new pg.Client({ ...this.config, pipeline: true });
    const drop = () => {
      if (this.client === client) this.client = null;
    };
    // A dropped connection emits 'error' (its queries fail); without a listener that would crash.
    client.on('error', drop);
    client.on('end', drop);
    // Queries made before the connection is up wait in the client and go out once it is.
    client.connect().catch(drop);
    this.client = client;
    return client;
  }

  /** Holds the socket's writes until the loop's I/O phase ends (setImmediate), so this turn's queries share one write. */
  private holdTurnWrites(client: pg.Client): void {
    if (this.flushScheduled) return;
    const release = holdWrites(client.connection.stream);
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      release();
    });
  }
}
