import pg from 'pg';
import { quoteIdent } from './sql.js';

/** How long to wait before listening again after the connection was lost. */
const RETRY_MS = 1000;

/**
 * The PostgreSQL store's change stamp (RecordStore.changeStamp): a counter moved by
 * every notification on one channel, which a trigger sends when any connection, in
 * any process, commits an update or deletion of a system record (sql.ts).
 *
 * A notification arrives just after its commit, so the stamp moves as soon as this
 * process reads it off the socket: an earlier read stays trusted for that long (as if
 * the commit had landed just after it). While the connection is down, or before it
 * listens, there is no stamp (undefined): callers then trust nothing they read before.
 * Losing the connection also moves the counter, since notifications sent meanwhile
 * are lost; it listens again after a second.
 */
export class ChangeListener {
  private client: pg.Client | null = null;
  private stamp = 0;
  private listening = false;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(private readonly config: pg.ClientConfig, private readonly channel: string) {}

  /** The counter while listening, otherwise undefined. */
  current(): number | undefined {
    return this.listening ? this.stamp : undefined;
  }

  /** Connects and listens; resolves either way (a failure retries in the background). */
  async start(): Promise<void> {
    if (this.closed || this.client) return;
    const client = new pg.Client(this.config);
    this.client = client;
    const lost = () => this.lost(client);
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      if (n.channel === this.channel) this.stamp++;
    });
    try {
      await client.connect();
      // Listening alone must not keep a process alive (a CLI command that opened the store).
      (client.connection.stream as { unref?: () => void }).unref?.();
      await client.query(`LISTEN ${quoteIdent(this.channel)}`);
      if (this.client !== client) return; // lost, or closed, meanwhile
      // Whatever was read before this point was read unwatched.
      this.stamp++;
      this.listening = true;
    } catch {
      lost();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.listening = false;
    this.stamp++;
    void client.end().catch(() => undefined);
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.start();
    }, RETRY_MS);
    this.retry.unref();
  }
}

