import type pg from 'pg';

/**
 * Runs `fn` in a transaction on a pooled client: COMMIT if it returns, ROLLBACK if it
 * throws. A client whose ROLLBACK fails is in an unknown state and is discarded.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
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
