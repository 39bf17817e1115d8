import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import { spawnServer, type ServerProcess } from '../../test/support/process.js';

const logger = createLogger('warn');

/** What runs on the instances: postline, or one of the peers it is compared with (bench/peers/). */
export type System = 'postline' | 'naive' | 'socketio';

/** The Postgres server every system of a run gets a fresh database on. */
export interface PostgresServer {
  url: string;
  /** The postmaster's pid, for its CPU; undefined for DATABASE_URL's server. */
  pid: number | undefined;
  stop(): Promise<void>;
}

/** DATABASE_URL's server, or a throwaway embedded cluster with default durability settings. */
export async function startPostgres(): Promise<PostgresServer> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, pid: undefined, stop: async () => {} };
  const dir = await mkdtemp(path.join(tmpdir(), 'postline-bench-'));
  await chmod(dir, 0o711);
  const embedded = await startEmbeddedPostgres({ dataDir: dir, port: 0, logger, postgresFlags: ['-c', 'max_connections=300'] });
  return {
    url: embedded.url,
    pid: Number((await readFile(path.join(dir, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[0]),
    async stop() {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Cluster {
  system: System;
  databaseUrl: string;
  /** Where each instance writes its logs (postline's at the default level, info: one line per request). */
  logFiles: string[];
  instances: Array<{ url: string; pid: number; process: ServerProcess }>;
  /** Start one more instance on the same database, with the same settings (stopped with the rest). */
  addInstance(): Promise<{ url: string; pid: number; process: ServerProcess }>;
  /** Stop the instances and drop the database (the server stays). */
  stop(): Promise<void>;
}

const PROGRAMS: Record<System, string> = { postline: 'src/main.ts', naive: 'bench/peers/naive.ts', socketio: 'bench/peers/socketio.ts' };

/**
 * A fresh database on `server` and `count` instances of `system` on it, each its own process.
 * postline runs as it ships: every setting at its default (rate limits on, request logs at info,
 * written to a file by the process itself), unless `env` (from --config) says otherwise; its
 * migrations are applied first. The peers' tables are made by their seeding (bench/peers/store.ts).
 */
export async function startCluster(
  server: PostgresServer,
  count: number,
  options: { system?: System; env?: Record<string, string>; synchronousCommit?: 'on' | 'off' } = {},
): Promise<Cluster> {
  const system = options.system ?? 'postline';
  const logDir = await mkdtemp(path.join(tmpdir(), 'postline-bench-logs-'));
  const database = `postline_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  if (options.synchronousCommit) await admin.query(`ALTER DATABASE ${database} SET synchronous_commit = ${options.synchronousCommit}`);
  await admin.end();
  const url = new URL(server.url);
  url.pathname = `/${database}`;
  const databaseUrl = url.toString();
  if (system === 'postline') await migrate(databaseUrl, logger);

  // BENCH_PROFILE_DIR=dir: each instance writes a V8 CPU profile there when it stops.
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const processes: ServerProcess[] = [];
  const logFiles: string[] = [];
  const instances: Cluster['instances'] = [];
  const addInstance = async () => {
    const port = await freePort();
    const logFile = path.join(logDir, `${system}-${logFiles.length}.log`);
    logFiles.push(logFile);
    const child = spawnServer(
      { ...(system === 'postline' ? options.env : {}), DATABASE_URL: databaseUrl, PORT: String(port) },
      { command: [process.execPath, ...profile, '--import', 'tsx', PROGRAMS[system]], logFile },
    );
    // Instance i is the i-th spawned, whichever answers first.
    const index = processes.push(child) - 1;
    const instance = { url: await child.listening, pid: child.child.pid!, process: child };
    instances[index] = instance;
    return instance;
  };
  await Promise.all(Array.from({ length: count }, addInstance));
  return {
    system,
    databaseUrl,
    logFiles,
    instances,
    addInstance,
    async stop() {
      for (const process of processes) process.child.kill('SIGTERM');
      await Promise.all(processes.map((process) => process.exited));
      const cleanup = new pg.Client({ connectionString: server.url });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await cleanup.end();
      await rm(logDir, { recursive: true, force: true });
    },
  };
}
