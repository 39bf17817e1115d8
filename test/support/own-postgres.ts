import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/db/embedded-postgres.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import { databaseUrlFor } from './database.js';

const logger = createLogger('warn');
const FLAGS = ['-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'];

/**
 * A Postgres cluster of a test's own (not the run's shared one), so the test may stop and start
 * it. It keeps its port across restarts, as a real server does.
 */
export class OwnPostgres {
  private running: RunningPostgres | undefined;

  private constructor(
    private readonly dir: string,
    readonly port: number,
    /** The migrated `postline` database on it. */
    readonly url: string,
  ) {}

  static async start(): Promise<OwnPostgres> {
    const dir = await mkdtemp(path.join(tmpdir(), 'postline-fault-'));
    await chmod(dir, 0o711); // as root, Postgres runs as the postgres user and must enter it
    const port = await freePort();
    const running = await startEmbeddedPostgres({ dataDir: dir, port, logger, postgresFlags: FLAGS });
    const admin = new pg.Client({ connectionString: running.url });
    await admin.connect();
    await admin.query('CREATE DATABASE postline');
    await admin.end();
    const url = databaseUrlFor(running.url, 'postline');
    await migrate(url, logger);
    const own = new OwnPostgres(dir, port, url);
    own.running = running;
    return own;
  }

  /** Stop the server (a fast shutdown: sessions are cut, as in a restart or failover). */
  async stop(): Promise<void> {
    await this.running?.stop('fast');
    this.running = undefined;
  }

  /** Start it again on the same port and data. */
  async restart(): Promise<void> {
    this.running = await startEmbeddedPostgres({ dataDir: this.dir, port: this.port, logger, postgresFlags: FLAGS });
  }

  async query<Row extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<Row[]> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      return (await client.query<Row>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
