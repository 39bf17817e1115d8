import pg from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { DatabaseUnreachableError, describeDatabaseUrl } from './pool.js';

export interface DatabaseServer {
  url: string;
  /** Stops the embedded Postgres this process started; a no-op otherwise. */
  stop(): Promise<void>;
}

/** Fail fast, in one line and without credentials, when Postgres is not there. */
async function assertReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseUnreachableError(`cannot reach Postgres at ${describeDatabaseUrl(url)}: ${reason}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** DATABASE_URL when set, else the embedded Postgres kept in POSTLINE_DATA_DIR. */
export async function openDatabase(config: Config, logger: Logger): Promise<DatabaseServer> {
  const server = config.databaseUrl
    ? { url: config.databaseUrl, stop: async () => {} }
    : await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
  try {
    await assertReachable(server.url);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
