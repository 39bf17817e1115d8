import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { bearer, createThread, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';

const t = useInstances();

type EventRow = { id: string; type: string; audience: string[]; envelope: { id: string; type: string; threadId: string; data: Record<string, unknown> } };
const eventsOf = (threadId: string) =>
  t.db.query<EventRow>('SELECT id, type, audience::text[] AS audience, envelope FROM events WHERE thread_id = $1 ORDER BY id', [threadId]);

test('membership changes are logged: thread.updated to all members, thread.removed to the one removed', async () => {
  const [alice, bob, carol] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
  // Created as it is, a request for bob (the helper would have him accept it: one more thread.updated).
  const created = await request(t.app.url).post('/v1/threads').set(bearer(alice)).send({ members: [bob.id], title: 'Logged' }).expect(201);
  const threadId = created.body.thread.id as string;
  await request(t.app.url).post(`/v1/threads/${threadId}/members`).set(bearer(alice)).send({ userId: carol.id }).expect(200);
  await request(t.app.url).delete(`/v1/threads/${threadId}/members/${bob.id}`).set(bearer(alice)).expect(204);
  const events = await eventsOf(threadId);
  const sorted = (ids: string[]) => [...ids].sort();
  assert.deepEqual(
    events.map((e) => [e.type, sorted(e.audience)]),
    [
      ['thread.updated', sorted([alice.id, bob.id])],
      ['thread.updated', sorted([alice.id, bob.id, carol.id])],
      ['thread.removed', [bob.id]],
      ['thread.updated', sorted([alice.id, carol.id])],
    ],
  );
  for (const event of events) {
    assert.equal(event.envelope.id, event.id);
    assert.equal(event.envelope.type, event.type);
    assert.equal(event.envelope.threadId, threadId);
  }
  assert.deepEqual(events[2]!.envelope.data, { threadId });
  const last = events[3]!.envelope.data as { members: Array<{ id: string }>; unreadCount: unknown };
  assert.deepEqual(last.members.map((m) => m.id), [alice.id, carol.id]);
  assert.equal(last.unreadCount, null, 'unreadCount is per viewer, so events carry null');
});

test('a failed change writes no event', async () => {
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const threadId = await createThread(t.app.url, alice, [bob]);
  const before = await eventsOf(threadId);
  await request(t.app.url).post(`/v1/threads/${threadId}/members`).set(bearer(alice)).send({ userId: (await register(t.app.url)).id }).expect(409);
  await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).send({ body: '   ' }).expect(400);
  assert.deepEqual(await eventsOf(threadId), before);
});

test('event ids commit in increasing order: a reader tailing `id > last` never skips a late committer', async () => {
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const threadId = await createThread(t.app.url, alice, [bob]);
  const writers = new pg.Pool({ connectionString: t.db.url, max: 8 });
  const reader = new pg.Client({ connectionString: t.db.url });
  await reader.connect();
  const [{ start }] = (await reader.query<{ start: string }>('SELECT coalesce(max(id), 0)::text AS start FROM events')).rows as [{ start: string }];

  // Writers that hold their transaction open for a random moment after taking an event id, so
  // that, without the commit-order lock, later ids would often commit before earlier ones.
  let writing = true;
  const writer = async (n: number) => {
    for (let i = 0; i < 25; i++) {
      const client = await writers.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SELECT postline_append_event('test', $1, ARRAY[$2::bigint], json_build_object('n', $3::int))`, [threadId, alice.id, n * 100 + i]);
        await client.query('SELECT pg_sleep(random() * 0.004)');
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }
  };
  const seen: string[] = [];
  const tail = (async () => {
    let last = start;
    while (writing || seen.length < 200) {
      // Only a read that began after the last commit may end the tail by finding nothing.
      const writersDone = !writing;
      const { rows } = await reader.query<{ id: string }>('SELECT id FROM events WHERE id > $1 ORDER BY id', [last]);
      for (const row of rows) seen.push(row.id);
      if (rows.length) last = rows[rows.length - 1]!.id;
      if (writersDone && rows.length === 0) break;
    }
  })();
  await Promise.all(Array.from({ length: 8 }, (_, n) => writer(n)));
  writing = false;
  await tail;
  const all = (await reader.query<{ id: string }>('SELECT id FROM events WHERE id > $1 ORDER BY id', [start])).rows.map((r) => r.id);
  assert.equal(all.length, 200);
  assert.deepEqual(seen, all, 'the tailing reader saw every committed event, in id order');
  await reader.end();
  await writers.end();
});

test('message.created events of a thread follow seq order', async () => {
  const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
  const threadId = await createThread(t.app.url, alice, [bob]);
  await Promise.all(Array.from({ length: 30 }, (_, i) => sendMessage(t.app.url, i % 2 ? alice : bob, threadId, `m${i}`)));
  const events = (await eventsOf(threadId)).filter((e) => e.type === 'message.created');
  assert.deepEqual(events.map((e) => e.envelope.data.seq), Array.from({ length: 30 }, (_, i) => i + 1));
});
