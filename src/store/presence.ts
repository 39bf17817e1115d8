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
  for (const batch of batches(userIds)) await pool.query('SELECT postline_add_connections($1, $2::bigint[])', [instanceId, batch]);
}

/** Record that `userIds` left this instance, and announce offline those with no connection left. */
export async function removeConnections(pool: Pool, instanceId: string, userIds: string[]): Promise<void> {
  for (const batch of batches(userIds)) await pool.query('SELECT postline_remove_connections($1, $2::bigint[])', [instanceId, batch]);
}

/** Make this instance's recorded connections exactly `userIds`, announcing whoever changed. */
export async function replaceConnections(pool: Pool, instanceId: string, userIds: string[]): Promise<void> {
  await heartbeatInstance(pool, instanceId);
  const { rows } = await pool.query<{ user_id: string }>(
    'SELECT user_id FROM presence_connections WHERE instance_id = $1 AND user_id <> ALL ($2::bigint[])',
    [instanceId, userIds],
  );
  await removeConnections(pool, instanceId, rows.map((row) => row.user_id));
  await addConnections(pool, instanceId, userIds);
}

/** Users changed and reconciled per statement: each holds its users' advisory locks until it commits. */
const BATCH = 500;

function batches(userIds: string[]): string[][] {
  const result: string[][] = [];
  for (let i = 0; i < userIds.length; i += BATCH) result.push(userIds.slice(i, i + BATCH));
  return result;
}

async function reconcile(pool: Pool, userIds: string[]): Promise<void> {
  for (const batch of batches(userIds)) await pool.query('SELECT postline_reconcile_presence_many($1::bigint[])', [batch]);
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

/**
 * For each of `userIds`, those of `candidateIds` who are their contacts (the audience of their
 * presence: an accepted thread in common, no block either way), in one query for the lot.
 */
export async function contactsAmong(pool: Pool, userIds: string[], candidateIds: string[]): Promise<Map<string, string[]>> {
  const { rows } = await pool.query<{ subject: string; viewer: string }>(
    `SELECT DISTINCT mine.user_id::text AS subject, theirs.user_id::text AS viewer
       FROM thread_members mine JOIN thread_members theirs USING (thread_id)
      WHERE mine.user_id = ANY ($1::bigint[]) AND mine.accepted AND theirs.accepted
        AND theirs.user_id = ANY ($2::bigint[]) AND theirs.user_id <> mine.user_id
        AND NOT postline_blocked(mine.user_id, theirs.user_id)`,
    [userIds, candidateIds],
  );
  const audiences = new Map<string, string[]>();
  for (const { subject, viewer } of rows) {
    const audience = audiences.get(subject);
    if (audience) audience.push(viewer);
    else audiences.set(subject, [viewer]);
  }
  return audiences;
}
