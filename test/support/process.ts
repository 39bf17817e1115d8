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

/** `src/main.ts` in its own process, as `npm start` runs it, with `env` on top of a quiet base. */
export function spawnServer(env: Record<string, string | undefined>): ServerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  // With a fixed PORT the server is ready when /healthz answers (its "listening" line is an info
  // log, which a quieter POSTLINE_LOG_LEVEL hides).
  const fixedPort = env.PORT && env.PORT !== '0' ? `http://127.0.0.1:${env.PORT}` : undefined;
  const listening = new Promise<string>((resolve, reject) => {
    if (fixedPort) void untilHealthy(fixedPort).then(resolve, reject);
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

async function untilHealthy(url: string): Promise<string> {
  for (let attempt = 0; attempt < 600; attempt++) {
    const healthy = await fetch(`${url}/healthz`).then((response) => response.ok, () => false);
    if (healthy) return url;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never became healthy`);
}
