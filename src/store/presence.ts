import type { Pool } from 'pg';

/** Register this instance (or prove it is alive): instances that stop doing this are swept. */
export async function heartbeatInstance(pool: Pool, instanceId: string): Promise<void> {
  await pool.query(
    `INSERT INTO instances (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
    [instanceId],
  );
}

/** Forget this instance and its connections (clean shutdown). */
export async function removeInstance(pool: Pool, instanceId: string): Promise<void> {
  await pool.query('DELETE FROM instances WHERE id = $1', [instanceId]);
}

/** Record that `userIds` are connected to this instance, and announce those who just came online. */
export async function addConnections(pool: Pool, instanceId: string, userIds: string[]): Promise<void> {
  await pool.query(
    `INSERT INTO presence_connections (instance_id, user_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING`,
    [instanceId, userIds],
  );
  await reconcile(pool, userIds);
}

/** Record that `userId` left this instance, and announce it offline if it has no connection left. */
export async function removeConnection(pool: Pool, instanceId: string, userId: string): Promise<void> {
  await pool.query('DELETE FROM presence_connections WHERE instance_id = $1 AND user_id = $2', [instanceId, userId]);
  await reconcile(pool, [userId]);
}

/** Make this instance's recorded connections exactly `userIds`, announcing whoever changed. */
export async function replaceConnections(pool: Pool, instanceId: string, userIds: string[]): Promise<void> {
  await heartbeatInstance(pool, instanceId);
  const { rows } = await pool.query<{ user_id: string }>(
    'DELETE FROM presence_connections WHERE instance_id = $1 AND user_id <> ALL ($2::bigint[]) RETURNING user_id',
    [instanceId, userIds],
  );
  await addConnections(pool, instanceId, userIds);
  await reconcile(pool, rows.map((row) => row.user_id));
}

async function reconcile(pool: Pool, userIds: string[]): Promise<void> {
  // One statement (and so one transaction) per user: each takes that user's advisory lock.
  for (const userId of userIds) await pool.query('SELECT postline_reconcile_presence($1)', [userId]);
}

/**
 * Drop instances that stopped heartbeating (with their connections), then announce offline
 * every user marked online who has no connection left anywhere.
 */
export async function sweepPresence(pool: Pool, deadAfterMs: number): Promise<void> {
  await pool.query(`DELETE FROM instances WHERE heartbeat_at < now() - $1 * interval '1 millisecond'`, [deadAfterMs]);
  const { rows } = await pool.query<{ user_id: string }>(
    `SELECT user_id FROM presence p WHERE online
        AND NOT EXISTS (SELECT 1 FROM presence_connections c WHERE c.user_id = p.user_id)`,
  );
  await reconcile(pool, rows.map((row) => row.user_id));
}

/**
 * Presence of the given users, as far as `viewerId` may know it: themselves and their contacts
 * (who share a thread both accepted, and have not blocked each other; see postline_contacts).
 */
export async function presenceOf(pool: Pool, viewerId: string, userIds: string[]): Promise<Array<{ userId: string; online: boolean }>> {
  const { rows } = await pool.query<{ user_id: string; online: boolean }>(
    `SELECT u.id AS user_id, coalesce(p.online, false) AS online
       FROM users u LEFT JOIN presence p ON p.user_id = u.id
      WHERE u.id = ANY ($2::bigint[]) AND (u.id = $1 OR postline_contacts($1, u.id))
      ORDER BY u.id`,
    [viewerId, userIds],
  );
  return rows.map((row) => ({ userId: row.user_id, online: row.online }));
}

/** Of `candidateIds`, the contacts of `userId` (the audience of their presence). */
export async function contactsAmong(pool: Pool, userId: string, candidateIds: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ user_id: string }>(
    `SELECT DISTINCT theirs.user_id FROM thread_members mine JOIN thread_members theirs USING (thread_id)
      WHERE mine.user_id = $1 AND mine.accepted AND theirs.accepted
        AND theirs.user_id = ANY ($2::bigint[]) AND theirs.user_id <> $1 AND NOT postline_blocked($1, theirs.user_id)`,
    [userId, candidateIds],
  );
  return rows.map((row) => row.user_id);
}
