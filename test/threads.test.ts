import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import { bearer, createThread, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';

const t = useInstances({ env: { POSTLINE_MAX_THREAD_MEMBERS: '4' } });

describe('create', () => {
  test('one other member and no title makes a direct thread; asking again (either side) answers it with 200', async () => {
    const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
    const first = await request(t.app.url).post('/v1/threads').set(bearer(alice)).send({ members: [bob.id] }).expect(201);
    const thread = first.body.thread;
    assert.equal(thread.kind, 'direct');
    assert.equal(thread.title, null);
    assert.equal(thread.createdBy, alice.id);
    assert.deepEqual(thread.members.map((m: { id: string }) => m.id).sort(), [alice.id, bob.id].sort());
    assert.equal(thread.lastMessage, null);
    assert.equal(thread.unreadCount, 0);
    assert.match(thread.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const again = await request(t.app.url).post('/v1/threads').set(bearer(alice)).send({ members: [bob.id] }).expect(200);
    assert.equal(again.body.thread.id, thread.id);
    const reverse = await request(t.app.url).post('/v1/threads').set(bearer(bob)).send({ members: [alice.id, bob.id] }).expect(200);
    assert.equal(reverse.body.thread.id, thread.id);
  });

  test('concurrent requests for the same pair make one direct thread', async () => {
    const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        request(t.app.url).post('/v1/threads').set(bearer(i % 2 ? alice : bob)).send({ members: [i % 2 ? bob.id : alice.id] }),
      ),
    );
    assert.equal(new Set(answers.map((res) => res.body.thread.id)).size, 1);
    assert.deepEqual(answers.map((res) => res.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
  });

  test('a title or more members make a group; the caller is always a member', async () => {
    const [alice, bob, carol] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const titled = await request(t.app.url).post('/v1/threads').set(bearer(alice)).send({ members: [bob.id], title: ' Team ' }).expect(201);
    assert.equal(titled.body.thread.kind, 'group');
    assert.equal(titled.body.thread.title, 'Team');
    const trio = await request(t.app.url).post('/v1/threads').set(bearer(alice)).send({ members: [bob.id, carol.id] }).expect(201);
    assert.equal(trio.body.thread.kind, 'group');
    assert.equal(trio.body.thread.members.length, 3);
    const again = await request(t.app.url).post('/v1/threads').set(bearer(alice)).send({ members: [bob.id, carol.id] }).expect(201);
    assert.notEqual(again.body.thread.id, trio.body.thread.id, 'groups are never deduplicated');
  });

  test('a form body with one member works (curl -d members=ID)', async () => {
    const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
    const res = await request(t.app.url).post('/v1/threads').set(bearer(alice)).type('form').send(`members=${bob.id}&title=Form`).expect(201);
    assert.equal(res.body.thread.title, 'Form');
  });

  test('unknown members and too many members are 400 and create nothing; the answer does not say which ids are unknown', async () => {
    const users = [await register(t.app.url), await register(t.app.url), await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const [alice] = users;
    const before = await t.db.query('SELECT count(*)::int AS n FROM threads');
    const unknown = await request(t.app.url).post('/v1/threads').set(bearer(alice!)).send({ members: ['999999999'] }).expect(400);
    assert.deepEqual(unknown.body.errors, [{ path: 'members', message: 'names a user who does not exist or cannot be added by you' }]);
    // A list of ids mixing real and unknown users gets the same answer, naming none of them.
    const mixed = await request(t.app.url).post('/v1/threads').set(bearer(alice!)).send({ members: [users[1]!.id, '999999998', users[2]!.id] }).expect(400);
    assert.deepEqual(mixed.body, unknown.body);
    await request(t.app.url).post('/v1/threads').set(bearer(alice!)).send({ members: users.slice(1).map((u) => u.id) }).expect(400);
    assert.deepEqual(await t.db.query('SELECT count(*)::int AS n FROM threads'), before);
  });
});

describe('read', () => {
  test('non-members get 404 for everything about a thread, exactly like an unknown thread', async () => {
    const [alice, bob, mallory] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const threadId = await createThread(t.app.url, alice, [bob]);
    const message = await sendMessage(t.app.url, alice, threadId, 'secret');
    const calls = [
      (id: string) => request(t.app.url).get(`/v1/threads/${id}`),
      (id: string) => request(t.app.url).get(`/v1/threads/${id}/messages`),
      (id: string) => request(t.app.url).post(`/v1/threads/${id}/messages`).send({ body: 'hi' }),
      (id: string) => request(t.app.url).post(`/v1/threads/${id}/seen`).send({ upTo: message.id }),
      (id: string) => request(t.app.url).post(`/v1/threads/${id}/members`).send({ userId: mallory.id }),
      (id: string) => request(t.app.url).delete(`/v1/threads/${id}/members/${mallory.id}`),
      (id: string) => request(t.app.url).delete(`/v1/threads/${id}/members/${bob.id}`),
    ];
    for (const call of calls) {
      const foreign = await call(threadId).set(bearer(mallory));
      const unknown = await call('987654321').set(bearer(mallory));
      assert.equal(foreign.status, 404, foreign.text);
      assert.deepEqual(foreign.body, unknown.body);
    }
    const [row] = await t.db.query('SELECT count(*)::int AS n FROM messages WHERE thread_id = $1', [threadId]);
    assert.equal(row!.n, 1);
    const threads = await request(t.app.url).get('/v1/threads').set(bearer(mallory)).expect(200);
    assert.deepEqual(threads.body.threads, []);
  });

  test('the list is newest activity first with lastMessage and the caller’s unreadCount', async () => {
    const [alice, bob, carol] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const withBob = await createThread(t.app.url, alice, [bob]);
    const withCarol = await createThread(t.app.url, alice, [carol]);
    await sendMessage(t.app.url, bob, withBob, 'one');
    await sendMessage(t.app.url, bob, withBob, 'two');
    const last = await sendMessage(t.app.url, bob, withBob, 'three');

    const forAlice = await request(t.app.url).get('/v1/threads').set(bearer(alice)).expect(200);
    assert.deepEqual(forAlice.body.threads.map((t: { id: string }) => t.id), [withBob, withCarol]);
    assert.equal(forAlice.body.threads[0].unreadCount, 3);
    assert.equal(forAlice.body.threads[0].lastMessage.id, last.id);
    assert.equal(forAlice.body.threads[1].unreadCount, 0);
    const forBob = await request(t.app.url).get('/v1/threads').set(bearer(bob)).expect(200);
    assert.equal(forBob.body.threads[0].unreadCount, 0, 'sending marks your own messages read');

    await sendMessage(t.app.url, carol, withCarol, 'newer');
    const reordered = await request(t.app.url).get('/v1/threads').set(bearer(alice)).expect(200);
    assert.deepEqual(reordered.body.threads.map((t: { id: string }) => t.id), [withCarol, withBob]);
  });

  test('pages with limit and before (the last thread id of the previous page)', async () => {
    const alice = await register(t.app.url);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createThread(t.app.url, alice, [await register(t.app.url)]));
    const newestFirst = [...ids].reverse();
    const first = await request(t.app.url).get('/v1/threads?limit=2').set(bearer(alice)).expect(200);
    assert.deepEqual(first.body.threads.map((t: { id: string }) => t.id), newestFirst.slice(0, 2));
    const second = await request(t.app.url).get(`/v1/threads?limit=2&before=${newestFirst[1]}`).set(bearer(alice)).expect(200);
    assert.deepEqual(second.body.threads.map((t: { id: string }) => t.id), newestFirst.slice(2, 4));
    const bob = await register(t.app.url);
    const foreign = await createThread(t.app.url, bob, [await register(t.app.url)]);
    await request(t.app.url).get(`/v1/threads?before=${foreign}`).set(bearer(alice)).expect(400);
  });
});

describe('membership', () => {
  test('any member may add; the new member sees the thread from then on', async () => {
    const [alice, bob, carol] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const threadId = await createThread(t.app.url, alice, [bob], 'Group');
    await sendMessage(t.app.url, alice, threadId, 'before carol');
    const res = await request(t.app.url).post(`/v1/threads/${threadId}/members`).set(bearer(bob)).send({ userId: carol.id }).expect(200);
    assert.equal(res.body.thread.members.length, 3);
    const forCarol = await request(t.app.url).get(`/v1/threads/${threadId}`).set(bearer(carol)).expect(200);
    assert.equal(forCarol.body.thread.unreadCount, 0, 'a new member starts with nothing unread');
    await sendMessage(t.app.url, alice, threadId, 'after carol');
    const later = await request(t.app.url).get(`/v1/threads/${threadId}`).set(bearer(carol)).expect(200);
    assert.equal(later.body.thread.unreadCount, 1);
    // Adding a member again changes nothing.
    await request(t.app.url).post(`/v1/threads/${threadId}/members`).set(bearer(bob)).send({ userId: carol.id }).expect(200);
    const [row] = await t.db.query(`SELECT count(*)::int AS n FROM events WHERE thread_id = $1 AND type = 'thread.updated'`, [threadId]);
    assert.equal(row!.n, 3, 'one thread.updated for creation, one for bob accepting it (the helper does), one for the add');
  });

  test('a direct thread never has a third member; either may leave it, nobody removes the other', async () => {
    const [alice, bob, carol] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const threadId = await createThread(t.app.url, alice, [bob]);
    await request(t.app.url).post(`/v1/threads/${threadId}/members`).set(bearer(alice)).send({ userId: carol.id }).expect(409);
    await request(t.app.url).delete(`/v1/threads/${threadId}/members/${bob.id}`).set(bearer(alice)).expect(409);
    await request(t.app.url).delete(`/v1/threads/${threadId}/members/${bob.id}`).set(bearer(bob)).expect(204);
    await request(t.app.url).get(`/v1/threads/${threadId}`).set(bearer(bob)).expect(404);
  });

  test('a full thread refuses another member with 409', async () => {
    const users = [await register(t.app.url), await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const threadId = await createThread(t.app.url, users[0]!, users.slice(1));
    await request(t.app.url).post(`/v1/threads/${threadId}/members`).set(bearer(users[0]!)).send({ userId: (await register(t.app.url)).id }).expect(409);
  });

  test('anyone may leave; only the creator removes others (403 for other members)', async () => {
    const [alice, bob, carol] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const threadId = await createThread(t.app.url, alice, [bob, carol]);
    await request(t.app.url).delete(`/v1/threads/${threadId}/members/${carol.id}`).set(bearer(bob)).expect(403);
    await request(t.app.url).delete(`/v1/threads/${threadId}/members/${bob.id}`).set(bearer(bob)).expect(204);
    await request(t.app.url).get(`/v1/threads/${threadId}`).set(bearer(bob)).expect(404);
    await request(t.app.url).delete(`/v1/threads/${threadId}/members/${carol.id}`).set(bearer(alice)).expect(204);
    await request(t.app.url).get(`/v1/threads/${threadId}/messages`).set(bearer(carol)).expect(404);
    await request(t.app.url).delete(`/v1/threads/${threadId}/members/${carol.id}`).set(bearer(alice)).expect(404);
    const thread = await request(t.app.url).get(`/v1/threads/${threadId}`).set(bearer(alice)).expect(200);
    assert.deepEqual(thread.body.thread.members.map((m: { id: string }) => m.id), [alice.id]);
  });
});
