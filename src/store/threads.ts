import type { Pool, PoolClient } from 'pg';
import { inTransaction } from '../db/pool.js';
import {
  BadRequestProblem,
  ConflictProblem,
  ForbiddenProblem,
  NotFoundProblem,
  ValidationProblem,
} from '../errors.js';
import type { Thread } from '../contract.js';
import { announceThreadUpdated, lockThreadOfMember, THREAD_NOT_FOUND } from './membership.js';

async function threadAsSeenBy(db: Pool | PoolClient, threadId: string, viewerId: string): Promise<Thread> {
  const { rows } = await db.query<{ thread: Thread }>('SELECT postline_thread_json($1, $2) AS thread', [
    threadId,
    viewerId,
  ]);
  return rows[0]!.thread;
}

async function assertUsersExist(db: Pool | PoolClient, userIds: string[], path: (index: number) => string) {
  const { rows } = await db.query<{ id: string }>('SELECT id::text FROM users WHERE id = ANY ($1::bigint[])', [userIds]);
  const known = new Set(rows.map((row) => row.id));
  const errors = userIds.flatMap((userId, index) =>
    known.has(userId) ? [] : [{ path: path(index), message: 'no such user' }],
  );
  if (errors.length) throw new ValidationProblem(errors);
}

/**
 * Create a thread with the creator and `memberIds`. One other member and no title makes a direct
 * thread, unique per pair: asking again answers the existing one (`created: false`).
 */
export async function createThread(
  pool: Pool,
  input: { creatorId: string; memberIds: string[]; title: string | null; maxMembers: number },
): Promise<{ thread: Thread; created: boolean }> {
  const members = [...new Set([input.creatorId, ...input.memberIds])];
  await assertUsersExist(pool, input.memberIds, (index) => `members.${index}`);
  if (members.length > input.maxMembers) {
    throw new ValidationProblem([{ path: 'members', message: `a thread has at most ${input.maxMembers} members` }]);
  }
  const direct = members.length === 2 && input.title === null;
  const [low, high] = [...members].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));

  return inTransaction(pool, async (client) => {
    const inserted = await client.query<{ id: string }>(
      direct
        ? `INSERT INTO threads (kind, created_by, direct_user_low, direct_user_high) VALUES ('direct', $1, $2, $3)
           ON CONFLICT (direct_user_low, direct_user_high) DO NOTHING RETURNING id`
        : `INSERT INTO threads (kind, title, created_by) VALUES ('group', $2, $1) RETURNING id`,
      direct ? [input.creatorId, low, high] : [input.creatorId, input.title],
    );
    const threadId = inserted.rows[0]?.id;
    if (threadId === undefined) {
      const existing = await client.query<{ id: string }>(
        'SELECT id FROM threads WHERE direct_user_low = $1 AND direct_user_high = $2',
        [low, high],
      );
      return { thread: await threadAsSeenBy(client, existing.rows[0]!.id, input.creatorId), created: false };
    }
    await client.query(
      'INSERT INTO thread_members (thread_id, user_id) SELECT $1, unnest($2::bigint[])',
      [threadId, members],
    );
    await announceThreadUpdated(client, threadId);
    return { thread: await threadAsSeenBy(client, threadId, input.creatorId), created: true };
  });
}

/** A thread as its member sees it; 404 for anyone else. */
export async function getThread(pool: Pool, threadId: string, viewerId: string): Promise<Thread> {
  const { rows } = await pool.query<{ thread: Thread }>(
    `SELECT postline_thread_json(thread_id, user_id) AS thread FROM thread_members
      WHERE thread_id = $1 AND user_id = $2`,
    [threadId, viewerId],
  );
  if (!rows[0]) throw new NotFoundProblem(THREAD_NOT_FOUND);
  return rows[0].thread;
}

/** The viewer's threads, newest activity first; `before` is the last thread id of the previous page. */
export async function listThreads(
  pool: Pool,
  viewerId: string,
  page: { limit: number; before?: string | undefined },
): Promise<Thread[]> {
  if (page.before !== undefined) {
    const { rowCount } = await pool.query('SELECT 1 FROM thread_members WHERE thread_id = $1 AND user_id = $2', [
      page.before,
      viewerId,
    ]);
    if (!rowCount) throw new BadRequestProblem('before must be the id of one of your threads.');
  }
  const { rows } = await pool.query<{ thread: Thread }>(
    `SELECT postline_thread_json(t.id, $1) AS thread
       FROM thread_members m JOIN threads t ON t.id = m.thread_id
      WHERE m.user_id = $1
        AND ($2::bigint IS NULL OR (t.updated_at, t.id) < (SELECT b.updated_at, b.id FROM threads b WHERE b.id = $2))
      ORDER BY t.updated_at DESC, t.id DESC
      LIMIT $3`,
    [viewerId, page.before ?? null, page.limit],
  );
  return rows.map((row) => row.thread);
}

/** Add a member (any member may). Adding a current member changes nothing. */
export async function addMember(
  pool: Pool,
  input: { threadId: string; actorId: string; userId: string; maxMembers: number },
): Promise<Thread> {
  await assertUsersExist(pool, [input.userId], () => 'userId');
  return inTransaction(pool, async (client) => {
    const thread = await lockThreadOfMember(client, input.threadId, input.actorId);
    const { rows } = await client.query<{ count: number; present: boolean }>(
      `SELECT count(*)::int AS count, bool_or(user_id = $2) AS present FROM thread_members WHERE thread_id = $1`,
      [input.threadId, input.userId],
    );
    const { count, present } = rows[0]!;
    if (!present) {
      if (thread.kind === 'direct') throw new ConflictProblem('A direct thread has exactly two members.');
      if (count >= input.maxMembers) throw new ConflictProblem(`A thread has at most ${input.maxMembers} members.`);
      // A new member starts with everything read: unreadCount counts what arrives after joining.
      await client.query(
        `INSERT INTO thread_members (thread_id, user_id, read_seq) SELECT id, $2, last_seq FROM threads WHERE id = $1`,
        [input.threadId, input.userId],
      );
      await client.query('UPDATE threads SET updated_at = now() WHERE id = $1', [input.threadId]);
      await announceThreadUpdated(client, input.threadId);
    }
    return threadAsSeenBy(client, input.threadId, input.actorId);
  });
}

/** Remove a member: anyone may leave; only the creator removes others. Direct threads keep both. */
export async function removeMember(
  pool: Pool,
  input: { threadId: string; actorId: string; userId: string },
): Promise<void> {
  await inTransaction(pool, async (client) => {
    const thread = await lockThreadOfMember(client, input.threadId, input.actorId);
    if (input.userId !== input.actorId && thread.createdBy !== input.actorId) {
      throw new ForbiddenProblem("Only the thread's creator may remove other members.");
    }
    if (thread.kind === 'direct') throw new ConflictProblem('Direct threads cannot be left.');
    const removed = await client.query('DELETE FROM thread_members WHERE thread_id = $1 AND user_id = $2', [
      input.threadId,
      input.userId,
    ]);
    if (!removed.rowCount) throw new NotFoundProblem('That user is not a member of this thread.');
    await client.query('UPDATE threads SET updated_at = now() WHERE id = $1', [input.threadId]);
    await client.query(
      `SELECT postline_append_event('thread.removed', $1, ARRAY[$2::bigint], $3::json)`,
      [input.threadId, input.userId, JSON.stringify({ threadId: input.threadId })],
    );
    await announceThreadUpdated(client, input.threadId);
  });
}
