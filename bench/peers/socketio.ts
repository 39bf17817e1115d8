/**
 * PEER FOR COMPARISON, NOT POSTLINE: chat delivery on Socket.IO 4 in its long-polling
 * transport (what proxies that break WebSockets force it to), as a Node team would build it:
 * one room per thread, each socket joining its user's rooms when it connects, messages persisted
 * with one INSERT each and emitted to the thread's room. Processes fan out through
 * `@socket.io/postgres-adapter` (the Socket.IO team's adapter: NOTIFY with the packet, a table
 * for packets over 8000 bytes), Postgres being the only shared part, as for postline.
 *
 * Sends come over plain HTTP (`POST /v1/threads/:id/messages`, `{body}` → 201 `{message}`),
 * the routes the bench's senders use, with express-rate-limit's memory store as in the naive
 * peer; a socket authenticates with `auth: {token}` and receives `message.created` events
 * carrying the contract's envelope. No replay (Socket.IO's connection state recovery does not
 * work with this adapter). A polling socket must reach the process that holds its session, so
 * behind a load balancer it needs sticky sessions; the bench points each socket at one process.
 * Settings: DATABASE_URL, PORT, HOST (the bench seeds the tables first: bench/peers/store.ts).
 */
import http from 'node:http';
import { createAdapter } from '@socket.io/postgres-adapter';
import pg from 'pg';
import { Server } from 'socket.io';
import { peerApi } from './http.js';
import { threadsOf, userOf } from './store.js';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const room = (threadId: string) => `thread:${threadId}`;
// The app first: Socket.IO takes the server's requests for /socket.io/ and hands it the others.
const app = peerApi(pool, { delivered: (threadId, envelope) => io.to(room(threadId)).emit('message.created', envelope) });
const server = http.createServer(app);
const io = new Server(server, { transports: ['polling'], serveClient: false, adapter: createAdapter(pool) });

io.use(async (socket, next) => {
  const token = (socket.handshake.auth as { token?: string }).token;
  const userId = await userOf(pool, `Bearer ${token}`);
  if (!userId) return next(new Error('unauthorized'));
  socket.data.threads = await threadsOf(pool, userId);
  next();
});
io.on('connection', (socket) => {
  void socket.join((socket.data.threads as string[]).map(room));
});

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => {
  void io.close().then(() => pool.end()).then(() => process.exit(0));
});
