/** Baseline for long-polls: raw node:http answering a small JSON, nothing else. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '../lib/ipc.js';

const body = JSON.stringify({ events: [], cursor: '12345' });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
});

serve({
  async listen() {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  },
});
