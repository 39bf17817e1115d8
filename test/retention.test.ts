import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createThread, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { poll } from './support/poll.js';
import { openStream } from './support/sse.js';

const t = useInstances({ env: { POSTLINE_RETENTION_DAYS: '30' } });

test('events older than retention are pruned; older cursors get a reset, newer ones resume completely', async () => {
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const threadId = await createThread(t.app.url, alice, [bob]);
  const old = [];
  for (let i = 0; i < 5; i++) old.push(await sendMessage(t.app.url, alice, threadId, `old ${i}`));
  await t.db.query(`UPDATE events SET created_at = now() - interval '31 days'`);
  const fresh = [];
  for (let i = 0; i < 3; i++) fresh.push(await sendMessage(t.app.url, alice, threadId, `fresh ${i}`));
  const [oldest] = await t.db.query<{ id: string }>(`SELECT min(id) AS id FROM events`);
  const [lastOld] = await t.db.query<{ id: string }>(`SELECT max(id) AS id FROM events WHERE created_at < now() - interval '30 days'`);

  await t.app.maintenance.run();

  const [{ n }] = (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM events WHERE created_at < now() - interval '30 days'`)) as [{ n: number }];
  assert.equal(n, 0);
  const [{ pruned_through }] = (await t.db.query<{ pruned_through: string }>('SELECT pruned_through FROM event_retention')) as [{ pruned_through: string }];
  assert.equal(pruned_through, lastOld!.id);
  // The messages themselves stay: retention is about the event log only.
  const [{ messages }] = (await t.db.query<{ messages: number }>('SELECT count(*)::int AS messages FROM messages')) as [{ messages: number }];
  assert.equal(messages, 8);

  const expired = await openStream(t.app.url, bob.token, { headers: { 'Last-Event-ID': oldest!.id } });
  assert.deepEqual((await expired.nextEnvelope()).data, { reason: 'expired-cursor' });
  expired.close();
  const polled = await poll(t.app.url, bob.token, { cursor: oldest!.id, timeout: 1 });
  assert.deepEqual(polled.events.map((e) => e.type), ['reset']);

  const resumed = await openStream(t.app.url, bob.token, { headers: { 'Last-Event-ID': lastOld!.id } });
  assert.deepEqual((await resumed.envelopes(3)).map((e) => e.data), fresh);
  resumed.close();
});

test('expired sessions and spent rate-limit windows are cleaned up', async () => {
  const user = await register(t.app.url);
  await t.db.query(`UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE user_id = $1`, [user.id]);
  await t.db.query(`INSERT INTO rate_limit_hits VALUES ('user:spent', 3, now() - interval '1 second')`);
  await t.app.maintenance.run();
  assert.deepEqual(await t.db.query('SELECT id FROM sessions WHERE user_id = $1', [user.id]), []);
  assert.deepEqual(await t.db.query(`SELECT key FROM rate_limit_hits WHERE key = 'user:spent'`), []);
});
