import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import { bearer, createPair, createThread, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';

const t = useInstances();

const pair = () => createPair(t.app.url);

describe('send', () => {
  test('answers 201 with the committed message', async () => {
    const { alice, threadId } = await pair();
    const res = await request(t.app.url)
      .post(`/v1/threads/${threadId}/messages`)
      .set(bearer(alice))
      .send({ body: '  hello\nworld  ', clientId: 'c-1' })
      .expect(201)
      .expect('Cache-Control', 'no-store');
    const message = res.body.message;
    assert.deepEqual(Object.keys(message).sort(), ['body', 'clientId', 'createdAt', 'deletedAt', 'editedAt', 'id', 'reactions', 'replyTo', 'senderId', 'seq', 'threadId']);
    assert.equal(message.body, 'hello\nworld');
    assert.equal(message.seq, 1);
    assert.equal(message.senderId, alice.id);
    assert.equal(message.threadId, threadId);
    assert.equal(message.clientId, 'c-1');
    const [row] = await t.db.query('SELECT body FROM messages WHERE id = $1', [message.id]);
    assert.equal(row!.body, 'hello\nworld');
  });

  test('50 concurrent sends to one thread get seq 1..50 without gap or duplicate', async () => {
    const { alice, bob, threadId } = await pair();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(i % 2 ? alice : bob)).send({ body: `m${i}` }),
      ),
    );
    assert.ok(answers.every((res) => res.status === 201));
    const seqs = answers.map((res) => res.body.message.seq as number).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 1));
    const rows = await t.db.query<{ seq: string }>('SELECT seq FROM messages WHERE thread_id = $1 ORDER BY seq', [threadId]);
    assert.deepEqual(rows.map((row) => Number(row.seq)), seqs);
  });

  test('a retried send with the same clientId answers 200 with the same message, once stored', async () => {
    const { alice, threadId } = await pair();
    const first = await sendMessage(t.app.url, alice, threadId, 'hi', 'retry-me');
    const retry = await request(t.app.url)
      .post(`/v1/threads/${threadId}/messages`)
      .set(bearer(alice))
      .send({ body: 'hi', clientId: 'retry-me' })
      .expect(200);
    assert.deepEqual(retry.body.message, first);
    const [row] = await t.db.query('SELECT count(*)::int AS n FROM messages WHERE thread_id = $1', [threadId]);
    assert.equal(row!.n, 1);
  });

  test('concurrent retries with one clientId store one message and all answer it', async () => {
    const { alice, threadId } = await pair();
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).send({ body: 'once', clientId: 'storm' }),
      ),
    );
    assert.deepEqual(answers.map((res) => res.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    assert.equal(new Set(answers.map((res) => res.body.message.id)).size, 1);
    const [row] = await t.db.query('SELECT count(*)::int AS n FROM messages WHERE thread_id = $1', [threadId]);
    assert.equal(row!.n, 1);
  });

  test('the Idempotency-Key header works like clientId; a different clientId is 400', async () => {
    const { alice, bob, threadId } = await pair();
    const first = await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).set('Idempotency-Key', 'k1').send({ body: 'x' }).expect(201);
    assert.equal(first.body.message.clientId, 'k1');
    const again = await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).send({ body: 'x', clientId: 'k1' }).expect(200);
    assert.equal(again.body.message.id, first.body.message.id);
    // The key is per sender: bob's k1 is his own message.
    const bobs = await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(bob)).set('Idempotency-Key', 'k1').send({ body: 'y' }).expect(201);
    assert.notEqual(bobs.body.message.id, first.body.message.id);
    await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).set('Idempotency-Key', 'k2').send({ body: 'x', clientId: 'k3' }).expect(400);
  });

  test('form and text/plain bodies are accepted', async () => {
    const { alice, threadId } = await pair();
    await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).type('form').send('body=from%20curl').expect(201);
    await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).set('Content-Type', 'text/plain;charset=UTF-8').send('{"body":"from XDR"}').expect(201);
    const list = await request(t.app.url).get(`/v1/threads/${threadId}/messages`).set(bearer(alice)).expect(200);
    assert.deepEqual(list.body.messages.map((m: { body: string }) => m.body), ['from curl', 'from XDR']);
  });

  test('each send appends a message.created event for the members in the same transaction', async () => {
    const { alice, bob, threadId } = await pair();
    const message = await sendMessage(t.app.url, alice, threadId, 'logged');
    const rows = await t.db.query<{ id: string; audience: string[]; envelope: Record<string, unknown> }>(
      `SELECT id, audience::text[] AS audience, envelope FROM events WHERE thread_id = $1 AND type = 'message.created'`,
      [threadId],
    );
    assert.equal(rows.length, 1);
    const event = rows[0]!;
    assert.deepEqual(event.audience.sort(), [alice.id, bob.id].sort());
    assert.deepEqual(event.envelope, { id: event.id, type: 'message.created', threadId, at: event.envelope.at, data: message });
    assert.match(String(event.envelope.at), /Z$/);
  });
});

describe('list', () => {
  test('pages in ascending seq with before, after, limit and hasMore', async () => {
    const { alice, threadId } = await pair();
    for (let i = 1; i <= 7; i++) await sendMessage(t.app.url, alice, threadId, `m${i}`);
    const get = async (query: string) => {
      const res = await request(t.app.url).get(`/v1/threads/${threadId}/messages${query}`).set(bearer(alice)).expect(200);
      return { seqs: res.body.messages.map((m: { seq: number }) => m.seq), hasMore: res.body.hasMore };
    };
    assert.deepEqual(await get(''), { seqs: [1, 2, 3, 4, 5, 6, 7], hasMore: false });
    assert.deepEqual(await get('?limit=3'), { seqs: [5, 6, 7], hasMore: true });
    assert.deepEqual(await get('?limit=3&before=5'), { seqs: [2, 3, 4], hasMore: true });
    assert.deepEqual(await get('?limit=3&before=4'), { seqs: [1, 2, 3], hasMore: false });
    assert.deepEqual(await get('?limit=3&after=2'), { seqs: [3, 4, 5], hasMore: true });
    assert.deepEqual(await get('?limit=3&after=4'), { seqs: [5, 6, 7], hasMore: false });
    assert.deepEqual(await get('?after=2&before=6'), { seqs: [3, 4, 5], hasMore: false });
  });

  test('limit outside 1-200, and seq that are not positive whole numbers, are 400 (never clamped)', async () => {
    const { alice, threadId } = await pair();
    for (const query of ['limit=0', 'limit=201', 'limit=-1', 'limit=1.5', 'limit=abc', 'limit=', 'before=0', 'after=-3', 'before=1e3', 'after=99999999999999999999', 'limit=1&limit=2']) {
      const res = await request(t.app.url).get(`/v1/threads/${threadId}/messages?${query}`).set(bearer(alice));
      assert.equal(res.status, 400, query);
      assert.match(res.headers['content-type'] ?? '', /problem\+json/);
    }
  });
});

describe('seen', () => {
  test('moves the read marker forward only, updates unreadCount and appends seen events only on a move', async () => {
    const { alice, bob, threadId } = await pair();
    const messages = [];
    for (let i = 1; i <= 4; i++) messages.push(await sendMessage(t.app.url, alice, threadId, `m${i}`));
    const unread = async () =>
      (await request(t.app.url).get(`/v1/threads/${threadId}`).set(bearer(bob)).expect(200)).body.thread.unreadCount;
    assert.equal(await unread(), 4);
    await request(t.app.url).post(`/v1/threads/${threadId}/seen`).set(bearer(bob)).send({ upTo: messages[2]!.id }).expect(204);
    assert.equal(await unread(), 1);
    await request(t.app.url).post(`/v1/threads/${threadId}/seen`).set(bearer(bob)).send({ upTo: messages[0]!.id }).expect(204);
    assert.equal(await unread(), 1, 'the marker never moves back');
    const events = await t.db.query<{ envelope: { data: unknown }; audience: string[] }>(
      `SELECT envelope, audience::text[] AS audience FROM events WHERE thread_id = $1 AND type = 'seen' ORDER BY id`,
      [threadId],
    );
    assert.deepEqual(events.map((e) => e.envelope.data), [{ userId: bob.id, upTo: messages[2]!.id, seq: 3 }]);
    assert.deepEqual(events[0]!.audience.sort(), [alice.id, bob.id].sort());
  });

  test('a message of another thread is 400 and changes nothing', async () => {
    const { alice, bob, threadId } = await pair();
    const other = await createThread(t.app.url, alice, [await register(t.app.url)]);
    const foreignMessage = await sendMessage(t.app.url, alice, other, 'elsewhere');
    await sendMessage(t.app.url, alice, threadId, 'here');
    const res = await request(t.app.url).post(`/v1/threads/${threadId}/seen`).set(bearer(bob)).send({ upTo: foreignMessage.id }).expect(400);
    assert.deepEqual(res.body.errors, [{ path: 'upTo', message: 'no such message in this thread' }]);
    const [row] = await t.db.query('SELECT read_seq::int FROM thread_members WHERE thread_id = $1 AND user_id = $2', [threadId, bob.id]);
    assert.equal(row!.read_seq, 0);
  });
});
