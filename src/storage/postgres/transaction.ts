import type pg from 'pg';

/**
 * Runs `fn` in a transaction on a pooled client: COMMIT if it returns, ROLLBACK if it
 * throws. A client whose ROLLBACK fails is in an unknown state and is discarded.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const { client: c, release } = await checkOut(pool);
  try {
    await c.query('BEGIN');
    const value = await fn(c);
    await c.query('COMMIT');
    release();
    return value;
  } catch (error) {
    const clean = await c.query('ROLLBACK').then(() => true, () => false);
    release(!clean);
    throw error;
  }
}

/**
 * A pooled client for the caller to run queries on, and how to give it back (an error
 * or `true` discards it). While a client is checked out, nothing of pg's listens for
 * its 'error' event, which a connection lost meanwhile (a server restart, a backend
 * terminated) emits: unheard, it would end the process. The queries in flight fail
 * with that error anyway; this only keeps the event from going unheard.
 */
export async function checkOut(pool: pg.Pool): Promise<{ client: pg.PoolClient; release: (discard?: Error | boolean) => void }> {
  const client = await pool.connect();
  const heard = (): void => {};
  client.on('error', heard);
  return {
    client,
    release: (discard) => {
      client.removeListener('error', heard);
      client.release(discard);
    },
  };
}
