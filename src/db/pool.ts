import pg from 'pg';
import type { Logger } from '../log.js';

/** Raised when Postgres cannot be reached at start; the message is one line without secrets. */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/** host:port/database of a connection URL, without the credentials, for messages and logs. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  } catch {
    return 'the configured DATABASE_URL';
  }
}

/**
 * The shared connection pool. Connection attempts and statements are bounded so that an outage
 * turns into quick 503 answers rather than hanging requests.
 */
export function createPool(url: string, settings: { size: number; statementTimeoutMs: number }, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.size,
    connectionTimeoutMillis: 5000,
    statement_timeout: settings.statementTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'postline',
  });
  // An idle client losing its connection (Postgres restart) must not crash the process.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle Postgres connection failed'));
  return pool;
}

/** Run `work` in a transaction on one pooled client; rolls back on any error. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
