import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { generateToken, hashToken } from '../../src/auth/tokens.js';

export interface BenchUser {
  id: string;
  token: string;
}

async function call<T>(url: string, init: { method?: string; token?: string; body?: unknown } = {}): Promise<T> {
  const response = await fetch(url, {
    method: init.method ?? (init.body ? 'POST' : 'GET'),
    headers: { 'Content-Type': 'application/json', ...(init.token && { Authorization: `Bearer ${init.token}` }) },
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
  });
  if (!response.ok) throw new Error(`${init.method ?? 'POST'} ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Run `work` over `items` with at most `concurrency` at a time, keeping the order of results. */
export async function inParallel<I, O>(items: I[], concurrency: number, work: (item: I, index: number) => Promise<O>): Promise<O[]> {
  const results: O[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!, index);
      }
    }),
  );
  return results;
}

/**
 * `count` users with a session each, written straight into the database: signing up is not what
 * is measured, and hundreds of sign-ups from one address would meet the per-address limit.
 */
export async function seedUsers(databaseUrl: string, count: number): Promise<BenchUser[]> {
  const prefix = randomBytes(3).toString('hex');
  const tokens = Array.from({ length: count }, () => generateToken());
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO users (username, display_name, password_hash)
       SELECT 'b' || $1 || '_' || n, 'Bench ' || n, '!' FROM generate_series(1, $2::int) AS n RETURNING id::text`,
      [prefix, count],
    );
    await client.query(
      `INSERT INTO sessions (user_id, token_hash, expires_at) SELECT unnest($1::bigint[]), unnest($2::bytea[]), now() + interval '1 day'`,
      [rows.map((row) => row.id), tokens.map(hashToken)],
    );
    return rows.map((row, i) => ({ id: row.id, token: tokens[i]! }));
  } finally {
    await client.end();
  }
}

/** A group thread created by `owner` with `members`; returns its id. */
export async function createGroup(url: string, owner: BenchUser, members: BenchUser[], title: string): Promise<string> {
  const answer = await call<{ thread: { id: string } }>(`${url}/v1/threads`, {
    token: owner.token,
    body: { members: members.map((member) => member.id), title },
  });
  return answer.thread.id;
}

export async function sendOne(url: string, sender: BenchUser, threadId: string, body: string): Promise<string> {
  const answer = await call<{ message: { id: string } }>(`${url}/v1/threads/${threadId}/messages`, { token: sender.token, body: { body } });
  return answer.message.id;
}

export async function headCursor(url: string, user: BenchUser): Promise<string> {
  return (await call<{ cursor: string }>(`${url}/v1/poll`, { token: user.token })).cursor;
}
