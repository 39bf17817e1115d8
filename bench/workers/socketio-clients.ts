/**
 * Holds many Socket.IO sockets in the long-polling transport and counts the events that
 * arrive; the same commands as sse-clients.ts. Each socket speaks the Engine.IO 4 / Socket.IO 5
 * protocol itself over a keep-alive node:http agent (handshake, CONNECT with `auth`, a GET poll
 * after every answer, a pong POST for every ping), like the long-pollers of pollers.ts: the
 * load generators then cost the same per request whatever system they drive. (socket.io-client
 * in Node polls through an XMLHttpRequest emulation that costs several times more per request,
 * which would take CPU from the server under test on this machine.)
 */
import http from 'node:http';
import { now, serve } from '../lib/ipc.js';
import { Receivers, type Receiver } from '../lib/receivers.js';

interface SocketSpec {
  url: string;
  token: string;
  /** The thread whose messages this socket must receive (for the loss check). */
  tag: string;
}

interface Envelope {
  type: string;
  data: { id: string; body: string };
}

const SEPARATOR = '\x1e';
const agent = new http.Agent({ keepAlive: true });
const receivers = new Receivers();
const stops: Array<() => void> = [];
let closing = false;

function request(url: string, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: body === undefined ? 'GET' : 'POST', agent, headers: body === undefined ? {} : { 'Content-Type': 'text/plain;charset=UTF-8' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function open(spec: SocketSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: Receiver = { tag: spec.tag, messageIds: [] };
    let running = true;
    stops.push(() => (running = false));
    receivers.all.push(socket);
    const base = `${spec.url}/socket.io/?EIO=4&transport=polling`;
    void (async () => {
      // Engine.IO handshake: "0" + {sid, pingInterval, …}.
      const handshake = await request(base);
      const { sid } = JSON.parse(handshake.slice(1)) as { sid: string };
      const session = `${base}&sid=${sid}`;
      await request(session, `40${JSON.stringify({ token: spec.token })}`);
      let connected = false;
      while (running && !closing) {
        const payload = await request(session);
        const at = now();
        for (const packet of payload.split(SEPARATOR)) {
          if (packet === '2') void request(session, '3').catch(() => {}); // ping → pong
          else if (packet.startsWith('40')) {
            connected = true;
            resolve();
          } else if (packet.startsWith('44')) throw new Error(`connect refused: ${packet}`);
          else if (packet.startsWith('42')) {
            const [, envelope] = JSON.parse(packet.slice(2)) as [string, Envelope];
            const stamp = /^t=([\d.]+)/.exec(envelope.data.body);
            receivers.received(socket, at, { id: Number(envelope.data.id), sentAt: stamp ? Number(stamp[1]) : undefined });
          } else if (packet === '1') running = false;
        }
      }
      if (!connected) reject(new Error('closed before connecting'));
    })().catch((error: unknown) => (closing ? resolve() : reject(error)));
  });
}

serve({
  ...receivers.handlers(),
  async open(args: { streams: SocketSpec[]; batch?: number }) {
    const batch = args.batch ?? 200;
    for (let i = 0; i < args.streams.length; i += batch) await Promise.all(args.streams.slice(i, i + batch).map(open));
    return receivers.all.length;
  },
  close() {
    closing = true;
    for (const stop of stops.splice(0)) stop();
    receivers.all.length = 0;
    agent.destroy();
    return true;
  },
});
