/**
 * Holds many SSE streams (one socket each) and counts what arrives. With `track`, it also notes
 * every message id per stream and the POST→delivery latency from the send time in the body.
 */
import http from 'node:http';
import { now, serve } from '../lib/ipc.js';
import { compare, encode, newHistogram, STAMP } from '../lib/latency.js';

interface StreamSpec {
  url: string;
  token?: string;
  /** The thread whose messages this stream must receive (for the loss check). */
  tag?: string;
}

interface OpenStream {
  spec: StreamSpec;
  request: http.ClientRequest;
  messageIds: number[];
}

const streams: OpenStream[] = [];
let frames = 0;
let tracking = false;
let latency = newHistogram();
let expected: Record<string, number[]> = {};
/** The message id of a message.created frame (only those: a thread.updated carries its thread's id in the same place). */
const MESSAGE_ID = /"data":\{"id":"(\d+)"/;

function open(spec: StreamSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream: OpenStream = { spec, request: undefined as unknown as http.ClientRequest, messageIds: [] };
    let pending = '';
    stream.request = http.get(
      spec.url,
      { agent: false, headers: spec.token ? { Authorization: `Bearer ${spec.token}` } : {} },
      (response) => {
        if (response.statusCode !== 200) return reject(new Error(`stream answered ${response.statusCode}`));
        response.setEncoding('utf8');
        let opened = false;
        response.on('data', (chunk: string) => {
          if (!opened) {
            opened = true;
            resolve();
          }
          pending += chunk;
          let end;
          while ((end = pending.indexOf('\n\n')) !== -1) {
            const frame = pending.slice(0, end);
            pending = pending.slice(end + 2);
            if (!frame.includes('data:') || frame.includes('event:ready')) continue; // comments, retry, the ready event
            frames++;
            if (!tracking) continue;
            const id = frame.includes('event:message.created') ? MESSAGE_ID.exec(frame) : null;
            const stamp = STAMP.exec(frame);
            if (id) stream.messageIds.push(Number(id[1]));
            if (stamp) latency.recordValue(Math.max(1, Math.round((now() - Number(stamp[1])) * 1000)));
          }
        });
      },
    );
    stream.request.on('error', reject);
    streams.push(stream);
  });
}

serve({
  async open(args: { streams: StreamSpec[]; batch?: number }) {
    const batch = args.batch ?? 200;
    for (let i = 0; i < args.streams.length; i += batch) await Promise.all(args.streams.slice(i, i + batch).map(open));
    return streams.length;
  },
  frames: () => frames,
  track(args: { on: boolean }) {
    tracking = args.on;
    latency = newHistogram();
    for (const stream of streams) stream.messageIds = [];
    return true;
  },
  /** Start a new latency histogram (message ids keep accumulating, for the loss check). */
  resetLatency() {
    latency = newHistogram();
    return true;
  },
  /** What each thread's streams must receive: the acknowledged message ids per thread. */
  expect(args: { expected: Record<string, number[]> }) {
    expected = args.expected;
    return true;
  },
  /** Latency so far, and lost/duplicated per stream against the expected messages of its thread. */
  verify() {
    let lost = 0;
    let duplicated = 0;
    for (const stream of streams) {
      const result = compare(expected[stream.spec.tag ?? ''] ?? [], stream.messageIds);
      lost += result.lost;
      duplicated += result.duplicated;
    }
    return { lost, duplicated, latency: encode(latency) };
  },
  /** Whether every stream has received everything expected (to wait for stragglers). */
  complete() {
    return streams.every((stream) => compare(expected[stream.spec.tag ?? ''] ?? [], stream.messageIds).lost === 0);
  },
  close() {
    for (const stream of streams.splice(0)) stream.request.destroy();
    return true;
  },
});
