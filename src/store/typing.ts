import type { Pool } from 'pg';

/** Record and (unless repeated within 2 s) announce a typing state; false when not a member. */
export async function setTyping(pool: Pool, threadId: string, userId: string, typing: boolean): Promise<boolean> {
  const { rows } = await pool.query<{ member: boolean }>('SELECT postline_set_typing($1, $2, $3) AS member', [
    threadId,
    userId,
    typing,
  ]);
  return rows[0]!.member;
}

/** Forget typing states nobody compares against any more. */
export async function deleteStaleTyping(pool: Pool): Promise<number> {
  const { rowCount } = await pool.query(`DELETE FROM typing_state WHERE broadcast_at < now() - interval '1 minute'`);
  return rowCount ?? 0;
}
