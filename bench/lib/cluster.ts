import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import { spawnServer, type ServerProcess } from '../../test/support/process.js';

const logger = createLogger('warn');

export interface Cluster {
  databaseUrl: string;
  /** Where each instance writes its logs (at the default level, info: one line per request). */
  logFiles: string[];
  instances: Array<{ url: string; pid: number; process: ServerProcess }>;
  stop(): Promise<void>;
}


/**
 * A Postgres (a fresh database on DATABASE_URL's server, or a throwaway embedded cluster with
 * default durability settings) and `count` postline instances on it, each its own process,
 * running as postline ships: every setting at its default (rate limits on, request logs at
 * info, written to a file by the process itself), unless `env` (from --config) says otherwise.
 */
export async function startCluster(count: number, env: Record<string, string> = {}): Promise<Cluster> {
  const logDir = await mkdtemp(path.join(tmpdir(), 'postline-bench-logs-'));
  let stopPostgres = async () => {};
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const dir = await mkdtemp(path.join(tmpdir(), 'postline-bench-'));
    await chmod(dir, 0o711);
    const embedded = await startEmbeddedPostgres({ dataDir: dir, port: 0, logger, postgresFlags: ['-c', 'max_connections=300'] });
    serverUrl = embedded.url;
    stopPostgres = async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const database = `postline_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const databaseUrl = url.toString();
  await migrate(databaseUrl, logger);

  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  // BENCH_PROFILE_DIR=dir: each instance writes a V8 CPU profile there when it stops.
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const logFiles = ports.map((_, index) => path.join(logDir, `instance-${index}.log`));
  const processes = ports.map((port, index) =>
    spawnServer({ ...env, DATABASE_URL: databaseUrl, PORT: String(port) }, { nodeFlags: profile, logFile: logFiles[index] }),
  );
  const urls = await Promise.all(processes.map((server) => server.listening));
  return {
    databaseUrl,
    logFiles,
    instances: processes.map((server, index) => ({ url: urls[index]!, pid: server.child.pid!, process: server })),
    async stop() {
      for (const server of processes) server.child.kill('SIGTERM');
      await Promise.all(processes.map((server) => server.exited));
      const cleanup = new pg.Client({ connectionString: serverUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await cleanup.end();
      await stopPostgres();
      await rm(logDir, { recursive: true, force: true });
    },
  };
}
