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

/**
 * Refuse `userIds` unless each is a user the actor may add: one that exists, and neither blocked
 * by nor blocking the actor. The answer does not say which ids fail, nor why: a list of ids must
 * not tell which of them exist (or who blocked the caller).
 */
async function assertAddable(db: Pool | PoolClient, actorId: string, userIds: string[], field: string): Promise<void> {
  const { rows } = await db.query<{ addable: number }>(
    'SELECT count(*)::int AS addable FROM users WHERE id = ANY ($2::bigint[]) AND NOT postline_blocked($1, id)',
    [actorId, [...new Set(userIds)]],
  );
  if (rows[0]!.addable < new Set(userIds).size) {
    throw new ValidationProblem([{ path: field, message: NOT_ADDABLE }]);
  }
}

/** The one answer for an unknown user id and for a user who cannot be added by the caller. */
export const NOT_ADDABLE = 'names a user who does not exist or cannot be added by you';

/**
 * Make `userIds` members of a thread, added by `actorId`. The actor is an accepted member; each
 * other one is too if they and the actor are contacts (accepted members of a common thread,
 * neither blocking the other), else the thread is a *request* for them (listed apart, no
 * presence, typing or push until they accept it or reply). A new member starts with everything
 * read: unreadCount counts what arrives after joining.
 */
async function insertMembers(client: PoolClient, threadId: string, actorId: string, userIds: string[]): Promise<void> {
  await client.query(
    `INSERT INTO thread_members (thread_id, user_id, read_seq, accepted)
     SELECT t.id, m.user_id, t.last_seq, m.user_id = $3 OR postline_contacts($3, m.user_id)
       FROM threads t, unnest($2::bigint[]) AS m(user_id) WHERE t.id = $1`,
    [threadId, userIds, actorId],
  );
}

/**
 * Create a thread with the creator and `memberIds`. One other member and no title makes a direct
 * thread, unique per pair: asking again answers the existing one (`created: false`), and brings
 * back whichever of the two had left it (`rejoined`: the other one as a request again, unless
 * they are contacts).
 */
export async function createThread(
  pool: Pool,
  input: { creatorId: string; memberIds: string[]; title: string | null; maxMembers: number },
): Promise<{ thread: Thread; created: boolean; rejoined: boolean }> {
  const members = [...new Set([input.creatorId, ...input.memberIds])];
  await assertAddable(pool, input.creatorId, input.memberIds, 'members');
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
    if (threadId !== undefined) {
      await insertMembers(client, threadId, input.creatorId, members);
      await announceThreadUpdated(client, threadId);
      return { thread: await threadAsSeenBy(client, threadId, input.creatorId), created: true, rejoined: false };
    }
    // The pair's direct thread exists: lock it (as membership changes do), and bring back who left.
    const existing = await client.query<{ id: string; missing: string[] }>(
      `SELECT t.id, array(SELECT u FROM unnest(ARRAY[t.direct_user_low, t.direct_user_high]) AS u
                           WHERE NOT EXISTS (SELECT 1 FROM thread_members m WHERE m.thread_id = t.id AND m.user_id = u))::text[] AS missing
         FROM threads t WHERE direct_user_low = $1 AND direct_user_high = $2 FOR NO KEY UPDATE`,
      [low, high],
    );
    const { id, missing } = existing.rows[0]!;
    if (missing.length > 0) {
      await insertMembers(client, id, input.creatorId, missing);
      await client.query('UPDATE threads SET updated_at = now() WHERE id = $1', [id]);
      await announceThreadUpdated(client, id);
    }
    return { thread: await threadAsSeenBy(client, id, input.creatorId), created: false, rejoined: missing.length > 0 };
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

/**
 * The viewer's threads, newest activity first; `before` is the last thread id of the previous
 * page. `requests`: the threads that are requests for the viewer instead (they are listed apart).
 */
export async function listThreads(
  pool: Pool,
  viewerId: string,
  page: { limit: number; before?: string | undefined; requests: boolean },
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
      WHERE m.user_id = $1 AND m.accepted = NOT $4
        AND ($2::bigint IS NULL OR (t.updated_at, t.id) < (SELECT b.updated_at, b.id FROM threads b WHERE b.id = $2))
      ORDER BY t.updated_at DESC, t.id DESC
      LIMIT $3`,
    [viewerId, page.before ?? null, page.limit, page.requests],
  );
  return rows.map((row) => row.thread);
}

/**
 * Add a member (any member may; the thread is a request for them unless they and the actor are
 * contacts). Adding a current member changes nothing.
 */
export async function addMember(
  pool: Pool,
  input: { threadId: string; actorId: string; userId: string; maxMembers: number },
): Promise<Thread> {
  await assertAddable(pool, input.actorId, [input.userId], 'userId');
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
      await insertMembers(client, input.threadId, input.actorId, [input.userId]);
      await client.query('UPDATE threads SET updated_at = now() WHERE id = $1', [input.threadId]);
      await announceThreadUpdated(client, input.threadId);
    }
    return threadAsSeenBy(client, input.threadId, input.actorId);
  });
}

/**
 * Remove a member: anyone may leave (a direct thread too: asking for it again brings them back,
 * see createThread); only the creator removes others, and nobody removes the other member of a
 * direct thread.
 */
export async function removeMember(
  pool: Pool,
  input: { threadId: string; actorId: string; userId: string },
): Promise<void> {
  await inTransaction(pool, async (client) => {
    const thread = await lockThreadOfMember(client, input.threadId, input.actorId);
    if (input.userId !== input.actorId && thread.createdBy !== input.actorId) {
      throw new ForbiddenProblem("Only the thread's creator may remove other members.");
    }
    if (thread.kind === 'direct' && input.userId !== input.actorId) throw new ConflictProblem('The other member of a direct thread cannot be removed; leave it instead.');
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

/**
 * Accept a thread that is a request for `userId`: from now on it is an ordinary thread for them
 * (listed with the others; presence, typing and pushes between them and the other members who
 * accepted). Accepting an accepted thread changes nothing. 404 for non-members.
 */
export async function acceptThread(pool: Pool, threadId: string, userId: string): Promise<Thread> {
  return inTransaction(pool, async (client) => {
    await lockThreadOfMember(client, threadId, userId);
    const accepted = await client.query('UPDATE thread_members SET accepted = true WHERE thread_id = $1 AND user_id = $2 AND NOT accepted', [threadId, userId]);
    if (accepted.rowCount) await announceThreadUpdated(client, threadId);
    return threadAsSeenBy(client, threadId, userId);
  });
}
