/**
 * Posts messages over HTTP keep-alive connections, either at a fixed total rate or from a fixed
 * number of back-to-back loops, and reports what was acknowledged (message ids per thread).
 */
import http from 'node:http';
import { now, serve } from '../lib/ipc.js';
import { encode, newHistogram, stampedBody } from '../lib/latency.js';

interface Target {
  url: string;
  token: string;
  threadId: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const BODY_PADDING = 80;

function post(target: Target): Promise<{ status: number; messageId?: number }> {
  const body = JSON.stringify({ body: stampedBody(now(), BODY_PADDING) });
  return new Promise((resolve) => {
    const request = http.request(
      `${target.url}/v1/threads/${target.threadId}/messages`,
      {
        method: 'POST',
        agent,
        headers: { Authorization: `Bearer ${target.token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          const ok = response.statusCode === 201;
          resolve({ status: response.statusCode ?? 0, ...(ok && { messageId: Number(JSON.parse(text).message.id) }) });
        });
      },
    );
    request.on('error', () => resolve({ status: 0 }));
    request.end(body);
  });
}

interface Outcome {
  acked: Record<string, number[]>;
  failed: number;
  latency: string;
}

async function run(targets: Target[], shape: { perSecond?: number; concurrency?: number; durationMs: number }): Promise<Outcome> {
  const acked: Record<string, number[]> = {};
  const latency = newHistogram();
  let failed = 0;
  const send = async (target: Target) => {
    const started = now();
    const result = await post(target);
    if (result.messageId === undefined) failed++;
    else {
      (acked[target.threadId] ??= []).push(result.messageId);
      latency.recordValue(Math.max(1, Math.round((now() - started) * 1000)));
    }
  };
  const deadline = now() + shape.durationMs;
  const inFlight = new Set<Promise<void>>();
  if (shape.concurrency) {
    await Promise.all(
      Array.from({ length: shape.concurrency }, async (_, loop) => {
        for (let i = 0; now() < deadline; i++) await send(targets[(loop + i * shape.concurrency!) % targets.length]!);
      }),
    );
  } else {
    // Open loop: sends go out on schedule whatever the answers' latency (no coordinated omission).
    const interval = 1000 / shape.perSecond!;
    const start = now();
    for (let i = 0; ; i++) {
      const due = start + i * interval;
      if (due >= deadline) break;
      const wait = due - now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const sending = send(targets[i % targets.length]!);
      inFlight.add(sending);
      void sending.finally(() => inFlight.delete(sending));
    }
    await Promise.all(inFlight);
  }
  return { acked, failed, latency: encode(latency) };
}

serve({
  rate: (args: { targets: Target[]; perSecond: number; durationMs: number }) => run(args.targets, args),
  concurrency: (args: { targets: Target[]; concurrency: number; durationMs: number }) => run(args.targets, args),
});
