/**
 * Baseline for fan-out: a minimal SSE server on raw node:http that keeps every connection in an
 * array and writes one pre-built frame to each at the requested rate. What a hand-rolled server
 * does at the least; postline's cost per delivery is compared with it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '../lib/ipc.js';

const clients = new Set<http.ServerResponse>();
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.write('retry: 2000\n\n');
  clients.add(res);
  req.on('close', () => clients.delete(res));
});

serve({
  async listen() {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  },
  async broadcast(args: { frame: string; perSecond: number; durationMs: number }) {
    let written = 0;
    const interval = 1000 / args.perSecond;
    const start = performance.now();
    for (let i = 0; performance.now() - start < args.durationMs; i++) {
      const wait = start + i * interval - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      for (const res of clients) res.write(args.frame);
      written += clients.size;
    }
    return written;
  },
});
