import type { Pool } from 'pg';
import type { User } from '../contract.js';

/** `blockerId` blocks `blockedId` (again: no change). False when there is no such user. */
export async function block(pool: Pool, blockerId: string, blockedId: string): Promise<boolean> {
  const { rows } = await pool.query<{ found: boolean }>(
    `WITH target AS (SELECT id FROM users WHERE id = $2),
          added AS (INSERT INTO blocks (blocker_id, blocked_id) SELECT $1, id FROM target ON CONFLICT DO NOTHING)
     SELECT EXISTS (SELECT 1 FROM target) AS found`,
    [blockerId, blockedId],
  );
  return rows[0]!.found;
}

/** Take a block back (none: no change). */
export async function unblock(pool: Pool, blockerId: string, blockedId: string): Promise<void> {
  await pool.query('DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2', [blockerId, blockedId]);
}

/** The users `blockerId` blocked, most recent first. */
export async function listBlocked(pool: Pool, blockerId: string): Promise<User[]> {
  const { rows } = await pool.query<{ user: User }>(
    `SELECT postline_user_json(u) AS user FROM blocks b JOIN users u ON u.id = b.blocked_id
      WHERE b.blocker_id = $1 ORDER BY b.created_at DESC, u.id`,
    [blockerId],
  );
  return rows.map((row) => row.user);
}
