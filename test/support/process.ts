import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { createTestDatabase, type TestDatabase } from './database.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

export interface ServerProcess {
  child: ChildProcess;
  /** Every line the process wrote to stdout and stderr. */
  output: string[];
  /** Resolves with the base URL once the server logs that it listens. */
  listening: Promise<string>;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** Settings for servers under load in tests: fast password hashes, no rate limits. */
export const LOAD_TEST_ENV = {
  POSTLINE_SCRYPT_COST: '10',
  POSTLINE_RATE_LIMIT_PER_MIN: '0',
  POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '0',
};

export interface SpawnOptions {
  /** Flags for node itself (e.g. `--cpu-prof`). */
  nodeFlags?: string[];
  /** The program and its arguments; default: node on the TypeScript sources (`src/main.ts`). */
  command?: string[];
  /** In a process group of its own, as a terminal runs a foreground job (signal it with `-pid`). */
  detached?: boolean;
  /** Write stdout and stderr to this file itself (nothing is collected; give it a fixed PORT). */
  logFile?: string;
}

/** `src/main.ts` in its own process (or `command`), with `env` on top of a quiet base. */
export function spawnServer(env: Record<string, string | undefined>, options: SpawnOptions = {}): ServerProcess {
  const [program, ...args] = options.command ?? [process.execPath, ...(options.nodeFlags ?? []), '--import', 'tsx', 'src/main.ts'];
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'a');
  const child = spawn(program!, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
    detached: options.detached ?? false,
  });
  if (logFd !== undefined) closeSync(logFd);
  const output: string[] = [];
  // With a fixed PORT the server is ready when /healthz answers (its "listening" line is an info
  // log, which a quieter POSTLINE_LOG_LEVEL hides).
  const fixedPort = env.PORT && env.PORT !== '0' ? `http://127.0.0.1:${env.PORT}` : undefined;
  const listening = new Promise<string>((resolve, reject) => {
    if (fixedPort) void untilHealthy(fixedPort).then(resolve, reject);
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        const match = /"url":"([^"]+)".*"msg":"postline is listening/.exec(line);
        if (match) resolve(match[1]!);
      });
    }
    child.once('exit', () => reject(new Error(`server exited before listening:\n${output.join('\n')}`)));
  });
  listening.catch(() => {});
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  return { child, output, listening, exited };
}

/** Whether a process (or, with a negative pid, any process of a group) is still there. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function untilHealthy(url: string): Promise<string> {
  for (let attempt = 0; attempt < 600; attempt++) {
    const healthy = await fetch(`${url}/healthz`).then((response) => response.ok, () => false);
    if (healthy) return url;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never became healthy`);
}

/** A fault test file's world: a fresh database and server processes (src/main.ts) on it. */
export interface ServerFleet {
  db: TestDatabase;
  servers: ServerProcess[];
  /** The servers' base URLs, in order. */
  urls: string[];
}

/**
 * Register before/after hooks that give the file a fresh database and `count` server processes
 * on it, with LOAD_TEST_ENV plus `env(db, index)` (which may point DATABASE_URL elsewhere). At the
 * end, every server still running gets SIGTERM and must exit 0; then `cleanUp` runs (for what
 * `env` set up) and the database is dropped. (Top-level hooks of one file run concurrently, so
 * anything the servers depend on is set up in `env` and torn down in `cleanUp`, not in hooks.)
 */
export function useServers(
  count: number,
  options: {
    env?: (db: TestDatabase, index: number) => Record<string, string> | Promise<Record<string, string>>;
    cleanUp?: () => Promise<void>;
  } = {},
): ServerFleet {
  const env = options.env ?? (() => ({}));
  const fleet = {} as ServerFleet;
  before(async () => {
    fleet.db = await createTestDatabase();
    const envs = await Promise.all(Array.from({ length: count }, (_, i) => env(fleet.db, i)));
    fleet.servers = envs.map((extra) => spawnServer({ ...LOAD_TEST_ENV, DATABASE_URL: fleet.db.url, ...extra }));
    fleet.urls = await Promise.all(fleet.servers.map((server) => server.listening));
  });
  after(async () => {
    const running = fleet.servers.filter((server) => server.child.exitCode === null && server.child.signalCode === null);
    for (const server of running) server.child.kill('SIGTERM');
    const codes = await Promise.all(running.map((server) => server.exited));
    await options.cleanUp?.();
    await fleet.db.drop();
    assert.deepEqual(codes, running.map(() => 0), 'every server drained and exited 0 on SIGTERM');
  });
  return fleet;
}
