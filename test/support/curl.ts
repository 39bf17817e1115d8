import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { waitFor } from './sse.js';

const run = promisify(execFile);

/** Run curl to the end; resolves with its stdout (rejects on a non-zero exit). */
export async function curl(args: string[]): Promise<string> {
  return (await run('curl', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

/** A curl that keeps running (curl -N on a stream): its output so far, and waits on it. */
export interface RunningCurl {
  output(): string;
  /** Resolves once the output so far matches `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(): void;
}

/** Start curl with `args` and keep it running until kill(); waitFor() times out after 10 s by default. */
export function startCurl(args: string[]): RunningCurl {
  const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
  return {
    output: () => output,
    async waitFor(pattern, timeoutMs = 10_000) {
      try {
        await waitFor(() => pattern.test(output), timeoutMs, `curl output matching ${pattern}`);
      } catch (error) {
        throw new Error(`${(error as Error).message}\noutput:\n${output.slice(-2000)}\nstderr:\n${errors}`);
      }
    },
    kill: () => child.kill(),
  };
}
