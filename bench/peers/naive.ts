/**
 * PEER FOR COMPARISON, NOT POSTLINE: the same chat delivery built the way the tutorials build it.
 * Express 5, a better-sse `Channel` per thread that every member's session joins, pg-listen
 * for the fan-out across processes, one `INSERT` + `pg_notify(payload = the message JSON)` per
 * send, express-rate-limit with its memory store (per process), and no replay: a client that
 * reconnects gets what is sent from then on. No long-poll either: without a replay, a poll
 * would lose whatever was sent between two polls.
 *
 * It answers the routes the bench's load generators use: `POST /v1/threads/:id/messages`
 * (`{body}` → 201 `{message}`), `GET /v1/events` (SSE, `event: message.created`, `data:` the
 * contract's envelope), `GET /healthz`. Settings: DATABASE_URL, PORT, HOST (the bench seeds
 * the tables first: bench/peers/store.ts).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { createChannel, createSession, type Channel } from 'better-sse';
import pg from 'pg';
import createSubscriber from 'pg-listen';
import { insertMessage, threadsOf, userOf } from './store.js';

const CHANNEL = 'naive_messages';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const subscriber = createSubscriber.default({ connectionString: process.env.DATABASE_URL });
const channels = new Map<string, Channel>();
const channelOf = (threadId: string) => {
  let channel = channels.get(threadId);
  if (!channel) channels.set(threadId, (channel = createChannel()));
  return channel;
};

subscriber.notifications.on(CHANNEL, (envelope: { threadId: string }) => {
  channels.get(envelope.threadId)?.broadcast(envelope, 'message.created');
});

const app = express();
app.get('/healthz', (_req, res) => {
  res.send('ok');
});

async function authenticate(req: Request, res: Response, next: NextFunction): Promise<void> {
  const userId = await userOf(pool, req.headers.authorization);
  if (!userId) {
    res.status(401).json({ error: 'unauthorized' });
    return;
  }
  res.locals.userId = userId;
  next();
}
app.use('/v1', authenticate);
// The same budget as postline's default (600 per user per minute), in this process's memory.
app.use('/v1', rateLimit({ windowMs: 60_000, limit: 600, keyGenerator: (_req, res) => res.locals.userId as string, standardHeaders: 'draft-8', legacyHeaders: false }));
app.use(express.json());

app.get('/v1/events', async (req, res) => {
  const session = await createSession(req, res);
  for (const threadId of await threadsOf(pool, res.locals.userId)) channelOf(threadId).register(session);
});

app.post('/v1/threads/:threadId/messages', async (req, res) => {
  const body = (req.body as { body?: unknown } | undefined)?.body;
  if (typeof body !== 'string' || body.length === 0) {
    res.status(400).json({ error: 'body must be a non-empty string' });
    return;
  }
  const message = await insertMessage(pool, req.params.threadId, res.locals.userId, body, CHANNEL);
  if (!message) {
    res.status(404).json({ error: 'no such thread' });
    return;
  }
  res.status(201).json({ message: (JSON.parse(message.envelope) as { data: unknown }).data });
});

await subscriber.connect();
await subscriber.listenTo(CHANNEL);
const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.all([subscriber.close(), pool.end()]).then(() => process.exit(0));
});
