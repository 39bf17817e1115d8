import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';

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

/** `src/main.ts` in its own process, as `npm start` runs it, with `env` on top of a quiet base. */
export function spawnServer(env: Record<string, string | undefined>): ServerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const listening = new Promise<string>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        const match = /"url":"([^"]+)".*"msg":"postline is listening"/.exec(line);
        if (match) resolve(match[1]!);
      });
    }
    child.once('exit', () => reject(new Error(`server exited before listening:\n${output.join('\n')}`)));
  });
  listening.catch(() => {});
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  return { child, output, listening, exited };
}
