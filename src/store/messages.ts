import type { Pool, PoolClient } from 'pg';
import type { Message } from '../contract.js';
import { inTransaction } from '../db/pool.js';
import { ConflictProblem, ForbiddenProblem, NotFoundProblem } from '../errors.js';
import { appendEventForMembers, lockThreadOfMember, THREAD_NOT_FOUND, type ThreadLock } from './membership.js';

const PAGE_WHERE = `m.thread_id = $1 AND ($2::bigint IS NULL OR m.seq < $2) AND ($3::bigint IS NULL OR m.seq > $3)`;
const PAGE_FORWARD = `SELECT postline_message_json(m) AS message FROM messages m WHERE ${PAGE_WHERE} ORDER BY m.seq ASC LIMIT $4`;
const PAGE_BACKWARD = `SELECT postline_message_json(m) AS message FROM messages m WHERE ${PAGE_WHERE} ORDER BY m.seq DESC LIMIT $4`;

/**
 * A page of a thread's messages in ascending seq, tombstones included. With `after`: the first
 * `limit` after it; otherwise the last `limit` before `before` (or the newest). `hasMore`: more
 * exist beyond the page in the direction of travel.
 */
export async function listMessages(
  pool: Pool,
  input: { threadId: string; viewerId: string; before?: number | undefined; after?: number | undefined; limit: number },
): Promise<{ messages: Message[]; hasMore: boolean }> {
  const member = await pool.query('SELECT 1 FROM thread_members WHERE thread_id = $1 AND user_id = $2', [
    input.threadId,
    input.viewerId,
  ]);
  if (!member.rowCount) throw new NotFoundProblem(THREAD_NOT_FOUND);
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

export interface MessageRef {
  threadId: string;
  messageId: string;
  /** The caller. */
  userId: string;
}

/**
 * Lock the thread (as `lock` says) and then the message, in that order: thread rows come first,
 * the commit-order lock last. 404 unless the caller is a member and the message is in the thread.
 */
export async function lockMessage(
  client: PoolClient,
  ref: MessageRef,
  lock: ThreadLock,
): Promise<{ senderId: string; body: string | null; deleted: boolean }> {
  await lockThreadOfMember(client, ref.threadId, ref.userId, lock);
  const { rows } = await client.query<{ sender_id: string; body: string | null; deleted: boolean }>(
    `SELECT sender_id, body, deleted_at IS NOT NULL AS deleted FROM messages WHERE id = $1 AND thread_id = $2 FOR NO KEY UPDATE`,
    [ref.messageId, ref.threadId],
  );
  const row = rows[0];
  if (!row) throw new NotFoundProblem('No such message.');
  return { senderId: row.sender_id, body: row.body, deleted: row.deleted };
}

/** The message as it is now (in the caller's transaction). */
export async function currentMessage(client: PoolClient, messageId: string): Promise<Message> {
  const { rows } = await client.query<{ message: Message }>('SELECT postline_message_json(m) AS message FROM messages m WHERE m.id = $1', [
    messageId,
  ]);
  return rows[0]!.message;
}

/** Only the sender may change their message. */
function assertSender(message: { senderId: string }, userId: string, action: string): void {
  if (message.senderId !== userId) throw new ForbiddenProblem(`Only the sender may ${action} a message.`);
}

/**
 * Replace the text of one's own message: it gets `editedAt` and a `message.updated` event for the
 * members. The same text again changes nothing (no event). A deleted message cannot be edited (409).
 */
export async function editMessage(pool: Pool, ref: MessageRef, body: string): Promise<Message> {
  return inTransaction(pool, async (client) => {
    const message = await lockMessage(client, ref, 'share');
    assertSender(message, ref.userId, 'edit');
    if (message.deleted) throw new ConflictProblem('The message was deleted.');
    if (message.body === body) return currentMessage(client, ref.messageId);
    await client.query('UPDATE messages SET body = $2, edited_at = now() WHERE id = $1', [ref.messageId, body]);
    const edited = await currentMessage(client, ref.messageId);
    await appendEventForMembers(client, 'message.updated', ref.threadId, edited);
    return edited;
  });
}

/**
 * Delete one's own message, leaving a tombstone: the row keeps its seq, loses its text (also the
 * copies in the event log), its reply link and its reactions; `deletedAt` is set and a
 * `message.deleted` event carries the tombstone. If it was the thread's last message, the newest
 * message still there takes its place. Deleting it again changes nothing.
 */
export async function deleteMessage(pool: Pool, ref: MessageRef): Promise<void> {
  await inTransaction(pool, async (client) => {
    const message = await lockMessage(client, ref, 'update');
    assertSender(message, ref.userId, 'delete');
    if (message.deleted) return;
    await client.query('UPDATE messages SET body = NULL, reply_to_id = NULL, deleted_at = now() WHERE id = $1', [ref.messageId]);
    await client.query('DELETE FROM message_reactions WHERE message_id = $1', [ref.messageId]);
    await client.query(
      `UPDATE threads t SET last_message_id = (
         SELECT m.id FROM messages m WHERE m.thread_id = t.id AND m.deleted_at IS NULL ORDER BY m.seq DESC LIMIT 1)
        WHERE t.id = $1 AND t.last_message_id = $2`,
      [ref.threadId, ref.messageId],
    );
    await client.query('SELECT postline_refresh_event_copies($1)', [ref.messageId]);
    await appendEventForMembers(client, 'message.deleted', ref.threadId, await currentMessage(client, ref.messageId));
  });
}
