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
let expected: Record<string, number[]> = {};
/** Polls waiting right now, cut short on stop (their events would be after the phase anyway). */
const waiting = new Set<http.ClientRequest>();

function poll(spec: PollerSpec, cursor: string): Promise<{ events: Envelope[]; cursor: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${spec.url}/v1/poll?cursor=${cursor}&timeout=20`, { agent, headers: { Authorization: `Bearer ${spec.token}` } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`poll ${response.statusCode}`))));
    });
    waiting.add(request);
    request.on('close', () => waiting.delete(request));
    request.on('error', reject);
  });
}

/** Poll answers received since the start (for requests per delivery). */
let polls = 0;

async function loop(spec: PollerSpec, cursor: string): Promise<void> {
  const ids: number[] = [];
  received.set(spec, ids);
  while (running) {
    const answer = await poll(spec, cursor).catch(() => undefined);
    if (answer) polls++;
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
    polls = 0;
    loops = args.pollers.map((spec) => loop(spec, args.cursor));
    return loops.length;
  },
  /** Start a new latency histogram (message ids keep accumulating, for the loss check). */
  resetLatency() {
    latency = newHistogram();
    return true;
  },
  /** Events received so far (message.created), by all pollers. */
  received: () => [...received.values()].reduce((total, ids) => total + ids.length, 0),
  /** Latency so far, and lost/duplicated against what was expected, while polling goes on. */
  verify() {
    return tally();
  },
  /** What each poller must receive: the acknowledged message ids per thread. */
  expect(args: { expected: Record<string, number[]> }) {
    expected = args.expected;
    return true;
  },
  complete() {
    return [...received].every(([spec, ids]) => compare(expected[spec.tag] ?? [], ids).lost === 0);
  },
  /** Stop polling (waiting polls are cut short), and compare what arrived with what was expected. */
  async stop() {
    running = false;
    for (const request of waiting) request.destroy();
    await Promise.all(loops);
    const result = tally();
    received.clear();
    return result;
  },
});

function tally() {
  let lost = 0;
  let duplicated = 0;
  for (const [spec, ids] of received) {
    const result = compare(expected[spec.tag] ?? [], ids);
    lost += result.lost;
    duplicated += result.duplicated;
  }
  return { lost, duplicated, latency: encode(latency), polls };
}
