import type { Pool } from 'pg';
import type { Message } from '../contract.js';
import { NotFoundProblem } from '../errors.js';

const PAGE_WHERE = `m.thread_id = $1 AND ($2::bigint IS NULL OR m.seq < $2) AND ($3::bigint IS NULL OR m.seq > $3)`;
const PAGE_FORWARD = `SELECT postline_message_json(m) AS message FROM messages m WHERE ${PAGE_WHERE} ORDER BY m.seq ASC LIMIT $4`;
const PAGE_BACKWARD = `SELECT postline_message_json(m) AS message FROM messages m WHERE ${PAGE_WHERE} ORDER BY m.seq DESC LIMIT $4`;

/**
 * A page of a thread's messages in ascending seq. With `after`: the first `limit` after it;
 * otherwise the last `limit` before `before` (or the newest). `hasMore`: more exist beyond the
 * page in the direction of travel.
 */
export async function listMessages(
  pool: Pool,
  input: { threadId: string; viewerId: string; before?: number | undefined; after?: number | undefined; limit: number },
): Promise<{ messages: Message[]; hasMore: boolean }> {
  const member = await pool.query('SELECT 1 FROM thread_members WHERE thread_id = $1 AND user_id = $2', [
    input.threadId,
    input.viewerId,
  ]);
  if (!member.rowCount) throw new NotFoundProblem('No such thread.');
  const forward = input.after !== undefined;
  const { rows } = await pool.query<{ message: Message }>(forward ? PAGE_FORWARD : PAGE_BACKWARD, [
    input.threadId,
    input.before ?? null,
    input.after ?? null,
    input.limit + 1,
  ]);
  const hasMore = rows.length > input.limit;
  const page = rows.slice(0, input.limit).map((row) => row.message);
  return { messages: forward ? page : page.reverse(), hasMore };
}
