/**
 * What both peers store, the way a tutorial would: users with a session token, threads' members,
 * and messages, one INSERT each. Seeding writes straight into it, as the bench does for postline.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS peer_sessions (token text PRIMARY KEY, user_id bigint NOT NULL);
CREATE TABLE IF NOT EXISTS peer_members (thread_id bigint NOT NULL, user_id bigint NOT NULL, PRIMARY KEY (thread_id, user_id));
CREATE INDEX IF NOT EXISTS peer_members_user ON peer_members (user_id);
CREATE TABLE IF NOT EXISTS peer_messages (
  id bigserial PRIMARY KEY,
  thread_id bigint NOT NULL,
  sender_id bigint NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- @socket.io/postgres-adapter's table for packets over NOTIFY's 8000 bytes (its README's schema).
CREATE TABLE IF NOT EXISTS socket_io_attachments (id bigserial UNIQUE, created_at timestamptz DEFAULT now(), payload bytea);`;

export interface PeerUser {
  id: string;
  token: string;
}

/** `users` users (ids 1…n), each with a token, in threads of `groupSize` (thread i holds users i·size+1 …). */
export async function seedPeer(databaseUrl: string, users: number, groupSize: number): Promise<{ users: PeerUser[]; threadIds: string[] }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(SCHEMA);
    const seeded = Array.from({ length: users }, (_, i) => ({ id: String(i + 1), token: randomBytes(24).toString('base64url') }));
    await client.query('INSERT INTO peer_sessions (token, user_id) SELECT unnest($1::text[]), unnest($2::bigint[])', [seeded.map((u) => u.token), seeded.map((u) => u.id)]);
    const threads = Math.ceil(users / groupSize);
    await client.query(
      `INSERT INTO peer_members (thread_id, user_id) SELECT (n - 1) / $2 + 1, n FROM generate_series(1, $1::int) AS n`,
      [users, groupSize],
    );
    return { users: seeded, threadIds: Array.from({ length: threads }, (_, i) => String(i + 1)) };
  } finally {
    await client.end();
  }
}

/** The user of a bearer token, or undefined (one query per request, as the tutorials do). */
export async function userOf(pool: pg.Pool, authorization: string | undefined): Promise<string | undefined> {
  const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
  if (!token) return undefined;
  const { rows } = await pool.query<{ user_id: string }>('SELECT user_id::text FROM peer_sessions WHERE token = $1', [token]);
  return rows[0]?.user_id;
}

export async function threadsOf(pool: pg.Pool, userId: string): Promise<string[]> {
  const { rows } = await pool.query<{ thread_id: string }>('SELECT thread_id::text FROM peer_members WHERE user_id = $1', [userId]);
  return rows.map((row) => row.thread_id);
}

/**
 * The message as the contract's `message.created` envelope (the shape the load generators read),
 * built by the INSERT's statement. `notify`: the same statement also sends it as the NOTIFY payload.
 */
export async function insertMessage(pool: pg.Pool, threadId: string, senderId: string, body: string, notify?: string): Promise<{ id: string; envelope: string } | undefined> {
  const { rows } = await pool.query<{ id: string; envelope: string }>(
    `WITH message AS (
       INSERT INTO peer_messages (thread_id, sender_id, body)
       SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM peer_members WHERE thread_id = $1 AND user_id = $2)
       RETURNING id, thread_id, sender_id, body, created_at
     ), envelope AS (
       SELECT id, json_build_object('type', 'message.created', 'threadId', thread_id::text, 'at', created_at,
                'data', json_build_object('id', id::text, 'threadId', thread_id::text, 'senderId', sender_id::text, 'body', body, 'createdAt', created_at))::text AS envelope
         FROM message
     )
     SELECT id::text, envelope${notify ? ', pg_notify($4, envelope)' : ''} FROM envelope`,
    notify ? [threadId, senderId, body, notify] : [threadId, senderId, body],
  );
  return rows[0];
}
