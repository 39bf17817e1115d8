import type { Pool } from 'pg';
import type { User } from '../contract.js';

/** Insert a user; undefined when the username is taken. */
export async function insertUser(
  pool: Pool,
  input: { username: string; displayName: string; passwordHash: string },
): Promise<User | undefined> {
  const { rows } = await pool.query<{ user: User }>(
    `INSERT INTO users (username, display_name, password_hash) VALUES ($1, $2, $3)
     ON CONFLICT (username) DO NOTHING
     RETURNING postline_user_json(users) AS user`,
    [input.username, input.displayName, input.passwordHash],
  );
  return rows[0]?.user;
}

/** The user and stored password hash for a login attempt (host users have none). */
export async function findCredentials(
  pool: Pool,
  username: string,
): Promise<{ user: User; passwordHash: string } | undefined> {
  const { rows } = await pool.query<{ user: User; password_hash: string }>(
    'SELECT postline_user_json(users) AS user, password_hash FROM users WHERE username = $1 AND password_hash IS NOT NULL',
    [username],
  );
  const row = rows[0];
  return row && { user: row.user, passwordHash: row.password_hash };
}

export async function findUsersByUsername(pool: Pool, username: string): Promise<User[]> {
  const { rows } = await pool.query<{ user: User }>(
    'SELECT postline_user_json(users) AS user FROM users WHERE username = $1',
    [username],
  );
  return rows.map((row) => row.user);
}

/**
 * The user of a host application's `sub`, created on first sight; its display name follows the
 * host's. Costs one read when nothing changed, and a write only when something did.
 */
export async function upsertHostUser(pool: Pool, externalId: string, displayName: string): Promise<User> {
  const { rows } = await pool.query<{ user: User }>('SELECT postline_user_json(users) AS user FROM users WHERE external_id = $1', [externalId]);
  if (rows[0] && rows[0].user.displayName === displayName) return rows[0].user;
  const upserted = await pool.query<{ user: User }>(
    `INSERT INTO users (username, display_name, external_id) VALUES ('~' || $1, $2, $1)
     ON CONFLICT (external_id) DO UPDATE SET display_name = excluded.display_name
     RETURNING postline_user_json(users) AS user`,
    [externalId, displayName],
  );
  return upserted.rows[0]!.user;
}

/** Most users one people search answers. */
export const PEOPLE_SEARCH_LIMIT = 20;

/** `text` as a LIKE pattern matching itself (backslash is LIKE's escape character). */
const LIKE_LITERAL = (text: string) => `replace(replace(replace(${text}, '\\', '\\\\'), '%', '\\%'), '_', '\\_')`;
/** A tsquery lexeme, quoted, as tsquery input wants it (quotes and backslashes doubled). */
const TSQUERY_LITERAL = (text: string) => `'''' || replace(replace(${text}, '\\', '\\\\'), '''', '''''') || ''''`;

/**
 * Users whose username starts with `q` (case-insensitive), or whose display name has, for every
 * word of `q`, a word starting with it (case- and accent-insensitive: "nguyen v" finds "Nguyễn
 * Văn An"). The exact username first, then by username; at most {@link PEOPLE_SEARCH_LIMIT}. The
 * words become quoted prefix lexemes (`'nguyen':* & 'v':*`): nothing typed is tsquery syntax.
 */
export async function searchUsers(pool: Pool, q: string): Promise<User[]> {
  const { rows } = await pool.query<{ user: User }>(
    `WITH query AS (
       SELECT lower($1) AS name,
              (SELECT string_agg(${TSQUERY_LITERAL('lexeme')} || ':*', ' & ') FROM unnest(to_tsvector('postline_search', $1)))::tsquery AS words)
     SELECT postline_user_json(u) AS user FROM users u, query
      WHERE u.username LIKE ${LIKE_LITERAL('query.name')} || '%'
         OR to_tsvector('postline_search', u.display_name) @@ query.words
      ORDER BY u.username = query.name DESC, u.username
      LIMIT $2`,
    [q, PEOPLE_SEARCH_LIMIT],
  );
  return rows.map((row) => row.user);
}
