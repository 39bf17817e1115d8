/**
 * Holds many slow clients, as the attacker of issue 15 did: each connection sends `head` and then
 * one byte of `trickle` every `everyMs`, and never finishes. Reports how many are still open and
 * how long the server took to cut those it cut.
 */
import net from 'node:net';
import { serve } from '../lib/ipc.js';

interface Slow {
  socket: net.Socket;
  openedAt: number;
  /** When the server closed it (ms after opening), if it did. */
  cutAfterMs?: number;
  /** Whether the connection was established before it closed (a refused one never was). */
  connected: boolean;
}

let clients: Slow[] = [];
let timer: NodeJS.Timeout | undefined;

serve({
  /** Open `count` connections to host:port (`batch` at a time), each writing `head`; then trickle. */
  async open(args: { port: number; count: number; head: string; trickle: string; everyMs: number; batch?: number }) {
    const batch = args.batch ?? 500;
    for (let i = 0; i < args.count; i += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, args.count - i) }, () =>
          new Promise<void>((resolve) => {
            const socket = net.connect(args.port, '127.0.0.1');
            const client: Slow = { socket, openedAt: performance.now(), connected: false };
            clients.push(client);
            socket.on('connect', () => {
              client.connected = true;
              socket.write(args.head, () => resolve());
            });
            socket.on('error', () => resolve());
            socket.on('close', () => {
              client.cutAfterMs ??= performance.now() - client.openedAt;
              resolve();
            });
            socket.on('data', () => {});
          }),
        ),
      );
    }
    let sent = 0;
    timer = setInterval(() => {
      const byte = args.trickle[sent++ % args.trickle.length]!;
      for (const client of clients) if (client.cutAfterMs === undefined) client.socket.write(byte);
    }, args.everyMs);
    return clients.length;
  },
  /** Open ones, ones the server cut (and how soon), ones that never got in. */
  stats() {
    const cut = clients.filter((client) => client.connected && client.cutAfterMs !== undefined).map((client) => client.cutAfterMs!).sort((a, b) => a - b);
    return {
      open: clients.filter((client) => client.cutAfterMs === undefined).length,
      cut: cut.length,
      refused: clients.filter((client) => !client.connected).length,
      firstCutMs: cut[0] ?? null,
      medianCutMs: cut.length ? cut[Math.floor(cut.length / 2)]! : null,
    };
  },
  close() {
    clearInterval(timer);
    for (const client of clients) client.socket.destroy();
    clients = [];
    return true;
  },
});
