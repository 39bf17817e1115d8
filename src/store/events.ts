import type { Pool } from 'pg';

/** A row of the event log as the delivery paths read it: the envelope stays JSON text. */
export interface EventRow {
  id: string;
  audience: string[];
  type: string;
  envelope: string;
}

const EVENT_COLUMNS = 'id, type, audience::text[] AS audience, envelope::text AS envelope';

/** The next events after `afterId`, for everyone (an instance's feed), in id order. */
export async function readEventsAfter(pool: Pool, afterId: number, limit: number): Promise<EventRow[]> {
  const { rows } = await pool.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2`,
    [afterId, limit],
  );
  return rows;
}

/** The next events after `afterId` that `userId` may see, in id order (a resuming client's backlog). */
export async function readVisibleEventsAfter(pool: Pool, userId: string, afterId: number, limit: number): Promise<EventRow[]> {
  const { rows } = await pool.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE id > $1 AND audience @> ARRAY[$2::bigint] ORDER BY id LIMIT $3`,
    [afterId, userId, limit],
  );
  return rows;
}

/** The newest committed event id (0 when there is none) and the oldest id retention kept. */
export async function eventLogBounds(pool: Pool): Promise<{ head: number; prunedThrough: number }> {
  const { rows } = await pool.query<{ head: string; pruned_through: string }>(
    'SELECT (SELECT coalesce(max(id), 0) FROM events) AS head, pruned_through FROM event_retention',
  );
  return { head: Number(rows[0]!.head), prunedThrough: Number(rows[0]!.pruned_through) };
}

/** Delete up to `batch` events older than `olderThanMs`; returns how many went. */
export async function pruneEvents(pool: Pool, olderThanMs: number, batch: number): Promise<number> {
  const { rows } = await pool.query<{ deleted: number }>(
    `SELECT postline_prune_events($1 * interval '1 millisecond', $2) AS deleted`,
    [olderThanMs, batch],
  );
  return rows[0]!.deleted;
}
