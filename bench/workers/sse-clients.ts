/**
 * Holds many SSE streams (one socket each) and counts what arrives. With `track`, it also notes
 * every message id per stream and the POST→delivery latency from the send time in the body.
 */
import http from 'node:http';
import { now, serve } from '../lib/ipc.js';
import { STAMP } from '../lib/latency.js';
import { Receivers, type Receiver } from '../lib/receivers.js';

interface StreamSpec {
  url: string;
  token?: string;
  /** The thread whose messages this stream must receive (for the loss check). */
  tag?: string;
}

const receivers = new Receivers();
const requests: http.ClientRequest[] = [];
/** The message id of a message.created frame (only those: a thread.updated carries its thread's id in the same place). */
const MESSAGE_ID = /"data":\{"id":"(\d+)"/;

function open(spec: StreamSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream: Receiver = { tag: spec.tag ?? '', messageIds: [] };
    let pending = '';
    const request = http.get(spec.url, { agent: false, headers: spec.token ? { Authorization: `Bearer ${spec.token}` } : {} }, (response) => {
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
          const id = frame.includes('event:message.created') ? MESSAGE_ID.exec(frame) : null;
          const stamp = STAMP.exec(frame);
          receivers.received(stream, now(), id ? { id: Number(id[1]), sentAt: stamp ? Number(stamp[1]) : undefined } : undefined);
        }
      });
    });
    request.on('error', reject);
    requests.push(request);
    receivers.all.push(stream);
  });
}

serve({
  ...receivers.handlers(),
  async open(args: { streams: StreamSpec[]; batch?: number }) {
    const batch = args.batch ?? 200;
    for (let i = 0; i < args.streams.length; i += batch) await Promise.all(args.streams.slice(i, i + batch).map(open));
    return receivers.all.length;
  },
  close() {
    for (const request of requests.splice(0)) request.destroy();
    receivers.all.length = 0;
    return true;
  },
});
