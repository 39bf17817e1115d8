import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The same server as `url`, another database. */
export function databaseUrlFor(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

function adminUrl(): string {
  const url = process.env.POSTLINE_TEST_ADMIN_URL;
  if (!url) throw new Error('run the tests with `npm test` (test/run.ts prepares the database)');
  return url;
}

export interface TestDatabase {
  url: string;
  name: string;
  /** A client on this database for assertions against the tables. */
  query<Row extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<Row[]>;
  drop(): Promise<void>;
}

/** A fresh database cloned from the run's migrated template, or an empty one (`migrated: false`). */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `postline_test_${randomBytes(6).toString('hex')}`;
  const template = options.migrated === false ? 'template0' : process.env.POSTLINE_TEST_TEMPLATE;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrlFor(adminUrl(), name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // An idle connection the server ends (a database dropped with FORCE, a restart) must not crash
  // the test process from its 'error' event; queries on the pool still fail loudly.
  pool.on('error', () => {});
  return {
    url,
    name,
    async query(sql, params) {
      return (await pool.query(sql, params)).rows;
    },
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: adminUrl() });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Everything a request could change in the chat (counts, read markers, latest activity), to compare before and after. */
export async function chatState(db: TestDatabase): Promise<unknown> {
  return db.query(`SELECT
    (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM sessions) AS sessions,
    (SELECT count(*) FROM threads) AS threads, (SELECT count(*) FROM thread_members) AS members,
    (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM events) AS events,
    (SELECT sum(read_seq) FROM thread_members) AS read_markers,
    (SELECT sum(delivered_seq) FROM thread_members) AS delivered_markers,
    (SELECT md5(string_agg(concat_ws('|', id, body, reply_to_id, edited_at, deleted_at), ',' ORDER BY id)) FROM messages) AS message_texts,
    (SELECT md5(string_agg(concat_ws('|', message_id, emoji, user_id), ',' ORDER BY message_id, emoji, user_id)) FROM message_reactions) AS reactions,
    (SELECT max(updated_at) FROM threads) AS activity`);
}

/**
 * How many statements every pg client of this process (the instances' pools and LISTEN
 * connections) sends while `work` runs: for checks that something costs the database nothing.
 */
export async function statementsDuring(work: () => Promise<void>): Promise<number> {
  const query = pg.Client.prototype.query;
  let statements = 0;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    statements++;
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  try {
    await work();
  } finally {
    pg.Client.prototype.query = query;
  }
  return statements;
}
