import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { bearer, createPair, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { startTestInstance } from './support/instance.js';
import { openStream, waitFor } from './support/sse.js';
import type { Subscriber } from '../src/realtime/subscriber.js';

// Robustness of the delivery core: one bad subscriber, long backlogs, large groups, a busy database.
const t = useInstances({ env: { POSTLINE_MAX_THREAD_MEMBERS: '1000' } });

test('a subscriber that throws is ended; the others still get that event and the ones after it', async () => {
  const instance = await startTestInstance(t.db.url, {}, { expectErrors: true });
  const { alice, bob, threadId } = await createPair(instance.url);
  const ended: string[] = [];
  // Registered first, so the hub hands it each event before the real stream.
  const broken: Subscriber = {
    userId: bob.id,
    sessionId: 'planted',
    kind: 'stream',
    unsentBytes: 0,
    deliver() {
      throw new Error('planted delivery failure');
    },
    end(reason) {
      ended.push(reason);
      instance.realtime.hub.remove(broken);
    },
    tick() {},
    expireAt() {},
  };
  instance.realtime.hub.add(broken);
  const stream = await openStream(instance.url, bob.token);
  try {
    const first = await sendMessage(instance.url, alice, threadId, 'first');
    const second = await sendMessage(instance.url, alice, threadId, 'second');
    assert.deepEqual((await stream.nextOfType('message.created')).data, first);
    assert.deepEqual((await stream.nextOfType('message.created')).data, second);
    assert.deepEqual(ended, ['failed']);
    assert.ok(instance.logs.some((line) => line.includes('delivering an event failed')));
  } finally {
    stream.close();
    await instance.stop();
  }
});

test('a backlog of many pages is sent as the socket takes it, leaving no listener behind per page', async () => {
  const { alice, bob, threadId } = await createPair(t.app.url);
  const [{ start }] = (await t.db.query<{ start: string }>('SELECT max(id)::text AS start FROM events')) as [{ start: string }];
  // 6000 messages of 4 KB: sixty backlog pages, each more than a socket takes at once.
  const count = 6000;
  await t.db.query(
    `SELECT count(*) FROM postline_send_messages(array_fill($1::bigint, ARRAY[$3::int]), array_fill($2::bigint, ARRAY[$3::int]),
                                                 array_fill(repeat('x', 4000), ARRAY[$3::int]), array_fill(NULL::text, ARRAY[$3::int]),
                                                 array_fill(NULL::bigint, ARRAY[$3::int]))`,
    [threadId, alice.id, count],
  );
  // The instance has dispatched them all live (to nobody): the stream below gets them as backlog only.
  await waitFor(async () => t.app.realtime.feed.cursor >= Number((await t.db.query<{ head: string }>('SELECT max(id)::text AS head FROM events'))[0]!.head), 10_000, 'the feed to pass the messages');
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  const stream = await openStream(t.app.url, bob.token, { headers: { 'Last-Event-ID': start } });
  try {
    let previous = Number(start);
    for (let i = 0; i < count; i++) {
      const event = await stream.nextOfType('message.created', 20_000);
      assert.ok(Number(event.id) > previous, 'in id order');
      previous = Number(event.id);
    }
    assert.deepEqual(warnings.map((warning) => warning.name), [], 'no MaxListenersExceededWarning');
  } finally {
    process.off('warning', onWarning);
    stream.close();
  }
});

test('typing in a group of 1000 reaches every member once (the audience no longer fits one NOTIFY)', async () => {
  const [alice, first] = [await register(t.app.url), await register(t.app.url)];
  // Ids of 16 digits, as a long-lived deployment has: 1000 of them are far more than 8000 bytes.
  const rows = await t.db.query<{ id: string }>(
    `INSERT INTO users (id, username, display_name, password_hash) OVERRIDING SYSTEM VALUE
     SELECT 1e15::bigint + n, 'bulk_' || md5(random()::text), 'Bulk', 'none' FROM generate_series(1, 997) AS n RETURNING id::text`,
  );
  await t.db.query(`SELECT setval(pg_get_serial_sequence('users', 'id'), 1e15::bigint + 1000)`);
  const last = await register(t.app.url); // the highest id: in the last part of the audience
  const members = [first.id, ...rows.map((row) => row.id), last.id];
  const created = await request(t.app.url).post('/v1/threads').set(bearer(alice)).send({ members, title: 'everyone' }).expect(201);
  const threadId = created.body.thread.id as string;
  assert.equal(created.body.thread.members.length, 1000);
  // Everyone accepts it (typing skips members for whom a thread is a request), as 999 POST …/accept would.
  await t.db.query('UPDATE thread_members SET accepted = true WHERE thread_id = $1', [threadId]);
  const streams = [await openStream(t.app.url, first.token), await openStream(t.app.url, last.token)];
  try {
    await request(t.app.url).post(`/v1/threads/${threadId}/typing`).set(bearer(alice)).send({ typing: true }).expect(204);
    const marker = await sendMessage(t.app.url, alice, threadId, 'marker');
    for (const stream of streams) {
      const typing = [];
      for (;;) {
        const envelope = await stream.nextEnvelope();
        if (envelope.type === 'typing') typing.push(envelope.data);
        if (envelope.type === 'message.created' && envelope.data.id === marker.id) break;
      }
      assert.deepEqual(typing, [{ userId: alice.id, typing: true }], 'exactly one typing event');
    }
  } finally {
    for (const stream of streams) stream.close();
  }
});

test('a statement that runs out of time is a 503 problem, not a 500', async () => {
  const instance = await startTestInstance(t.db.url, { POSTLINE_STATEMENT_TIMEOUT_MS: '300' }, { expectErrors: true });
  const { alice, threadId } = await createPair(instance.url);
  const locker = new pg.Client({ connectionString: t.db.url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM threads WHERE id = $1 FOR UPDATE', [threadId]);
    const res = await request(instance.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).send({ body: 'stuck' });
    assert.equal(res.status, 503, res.text);
    assert.match(res.headers['content-type'] ?? '', /problem\+json/);
    assert.ok(res.headers['retry-after']);
    await locker.query('ROLLBACK');
    await request(instance.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).send({ body: 'unstuck' }).expect(201);
  } finally {
    await locker.end();
    await instance.stop();
  }
});
