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
import { createChannel, createSession, type Channel } from 'better-sse';
import pg from 'pg';
import createSubscriber from 'pg-listen';
import { peerApi } from './http.js';
import { threadsOf } from './store.js';

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

// Sends: INSERT and pg_notify in one statement; every process (this one too) hears the NOTIFY.
const app = peerApi(pool, { notify: CHANNEL });
app.get('/v1/events', async (req, res) => {
  const session = await createSession(req, res);
  for (const threadId of await threadsOf(pool, res.locals.userId)) channelOf(threadId).register(session);
});

await subscriber.connect();
await subscriber.listenTo(CHANNEL);
const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.all([subscriber.close(), pool.end()]).then(() => process.exit(0));
});
