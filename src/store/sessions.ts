import type { Pool } from 'pg';
import type { User } from '../contract.js';

export interface AuthenticatedSession {
  sessionId: string;
  user: User;
  /** When the token stops working (open streams and polls end then). */
  expiresAt: Date;
}

export async function insertSession(pool: Pool, userId: string, tokenHash: Buffer, ttlMs: number): Promise<void> {
  await pool.query(
    `INSERT INTO sessions (user_id, token_hash, expires_at)
     VALUES ($1, $2, now() + $3 * interval '1 millisecond')`,
    [userId, tokenHash, ttlMs],
  );
}

/** The live (unexpired) session a token hash belongs to. */
export async function findSession(pool: Pool, tokenHash: Buffer): Promise<AuthenticatedSession | undefined> {
  const { rows } = await pool.query<{ session_id: string; user: User; expires_at: Date }>(
    `SELECT s.id AS session_id, postline_user_json(u) AS user, s.expires_at
       FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.token_hash = $1 AND s.expires_at > now()`,
    [tokenHash],
  );
  const row = rows[0];
  return row && { sessionId: row.session_id, user: row.user, expiresAt: row.expires_at };
}

/** A user's live sessions, newest first (ids as strings, times as ISO text: the contract's `Session` without `current`). */
export async function listSessions(pool: Pool, userId: string): Promise<Array<{ id: string; createdAt: string; expiresAt: string }>> {
  const { rows } = await pool.query<{ id: string; createdAt: string; expiresAt: string }>(
    `SELECT s.id::text AS id, postline_iso(s.created_at) AS "createdAt", postline_iso(s.expires_at) AS "expiresAt"
       FROM sessions s WHERE s.user_id = $1 AND s.expires_at > now() ORDER BY s.id DESC`,
    [userId],
  );
  return rows;
}

/**
 * Revoke a session (of `ownerId`, when given). The row is deleted, so every instance's next lookup
 * fails at once; the NOTIFY in the same statement lets instances end the session's open streams
 * right away. Returns whether there was such a session.
 */
export async function deleteSession(pool: Pool, sessionId: string, ownerId?: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `WITH revoked AS (DELETE FROM sessions WHERE id = $1 AND ($2::bigint IS NULL OR user_id = $2) RETURNING id)
     SELECT pg_notify('postline_ephemeral', json_build_object('kind', 'revoked', 'sessionId', id::text)::text)
       FROM revoked`,
    [sessionId, ownerId ?? null],
  );
  return (rowCount ?? 0) > 0;
}

/** Our session ids are row ids; host JWT sessions (`host:…`) have no row. */
const isOwnSessionId = (sessionId: string) => /^\d+$/.test(sessionId);

/**
 * Of the given sessions, those that are still valid (open streams re-check them periodically).
 * Host JWT sessions have no row to re-check: they count as valid here, and end at their expiry.
 */
export async function liveSessionIds(pool: Pool, sessionIds: string[]): Promise<Set<string>> {
  const { rows } = await pool.query<{ id: string }>(
    'SELECT id::text FROM sessions WHERE id = ANY ($1::bigint[]) AND expires_at > now()',
    [sessionIds.filter(isOwnSessionId)],
  );
  return new Set([...sessionIds.filter((sessionId) => !isOwnSessionId(sessionId)), ...rows.map((row) => row.id)]);
}

export async function deleteExpiredSessions(pool: Pool): Promise<number> {
  const { rowCount } = await pool.query('DELETE FROM sessions WHERE expires_at <= now()');
  return rowCount ?? 0;
}
