import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import { bearer, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { startTestInstance } from './support/instance.js';
import { openStream, waitFor } from './support/sse.js';

// Contacts, requests and blocks (issue 15): a thread from someone one shares no accepted thread
// with is a request, listed apart, with no presence, typing or push until accepted; a block
// keeps the blocked user out. The same over two instances: authorization.test.ts.
const t = useInstances();

interface ThreadView {
  id: string;
  kind: string;
  pending: string[];
  members: Array<{ id: string }>;
}

/** `from` starts a thread with `to` (direct without a title), as is: no one accepts anything. */
async function startThread(from: TestUser, to: TestUser[], title?: string): Promise<ThreadView> {
  const res = await request(t.app.url).post('/v1/threads').set(bearer(from)).send({ members: to.map((user) => user.id), ...(title && { title }) });
  assert.ok(res.status === 201 || res.status === 200, `${res.status} ${res.text}`);
  return res.body.thread as ThreadView;
}

const listed = async (user: TestUser, requests = false) =>
  ((await request(t.app.url).get(`/v1/threads?requests=${requests}`).set(bearer(user)).expect(200)).body.threads as ThreadView[]).map((thread) => thread.id);

const presenceSeenBy = async (viewer: TestUser, users: TestUser[]) =>
  (await request(t.app.url).get(`/v1/presence?userIds=${users.map((user) => user.id).join(',')}`).set(bearer(viewer)).expect(200)).body.presence as Array<{ userId: string }>;


/** A thread of `a` and `b` that both accepted: they are contacts. */
const befriend = (a: TestUser, b: TestUser) => createThread(t.app.url, a, [b], 'friends');

/** Who a message's push would name (postline_push_recipients: the one place that decides). */
const pushRecipients = async (messageId: string) =>
  (await t.db.query<{ user_id: string }>('SELECT user_id::text FROM postline_push_recipients($1)', [messageId])).map((row) => row.user_id);

describe('requests', () => {
  test("a stranger's thread is a request: listed apart, no presence either way, no typing, no push; accepting makes it a thread like any other", async () => {
    const [alice, bob, carol] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    await befriend(alice, carol); // carol sees alice's presence and typing: proof that they were sent
    const thread = await startThread(alice, [bob]);
    assert.deepEqual(thread.pending, [bob.id]);
    assert.ok((await listed(alice)).includes(thread.id), 'the thread is an ordinary one for its creator');
    assert.ok(!(await listed(bob)).includes(thread.id), 'not among bob’s threads…');
    assert.deepEqual(await listed(bob, true), [thread.id], '…but among his requests');
    const group = await startThread(alice, [bob, carol], 'a group');
    assert.deepEqual(group.pending, [bob.id], 'a group with a stranger and a contact: a request for the stranger only');

    const [bobStream, carolStream] = [await openStream(t.app.url, bob.token), await openStream(t.app.url, carol.token)];
    const aliceStream = await openStream(t.app.url, alice.token);
    try {
      // Alice comes online: her contact carol hears of it, bob does not; neither sees the other in GET /v1/presence.
      await waitFor(async () => (await carolStream.nextOfType('presence')).data.userId === alice.id, 5000, 'carol told alice is online');
      assert.deepEqual(await presenceSeenBy(alice, [bob]), []);
      assert.deepEqual(await presenceSeenBy(bob, [alice]), []);
      assert.deepEqual((await presenceSeenBy(carol, [alice])).map((p) => p.userId), [alice.id]);
      // Typing in the group reaches carol, not bob; bob's typing reaches nobody.
      await request(t.app.url).post(`/v1/threads/${group.id}/typing`).set(bearer(alice)).send({ typing: true }).expect(204);
      await request(t.app.url).post(`/v1/threads/${group.id}/typing`).set(bearer(bob)).send({ typing: true }).expect(204);
      const message = await sendMessage(t.app.url, alice, thread.id, 'hello stranger');
      const marker = await sendMessage(t.app.url, alice, group.id, 'marker');
      const bobGot = await bobStream.until(marker);
      assert.deepEqual(bobGot.filter((e) => e.type === 'presence' || e.type === 'typing'), [], 'bob: no presence, no typing');
      assert.ok(bobGot.some((e) => e.type === 'message.created' && e.data.id === message.id), 'bob gets the messages of his request');
      const carolGot = await carolStream.until(marker);
      assert.deepEqual(carolGot.filter((e) => e.type === 'typing').map((e) => e.data.userId), [alice.id], 'carol: alice’s typing, not bob’s');
      assert.deepEqual(await pushRecipients(message.id), [], 'no push for a request');

      // Bob accepts: everyone hears of it (pending is empty), and the two are contacts from now on.
      const accepted = await request(t.app.url).post(`/v1/threads/${thread.id}/accept`).set(bearer(bob)).expect(200);
      assert.deepEqual(accepted.body.thread.pending, []);
      const updated = await aliceStream.nextOfType('thread.updated');
      assert.equal(updated.threadId, thread.id);
      assert.deepEqual((updated.data as { pending: string[] }).pending, []);
      assert.deepEqual(await listed(bob, true), [group.id], 'the group is still a request');
      assert.ok((await listed(bob)).includes(thread.id));
      assert.deepEqual((await presenceSeenBy(alice, [bob])).map((p) => p.userId), [bob.id]);
      assert.deepEqual(await pushRecipients(message.id), [bob.id], 'now he may be pushed to');
      await request(t.app.url).post(`/v1/threads/${thread.id}/typing`).set(bearer(alice)).send({ typing: false }).expect(204);
      await request(t.app.url).post(`/v1/threads/${thread.id}/typing`).set(bearer(alice)).send({ typing: true }).expect(204);
      const typing = await bobStream.nextOfType('typing');
      assert.deepEqual(typing.data, { userId: alice.id, typing: true });
      // Accepting again changes nothing.
      const again = await request(t.app.url).post(`/v1/threads/${thread.id}/accept`).set(bearer(bob)).expect(200);
      assert.deepEqual(again.body.thread, accepted.body.thread);
    } finally {
      for (const stream of [aliceStream, bobStream, carolStream]) stream.close();
    }
  });

  test('replying to a request accepts it; contacts never get requests, and a contact adding a stranger makes a request for the stranger', async () => {
    const [alice, bob, dave] = [await register(t.app.url), await register(t.app.url), await register(t.app.url)];
    const thread = await startThread(alice, [bob]);
    await sendMessage(t.app.url, bob, thread.id, 'who are you?');
    const after = (await request(t.app.url).get(`/v1/threads/${thread.id}`).set(bearer(bob)).expect(200)).body.thread as ThreadView;
    assert.deepEqual(after.pending, []);
    assert.deepEqual(await listed(bob, true), []);
    const events = await t.db.query<{ type: string }>('SELECT type FROM events WHERE thread_id = $1 ORDER BY id', [thread.id]);
    assert.deepEqual(events.map((e) => e.type), ['thread.updated', 'message.created', 'thread.updated'], 'the reply, then the thread without bob in pending');
    // Now contacts: alice's new group with bob is no request for him.
    assert.deepEqual((await startThread(alice, [bob], 'team')).pending, []);
    // Bob (a contact of alice) is a stranger to dave: dave's membership is a request, added by bob too.
    const group = await startThread(alice, [bob], 'team two');
    const added = await request(t.app.url).post(`/v1/threads/${group.id}/members`).set(bearer(bob)).send({ userId: dave.id }).expect(200);
    assert.deepEqual(added.body.thread.pending, [dave.id]);
  });

  test('starting threads is capped per user per hour; asking again for a direct thread, and refused requests, do not count', async () => {
    const capped = await startTestInstance(t.db.url, { POSTLINE_THREADS_PER_HOUR: '3' });
    try {
      const [mallory, ...targets] = await Promise.all(Array.from({ length: 5 }, () => register(capped.url)));
      const start = (members: string[]) => request(capped.url).post('/v1/threads').set(bearer(mallory!)).send({ members });
      assert.equal((await start([targets[0]!.id])).status, 201);
      assert.equal((await start([targets[0]!.id])).status, 200, 'the same direct thread again');
      assert.equal((await start(['987654321'])).status, 400);
      assert.equal((await start([targets[1]!.id])).status, 201);
      assert.equal((await start([targets[2]!.id, targets[3]!.id])).status, 201);
      const refused = await start([targets[3]!.id]);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers['retry-after']) > 0);
      assert.match(refused.body.detail, /3 new threads per user per hour/);
      const [{ n }] = (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM threads WHERE created_by = $1', [mallory!.id])) as [{ n: number }];
      assert.equal(n, 3);
      // Others are not affected.
      assert.equal((await request(capped.url).post('/v1/threads').set(bearer(targets[0]!)).send({ members: [targets[1]!.id] })).status, 201);
    } finally {
      await capped.stop();
    }
  });
});

describe('leaving and blocking', () => {
  test('either member may leave a direct thread: nothing more of it reaches them; asking for it again brings them back, as a request', async () => {
    const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
    const thread = await startThread(alice, [bob]);
    const stream = await openStream(t.app.url, bob.token);
    try {
      await request(t.app.url).delete(`/v1/threads/${thread.id}/members/${bob.id}`).set(bearer(bob)).expect(204);
      assert.equal((await stream.nextOfType('thread.removed')).threadId, thread.id);
      await sendMessage(t.app.url, alice, thread.id, 'still there?');
      await request(t.app.url).get(`/v1/threads/${thread.id}/messages`).set(bearer(bob)).expect(404);
      assert.deepEqual(await listed(bob, true), []);
      const back = await startThread(alice, [bob]);
      assert.equal(back.id, thread.id, 'the pair’s one direct thread');
      assert.deepEqual(back.pending, [bob.id]);
      const rejoined = await stream.nextOfType('thread.updated');
      assert.equal(rejoined.threadId, thread.id);
    } finally {
      stream.close();
    }
  });

  test('a blocked user cannot add the blocker or message them in a direct thread, and neither sees the other’s presence or typing; unblocking undoes it', async () => {
    const [bob, mallory] = [await register(t.app.url), await register(t.app.url)];
    const direct = await createThread(t.app.url, mallory, [bob]); // they were friends: contacts
    const group = await createThread(t.app.url, bob, [mallory], 'group');
    const unknownAnswer = (await request(t.app.url).post('/v1/threads').set(bearer(mallory)).send({ members: ['987654321'] }).expect(400)).body;
    const unknownAdd = (await request(t.app.url).post(`/v1/threads/${group}/members`).set(bearer(mallory)).send({ userId: '987654321' }).expect(400)).body;
    assert.deepEqual((await presenceSeenBy(mallory, [bob])).map((p) => p.userId), [bob.id]);

    await request(t.app.url).post(`/v1/users/${mallory.id}/block`).set(bearer(bob)).expect(204);
    await request(t.app.url).post(`/v1/users/${mallory.id}/block`).set(bearer(bob)).expect(204); // again: no change
    assert.deepEqual((await request(t.app.url).get('/v1/blocks').set(bearer(bob)).expect(200)).body.users.map((u: { id: string }) => u.id), [mallory.id]);
    // Mallory cannot tell the block from an unknown id when adding bob.
    assert.deepEqual((await request(t.app.url).post('/v1/threads').set(bearer(mallory)).send({ members: [bob.id], title: 'again' }).expect(400)).body, unknownAnswer);
    const other = await createThread(t.app.url, mallory, [await register(t.app.url)], 'mallory’s');
    assert.deepEqual((await request(t.app.url).post(`/v1/threads/${other}/members`).set(bearer(mallory)).send({ userId: bob.id }).expect(400)).body, unknownAdd);
    // No messages in the direct thread, either way; the group goes on.
    const refused = await request(t.app.url).post(`/v1/threads/${direct}/messages`).set(bearer(mallory)).send({ body: 'let me explain' }).expect(403);
    assert.match(refused.headers['content-type'] ?? '', /problem\+json/);
    await request(t.app.url).post(`/v1/threads/${direct}/messages`).set(bearer(bob)).send({ body: 'bye' }).expect(403);
    await sendMessage(t.app.url, mallory, group, 'in the group');
    // No presence either way, no typing reaching bob.
    assert.deepEqual(await presenceSeenBy(mallory, [bob]), []);
    assert.deepEqual(await presenceSeenBy(bob, [mallory]), []);
    const stream = await openStream(t.app.url, bob.token);
    try {
      await request(t.app.url).post(`/v1/threads/${group}/typing`).set(bearer(mallory)).send({ typing: true }).expect(204);
      const marker = await sendMessage(t.app.url, mallory, group, 'marker');
      assert.deepEqual((await stream.until(marker)).filter((e) => e.type === 'typing' || e.type === 'presence'), []);
    } finally {
      stream.close();
    }
    // Leaving the direct thread and being asked for it again: refused while blocked.
    await request(t.app.url).delete(`/v1/threads/${direct}/members/${bob.id}`).set(bearer(bob)).expect(204);
    await request(t.app.url).post('/v1/threads').set(bearer(mallory)).send({ members: [bob.id] }).expect(400);

    await request(t.app.url).delete(`/v1/users/${mallory.id}/block`).set(bearer(bob)).expect(204);
    assert.deepEqual((await request(t.app.url).get('/v1/blocks').set(bearer(bob)).expect(200)).body.users, []);
    assert.deepEqual((await presenceSeenBy(mallory, [bob])).map((p) => p.userId), [bob.id], 'contacts again through the group');
    const back = await startThread(mallory, [bob]);
    assert.equal(back.id, direct);
    assert.deepEqual(back.pending, [], 'contacts: back in without a request');
    await sendMessage(t.app.url, mallory, direct, 'sorry');
  });
});
