import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createThread, register, sendMessage } from './support/api.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { startTestInstance, type TestInstance } from './support/instance.js';
import { poll } from './support/poll.js';
import { openStream } from './support/sse.js';

let db: TestDatabase;
let app: TestInstance;

before(async () => {
  db = await createTestDatabase();
  app = await startTestInstance(db.url, { POSTLINE_RETENTION_DAYS: '30' });
});
after(async () => {
  await app.stop();
  await db.drop();
});

test('events older than retention are pruned; older cursors get a reset, newer ones resume completely', async () => {
  const [alice, bob] = [await register(app.url), await register(app.url)];
  const threadId = await createThread(app.url, alice, [bob]);
  const old = [];
  for (let i = 0; i < 5; i++) old.push(await sendMessage(app.url, alice, threadId, `old ${i}`));
  await db.query(`UPDATE events SET created_at = now() - interval '31 days'`);
  const fresh = [];
  for (let i = 0; i < 3; i++) fresh.push(await sendMessage(app.url, alice, threadId, `fresh ${i}`));
  const [oldest] = await db.query<{ id: string }>(`SELECT min(id) AS id FROM events`);
  const [lastOld] = await db.query<{ id: string }>(`SELECT max(id) AS id FROM events WHERE created_at < now() - interval '30 days'`);

  await app.maintenance.run();

  const [{ n }] = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM events WHERE created_at < now() - interval '30 days'`)) as [{ n: number }];
  assert.equal(n, 0);
  const [{ pruned_through }] = (await db.query<{ pruned_through: string }>('SELECT pruned_through FROM event_retention')) as [{ pruned_through: string }];
  assert.equal(pruned_through, lastOld!.id);
  // The messages themselves stay: retention is about the event log only.
  const [{ messages }] = (await db.query<{ messages: number }>('SELECT count(*)::int AS messages FROM messages')) as [{ messages: number }];
  assert.equal(messages, 8);

  const expired = await openStream(app.url, bob.token, { headers: { 'Last-Event-ID': oldest!.id } });
  assert.deepEqual((await expired.nextEnvelope()).data, { reason: 'expired-cursor' });
  expired.close();
  const polled = await poll(app.url, bob.token, { cursor: oldest!.id, timeout: 1 });
  assert.deepEqual(polled.events.map((e) => e.type), ['reset']);

  const resumed = await openStream(app.url, bob.token, { headers: { 'Last-Event-ID': lastOld!.id } });
  assert.deepEqual((await resumed.envelopes(3)).map((e) => e.data), fresh);
  resumed.close();
});

test('expired sessions and spent rate-limit windows are cleaned up', async () => {
  const user = await register(app.url);
  await db.query(`UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE user_id = $1`, [user.id]);
  await db.query(`INSERT INTO rate_limit_hits VALUES ('user:spent', 3, now() - interval '1 second')`);
  await app.maintenance.run();
  assert.deepEqual(await db.query('SELECT id FROM sessions WHERE user_id = $1', [user.id]), []);
  assert.deepEqual(await db.query(`SELECT key FROM rate_limit_hits WHERE key = 'user:spent'`), []);
});
