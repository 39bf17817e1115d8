import type { Pool } from 'pg';
import type { Message } from '../contract.js';
import { inTransaction } from '../db/pool.js';
import { ConflictProblem } from '../errors.js';
import { appendEventForMembers } from './membership.js';
import { currentMessage, lockMessage, type MessageRef } from './messages.js';

/**
 * Add (`added: true`) or take back one's reaction `emoji` to a message. Idempotent per user and
 * emoji: only a change appends a `reaction.added` / `reaction.removed` event, with
 * `{messageId, userId, emoji, reactions}` (the message's reactions after the change; no text, so
 * the event log holds no further copy of it). A message carries at most `maxDistinct` emoji; a
 * new one past that, or a reaction to a deleted message, is 409.
 */
export async function setReaction(
  pool: Pool,
  ref: MessageRef,
  input: { emoji: string; added: boolean; maxDistinct: number },
): Promise<Message> {
  return inTransaction(pool, async (client) => {
    // The message row lock makes the distinct-emoji count and the insert one step.
    const message = await lockMessage(client, ref, 'share');
    if (message.deleted && input.added) throw new ConflictProblem('The message was deleted.');
    if (input.added) {
      const { rows } = await client.query<{ kinds: number; present: boolean }>(
        `SELECT count(DISTINCT emoji)::int AS kinds, bool_or(emoji = $2) AS present FROM message_reactions WHERE message_id = $1`,
        [ref.messageId, input.emoji],
      );
      if (!rows[0]!.present && rows[0]!.kinds >= input.maxDistinct) {
        throw new ConflictProblem(`A message carries at most ${input.maxDistinct} different reactions.`);
      }
    }
    const changed = await client.query(
      input.added
        ? 'INSERT INTO message_reactions (message_id, emoji, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING'
        : 'DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3',
      [ref.messageId, input.emoji, ref.userId],
    );
    const now = await currentMessage(client, ref.messageId);
    if (changed.rowCount) {
      await appendEventForMembers(client, input.added ? 'reaction.added' : 'reaction.removed', ref.threadId, {
        messageId: ref.messageId,
        userId: ref.userId,
        emoji: input.emoji,
        reactions: now.reactions,
      });
    }
    return now;
  });
}
