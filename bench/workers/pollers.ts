/**
 * Long-poll clients: each carries its cursor from answer to answer, noting message ids and
 * POST→delivery latency, until told to stop.
 */
import http from 'node:http';
import { now, serve } from '../lib/ipc.js';
import { compare, encode, newHistogram } from '../lib/latency.js';

interface PollerSpec {
  url: string;
  token: string;
  tag: string;
}

interface Envelope {
  type: string;
  data: { id?: string; body?: string };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
let running = false;
let loops: Array<Promise<void>> = [];
let latency = newHistogram();
const received = new Map<PollerSpec, number[]>();

function poll(spec: PollerSpec, cursor: string): Promise<{ events: Envelope[]; cursor: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${spec.url}/v1/poll?cursor=${cursor}&timeout=20`, { agent, headers: { Authorization: `Bearer ${spec.token}` } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`poll ${response.statusCode}`))));
    });
    request.on('error', reject);
  });
}

async function loop(spec: PollerSpec, cursor: string): Promise<void> {
  const ids: number[] = [];
  received.set(spec, ids);
  while (running) {
    const answer = await poll(spec, cursor).catch(() => undefined);
    if (!answer) continue;
    const at = now();
    for (const event of answer.events) {
      if (event.type !== 'message.created') continue;
      ids.push(Number(event.data.id));
      const stamp = /^t=([\d.]+)/.exec(event.data.body ?? '');
      if (stamp) latency.recordValue(Math.max(1, Math.round((at - Number(stamp[1])) * 1000)));
    }
    cursor = answer.cursor;
  }
}

serve({
  start(args: { pollers: PollerSpec[]; cursor: string }) {
    running = true;
    latency = newHistogram();
    loops = args.pollers.map((spec) => loop(spec, args.cursor));
    return loops.length;
  },
  /** Stop after the current polls answer, and compare with the expected messages per thread. */
  async stop(args: { expected: Record<string, number[]> }) {
    running = false;
    await Promise.all(loops);
    let lost = 0;
    let duplicated = 0;
    for (const [spec, ids] of received) {
      const result = compare(args.expected[spec.tag] ?? [], ids);
      lost += result.lost;
      duplicated += result.duplicated;
    }
    return { lost, duplicated, latency: encode(latency) };
  },
});
