import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { waitFor } from '../../support/sse.js';

/** A port that was free a moment ago on 127.0.0.1 (for programs that cannot report the one they took). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** A program run in the foreground by a test (started at construction), with its output kept for failure messages. */
export class ChildProgram {
  readonly output: string[] = [];
  readonly exited: Promise<unknown>;
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
  ) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [this.child.stdout!, this.child.stderr!]) stream.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
    this.exited = once(this.child, 'exit');
  }

  /** Wait until `check()` holds (15 s at most); fail with the program's output if it exits first or takes too long. */
  async ready(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    try {
      await waitFor(async () => exited || (await check()), timeoutMs, `${this.name} to start`);
    } catch (error) {
      throw new Error(`${this.name} did not start: ${(error as Error).message}\n${this.output.join('')}`);
    }
    if (exited) throw new Error(`${this.name} exited at start:\n${this.output.join('')}`);
  }

  /** Send it a signal (say, SIGHUP: nginx reloads its configuration). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Stop it (SIGTERM) and wait for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** True when `url` answers 2xx. */
export async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}
