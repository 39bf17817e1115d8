import type { PoolClient } from 'pg';
import { NotFoundProblem } from '../errors.js';

export const THREAD_NOT_FOUND = 'No such thread.';

/**
 * How a change holds its thread row until commit. `update` (FOR NO KEY UPDATE): membership changes,
 * sends and deletes, which change the thread row or its seq. `share` (FOR SHARE): markers, edits and
 * reactions, which proceed together while those wait. Either way the members read afterwards are
 * exactly the members when the event is appended.
 */
export type ThreadLock = 'update' | 'share';

/**
 * Lock a thread `userId` belongs to (the first lock of the transaction: thread rows come before
 * any other row and before the commit-order lock). 404 when there is no such thread or the user
 * is not a member.
 */
export async function lockThreadOfMember(
  client: PoolClient,
  threadId: string,
  userId: string,
  lock: ThreadLock = 'update',
): Promise<{ kind: 'direct' | 'group'; createdBy: string }> {
  const { rows } = await client.query<{ kind: 'direct' | 'group'; created_by: string }>(
    `SELECT t.kind, t.created_by FROM threads t
      WHERE t.id = $1 AND EXISTS (SELECT 1 FROM thread_members m WHERE m.thread_id = t.id AND m.user_id = $2)
      ${lock === 'update' ? 'FOR NO KEY UPDATE' : 'FOR SHARE'}`,
    [threadId, userId],
  );
  const row = rows[0];
  if (!row) throw new NotFoundProblem(THREAD_NOT_FOUND);
  return { kind: row.kind, createdBy: row.created_by };
}

/** An event for every current member of `$2` (type `$1`) with `data` (a SQL expression). */
const eventForMembers = (data: string) =>
  `SELECT postline_append_event($1, $2, array_agg(user_id ORDER BY user_id), ${data})
     FROM thread_members WHERE thread_id = $2 HAVING count(*) > 0`;

/** Append an event with `data` for the thread's current members (lock the thread first). */
export async function appendEventForMembers(client: PoolClient, type: string, threadId: string, data: unknown): Promise<void> {
  await client.query(eventForMembers('$3::json'), [type, threadId, JSON.stringify(data)]);
}

/** Append a thread.updated event (the thread as everyone sees it) for all current members. */
export async function announceThreadUpdated(client: PoolClient, threadId: string): Promise<void> {
  await client.query(eventForMembers('postline_thread_json($2, NULL)'), ['thread.updated', threadId]);
}
