import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const BENCH_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

interface Reply {
  replyTo: number;
  result?: unknown;
  error?: string;
}

/** A load generator or baseline in its own process, driven by request/reply messages. */
export class Worker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(readonly child: ChildProcess) {
    child.on('message', (message: Reply) => {
      const waiter = this.pending.get(message.replyTo);
      if (!waiter) return;
      this.pending.delete(message.replyTo);
      if (message.error) waiter.reject(new Error(message.error));
      else waiter.resolve(message.result);
    });
    child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`worker exited (${code})`));
      this.pending.clear();
    });
  }

  /** Start `bench/<script>` (TypeScript, through tsx) as a child process. */
  static start(script: string, env: Record<string, string> = {}): Worker {
    const child = fork(path.join(BENCH_DIR, script), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Worker(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(command: string, args: unknown = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, command, args });
    });
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

/** In a worker: answer the parent's requests with `handlers`. */
export function serve(handlers: Record<string, (args: never) => unknown>): void {
  process.on('message', async (message: { id: number; command: string; args: never }) => {
    try {
      const handler = handlers[message.command];
      if (!handler) throw new Error(`unknown command ${message.command}`);
      process.send!({ replyTo: message.id, result: await handler(message.args) });
    } catch (error) {
      process.send!({ replyTo: message.id, error: error instanceof Error ? error.stack : String(error) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export const now = () => performance.timeOrigin + performance.now();
