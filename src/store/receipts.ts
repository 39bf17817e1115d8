import type { Pool } from 'pg';
import { inTransaction } from '../db/pool.js';
import { ValidationProblem } from '../errors.js';
import { lockThreadOfMember } from './membership.js';

/** The two markers of a member: `seen` (read) and `delivered` (their client has the messages). */
export type Marker = 'seen' | 'delivered';

/**
 * Move the marker ($3 = the new seq), and when it moved, append its event ($4 = data). `seen` goes
 * to every member ("read by 3 of 5" is drawn from it). `delivered` goes only to the member who
 * acknowledged and to the senders of the messages it newly covers (not deleted, still members):
 * only a sender draws ticks on a message, so an acknowledgement in a group of n reaches one or two
 * users rather than n. The delivered position is greatest(delivered_seq, read_seq): reading a
 * message delivers it too, without an event of its own.
 */
const MOVE: Record<Marker, string> = {
  seen: `
    WITH moved AS (
      UPDATE thread_members SET read_seq = $3 WHERE thread_id = $1 AND user_id = $2 AND read_seq < $3 RETURNING 1)
    SELECT postline_append_event('seen', $1, array_agg(m.user_id ORDER BY m.user_id), $4::json)
      FROM thread_members m WHERE m.thread_id = $1 AND EXISTS (SELECT 1 FROM moved)
    HAVING count(*) > 0`,
  delivered: `
    WITH previous AS (
      SELECT greatest(delivered_seq, read_seq) AS seq FROM thread_members WHERE thread_id = $1 AND user_id = $2),
    moved AS (
      UPDATE thread_members SET delivered_seq = $3
       WHERE thread_id = $1 AND user_id = $2 AND greatest(delivered_seq, read_seq) < $3 RETURNING 1)
    SELECT postline_append_event('delivered', $1, array_agg(m.user_id ORDER BY m.user_id), $4::json)
      FROM thread_members m
     WHERE m.thread_id = $1 AND EXISTS (SELECT 1 FROM moved)
       AND (m.user_id = $2 OR m.user_id IN (
             SELECT s.sender_id FROM messages s, previous p
              WHERE s.thread_id = $1 AND s.seq > p.seq AND s.seq <= $3 AND s.deleted_at IS NULL))
    HAVING count(*) > 0`,
};

/**
 * Move the caller's `marker` forward to message `upTo` (never back) and, when it moved, append
 * its event (`{userId, upTo, seq}`). 404 for a thread the caller is not in; 400 when `upTo` is
 * not a message of the thread.
 */
export async function moveMarker(
  pool: Pool,
  marker: Marker,
  input: { threadId: string; userId: string; upTo: string },
): Promise<void> {
  await inTransaction(pool, async (client) => {
    await lockThreadOfMember(client, input.threadId, input.userId, 'share');
    const message = await client.query<{ seq: string }>('SELECT seq FROM messages WHERE id = $1 AND thread_id = $2', [
      input.upTo,
      input.threadId,
    ]);
    const seq = message.rows[0]?.seq;
    if (seq === undefined) throw new ValidationProblem([{ path: 'upTo', message: 'no such message in this thread' }]);
    await client.query(MOVE[marker], [
      input.threadId,
      input.userId,
      seq,
      JSON.stringify({ userId: input.userId, upTo: input.upTo, seq: Number(seq) }),
    ]);
  });
}
