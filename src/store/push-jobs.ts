import type { Pool, PoolClient } from 'pg';
import type { Message } from '../contract.js';

/** A push job claimed for delivery: the message and how often delivery was tried. */
export interface PushJob {
  id: string;
  messageId: string;
  attempts: number;
}

/** A recipient who has not received the message, with unread counts for the app's badge. */
export interface PushRecipient {
  userId: string;
  /** The host's id of the user (`sub`), or null for an own account. */
  externalId: string | null;
  /** Unread messages in all their threads. */
  unreadCount: number;
  /** Unread messages in this thread. */
  threadUnreadCount: number;
}

/** Turn jobs on or off for messages sent from now on, with the grace period before each is looked at. */
export async function setPushSettings(pool: Pool, enabled: boolean, graceMs: number): Promise<void> {
  await pool.query(`UPDATE push_settings SET enabled = $1, grace = $2 * interval '1 millisecond'`, [enabled, graceMs]);
}

/**
 * Claim up to `limit` due jobs in `client`'s transaction. The row locks are held until it ends,
 * so another instance skips these jobs meanwhile; if this one dies, they are due again at once.
 */
export async function claimDueJobs(client: PoolClient, limit: number): Promise<PushJob[]> {
  const { rows } = await client.query<{ id: string; message_id: string; attempts: number }>(
    `SELECT id, message_id, attempts FROM push_jobs
      WHERE state = 'pending' AND due_at <= now()
      ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  return rows.map((row) => ({ id: row.id, messageId: row.message_id, attempts: row.attempts }));
}

/**
 * The message as it is now (edited text included) and, decided by postline_push_recipients, who
 * has not received it: nobody for a deleted message. Jobs hold only the message id, so the text
 * that leaves is read here, at delivery time, and a deleted message's text is never pushed.
 */
export async function pushSubject(client: PoolClient, messageId: string): Promise<{ message: Message; recipients: PushRecipient[] } | undefined> {
  const { rows } = await client.query<{ message: Message; recipients: PushRecipient[] }>(
    `SELECT postline_message_json(m) AS message,
            (SELECT coalesce(json_agg(json_build_object('userId', r.user_id::text, 'externalId', r.external_id,
                                                        'unreadCount', r.unread_count, 'threadUnreadCount', r.thread_unread_count)
                                      ORDER BY r.user_id), '[]')
               FROM postline_push_recipients(m.id) r) AS recipients
       FROM messages m WHERE m.id = $1`,
    [messageId],
  );
  return rows[0];
}

/** A job is done: `sent`, `failed` (every attempt failed) or `skipped` (nobody to tell, or the message was deleted). */
export async function finishJob(client: PoolClient, jobId: string, state: 'sent' | 'failed' | 'skipped', attempts: number, error?: string): Promise<void> {
  await client.query(`UPDATE push_jobs SET state = $2, attempts = $3, last_error = $4, done_at = now() WHERE id = $1`, [
    jobId,
    state,
    attempts,
    error ?? null,
  ]);
}

/** An attempt failed: try again `delayMs` from now (the clock, not the start of the claiming transaction). */
export async function retryJob(client: PoolClient, jobId: string, attempts: number, delayMs: number, error: string): Promise<void> {
  await client.query(`UPDATE push_jobs SET attempts = $2, last_error = $3, due_at = clock_timestamp() + $4 * interval '1 millisecond' WHERE id = $1`, [
    jobId,
    attempts,
    error,
    delayMs,
  ]);
}

export async function pendingJobCount(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ count: number }>(`SELECT count(*)::int AS count FROM push_jobs WHERE state = 'pending'`);
  return rows[0]!.count;
}

/** Forget jobs finished more than `olderThanMs` ago. */
export async function deleteFinishedJobs(pool: Pool, olderThanMs: number): Promise<number> {
  const { rowCount } = await pool.query(`DELETE FROM push_jobs WHERE state <> 'pending' AND done_at < now() - $1 * interval '1 millisecond'`, [
    olderThanMs,
  ]);
  return rowCount ?? 0;
}
