import type { Pool } from 'pg';

/** Count one hit for `key` in its fixed window (a new window starts when the old one is over). */
export async function countHit(pool: Pool, key: string, windowMs: number): Promise<{ hits: number; resetAt: Date }> {
  const { rows } = await pool.query<{ hits: number; reset_at: Date }>(
    `INSERT INTO rate_limit_hits AS r (key, hits, reset_at) VALUES ($1, 1, now() + $2 * interval '1 millisecond')
     ON CONFLICT (key) DO UPDATE SET
       hits     = CASE WHEN r.reset_at <= now() THEN 1 ELSE r.hits + 1 END,
       reset_at = CASE WHEN r.reset_at <= now() THEN excluded.reset_at ELSE r.reset_at END
     RETURNING hits, reset_at`,
    [key, windowMs],
  );
  const row = rows[0]!;
  return { hits: row.hits, resetAt: row.reset_at };
}

/**
 * Add hits counted by one instance to the shared totals, one row per key and window, and return
 * the totals. A row of an older window starts over; hits for a window already replaced (an
 * instance whose clock is behind, at a boundary) are dropped. Keys must be unique in a batch.
 */
export async function addHits(
  pool: Pool,
  batch: Array<{ key: string; hits: number; resetAt: Date }>,
): Promise<Array<{ key: string; hits: number; resetAt: Date }>> {
  const { rows } = await pool.query<{ key: string; hits: number; reset_at: Date }>(
    `INSERT INTO rate_limit_hits AS r (key, hits, reset_at)
     SELECT * FROM unnest($1::text[], $2::integer[], $3::timestamptz[])
     ON CONFLICT (key) DO UPDATE SET
       hits     = CASE WHEN r.reset_at < excluded.reset_at THEN excluded.hits
                       WHEN r.reset_at = excluded.reset_at THEN r.hits + excluded.hits
                       ELSE r.hits END,
       reset_at = greatest(r.reset_at, excluded.reset_at)
     RETURNING key, hits, reset_at`,
    [batch.map((entry) => entry.key), batch.map((entry) => entry.hits), batch.map((entry) => entry.resetAt)],
  );
  return rows.map((row) => ({ key: row.key, hits: row.hits, resetAt: row.reset_at }));
}

export async function uncountHit(pool: Pool, key: string): Promise<void> {
  await pool.query('UPDATE rate_limit_hits SET hits = greatest(hits - 1, 0) WHERE key = $1 AND reset_at > now()', [key]);
}

export async function forgetHits(pool: Pool, key: string): Promise<void> {
  await pool.query('DELETE FROM rate_limit_hits WHERE key = $1', [key]);
}

export async function deleteExpiredHits(pool: Pool): Promise<number> {
  const { rowCount } = await pool.query('DELETE FROM rate_limit_hits WHERE reset_at <= now()');
  return rowCount ?? 0;
}
