import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import type { Message } from '../src/contract.js';
import { bearer, createPair, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { openStream, waitFor } from './support/sse.js';
import { Watch } from './support/watch.js';

// Edit, delete, replies and reactions over two instances: REST answers on one, events on both
// delivery paths of the other.
const t = useInstances({ count: 2 });

const messageUrl = (threadId: string, messageId: string) => `/v1/threads/${threadId}/messages/${messageId}`;
const reactionUrl = (threadId: string, messageId: string, emoji: string) => `${messageUrl(threadId, messageId)}/reactions/${encodeURIComponent(emoji)}`;

function reply(app: { url: string }, sender: TestUser, threadId: string, body: string, replyTo: string) {
  return request(app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(sender)).send({ body, replyTo });
}

async function listed(app: { url: string }, viewer: TestUser, threadId: string): Promise<Message[]> {
  return (await request(app.url).get(`/v1/threads/${threadId}/messages`).set(bearer(viewer)).expect(200)).body.messages;
}

async function threadOf(app: { url: string }, viewer: TestUser, threadId: string) {
  return (await request(app.url).get(`/v1/threads/${threadId}`).set(bearer(viewer)).expect(200)).body.thread;
}

describe('edit', () => {
  test('the sender edits: editedAt is set and message.updated carries the new message on both paths of the other instance', async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const sent = await sendMessage(t.a.url, alice, threadId, 'helo');
    const watch = await Watch.open(t.b.url, bob.token);
    try {
      const res = await request(t.a.url).patch(messageUrl(threadId, sent.id)).set(bearer(alice)).send({ body: '  hello  ' }).expect(200);
      const edited: Message = res.body.message;
      assert.equal(edited.body, 'hello');
      assert.match(edited.editedAt!, /^\d{4}-\d\d-\d\dT.*Z$/);
      assert.equal(edited.seq, sent.seq);
      const { sse, poll } = await watch.next('message.updated');
      assert.deepEqual(sse.data, edited);
      assert.deepEqual(poll, sse);
      assert.deepEqual((await listed(t.b, bob, threadId)).map((m) => m.body), ['hello']);
      assert.equal((await threadOf(t.b, bob, threadId)).lastMessage.body, 'hello');
      // The same text again: nothing changes, nothing is announced.
      const same = await request(t.b.url).patch(messageUrl(threadId, sent.id)).set(bearer(alice)).send({ body: 'hello' }).expect(200);
      assert.deepEqual(same.body.message, edited);
      const [{ n }] = (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM events WHERE thread_id = $1 AND type = 'message.updated'`, [threadId])) as [{ n: number }];
      assert.equal(n, 1);
    } finally {
      watch.close();
    }
  });

  test("someone else's message is 403, another thread's 404, a deleted one 409; nothing changes", async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const other = await createThread(t.a.url, alice, [await register(t.a.url)]);
    const foreign = await sendMessage(t.a.url, alice, other, 'elsewhere');
    const sent = await sendMessage(t.a.url, alice, threadId, 'original');
    await request(t.b.url).patch(messageUrl(threadId, sent.id)).set(bearer(bob)).send({ body: 'forged' }).expect(403);
    await request(t.b.url).patch(messageUrl(threadId, foreign.id)).set(bearer(alice)).send({ body: 'moved' }).expect(404);
    await request(t.b.url).patch(messageUrl(threadId, '987654321')).set(bearer(alice)).send({ body: 'ghost' }).expect(404);
    await request(t.b.url).patch(messageUrl(threadId, sent.id)).set(bearer(alice)).send({ body: ' ' }).expect(400);
    await request(t.b.url).delete(messageUrl(threadId, sent.id)).set(bearer(alice)).expect(204);
    await request(t.b.url).patch(messageUrl(threadId, sent.id)).set(bearer(alice)).send({ body: 'revived' }).expect(409);
    const rows = await t.db.query('SELECT body, edited_at FROM messages WHERE id = ANY ($1::bigint[]) ORDER BY id', [[foreign.id, sent.id]]);
    assert.deepEqual(rows, [{ body: 'elsewhere', edited_at: null }, { body: null, edited_at: null }]);
  });
});

describe('delete', () => {
  test('leaves a tombstone: seq kept, text gone from the database (event log included), unreadCount and lastMessage skip it; again is 204', async () => {
    const [alice, bob, carol, dave] = [await register(t.a.url), await register(t.a.url), await register(t.a.url), await register(t.a.url)];
    const threadId = await createThread(t.a.url, alice, [bob, dave], 'group');
    const first = await sendMessage(t.a.url, alice, threadId, 'the first');
    const doomed = await sendMessage(t.a.url, alice, threadId, 'a secret to take back');
    // Copies of the text in the log: a reply's quote, an edit, and the lastMessage of a thread.updated.
    const answer = (await reply(t.a, bob, threadId, 'what secret?', doomed.id).expect(201)).body.message as Message;
    assert.deepEqual(answer.replyTo, { id: doomed.id, seq: 2, senderId: alice.id, excerpt: 'a secret to take back', deletedAt: null });
    await request(t.a.url).patch(messageUrl(threadId, doomed.id)).set(bearer(alice)).send({ body: 'a secret to take back, edited' }).expect(200);
    const last = await sendMessage(t.a.url, alice, threadId, 'the last, also secret');
    await request(t.a.url).post(`/v1/threads/${threadId}/members`).set(bearer(alice)).send({ userId: carol.id }).expect(200);
    await request(t.a.url).put(reactionUrl(threadId, last.id, '👍')).set(bearer(bob)).expect(200);
    const [{ created }] = (await t.db.query<{ created: string }>(
      `SELECT id::text AS created FROM events WHERE type = 'message.created' AND envelope #>> '{data,id}' = $1`,
      [doomed.id],
    )) as [{ created: string }];
    assert.equal((await threadOf(t.a, bob, threadId)).unreadCount, 1, 'alice’s message after bob’s answer');
    assert.equal((await threadOf(t.a, dave, threadId)).unreadCount, 4, 'dave has read nothing');

    await waitFor(() => t.a.realtime.feed.holds(Number(created) - 1), 5000, 'instance A to hold the events in memory');
    const watch = await Watch.open(t.b.url, bob.token);
    try {
      for (const message of [doomed, last]) await request(t.a.url).delete(messageUrl(threadId, message.id)).set(bearer(alice)).expect(204);
      const deleted = await watch.nextDurable(2);
      assert.deepEqual(deleted.map((e) => [e.type, (e.data as unknown as Message).id]), [['message.deleted', doomed.id], ['message.deleted', last.id]]);
      const tombstone = deleted[1]!.data as unknown as Message;
      assert.equal(tombstone.body, null);
      assert.match(tombstone.deletedAt!, /Z$/);
      assert.equal(tombstone.seq, 4);
      assert.deepEqual(tombstone.reactions, []);

      const messages = await listed(t.b, bob, threadId);
      assert.deepEqual(messages.map((m) => [m.seq, m.body]), [[1, 'the first'], [2, null], [3, 'what secret?'], [4, null]], 'seq stays gapless');
      assert.deepEqual(messages[2]!.replyTo, { id: doomed.id, seq: 2, senderId: alice.id, excerpt: null, deletedAt: messages[1]!.deletedAt });
      const thread = await threadOf(t.b, bob, threadId);
      assert.equal(thread.lastMessage.id, answer.id, 'the newest message still there');
      assert.equal(thread.unreadCount, 0);
      assert.equal((await threadOf(t.a, dave, threadId)).unreadCount, 2, 'the two deleted ones no longer count');
      assert.equal((await threadOf(t.a, carol, threadId)).unreadCount, 0);

      const leftovers = await t.db.query(
        `SELECT 'messages' AS in FROM messages WHERE body LIKE '%secret%' AND id <> $1
         UNION ALL SELECT 'events ' || type FROM events WHERE envelope::text LIKE '%secret to take back%' OR envelope::text LIKE '%also secret%'`,
        [answer.id],
      );
      assert.deepEqual(leftovers, [], 'no copy of the text is left');
      assert.equal((await t.db.query('SELECT 1 FROM message_reactions WHERE message_id = $1', [last.id])).length, 0);

      // A replay from before the deletes gets the tombstones, then the deletions: also from an
      // instance that held the original events in memory.
      const [{ head }] = (await t.db.query<{ head: string }>('SELECT max(id)::text AS head FROM events')) as [{ head: string }];
      await waitFor(() => t.a.realtime.feed.cursor >= Number(head), 5000, 'instance A to read the deletions');
      const replay = await openStream(t.a.url, bob.token, { headers: { 'Last-Event-ID': String(Number(created) - 1) } });
      const replayed = [];
      while (replayed.filter((e) => e.type === 'message.deleted').length < 2) replayed.push(await replay.nextEnvelope());
      replay.close();
      assert.deepEqual(replayed.filter((e) => e.id !== undefined).map((e) => e.type), [
        'message.created', 'message.created', 'message.updated', 'message.created', 'thread.updated', 'reaction.added', 'message.deleted', 'message.deleted',
      ]);
      assert.deepEqual([replayed[0]!.data.id, replayed[0]!.data.body], [doomed.id, null], 'the replay carries the tombstone');

      // Again: 204, no new event. Someone else: 403. Another thread's message: 404.
      await request(t.b.url).delete(messageUrl(threadId, doomed.id)).set(bearer(alice)).expect(204);
      await request(t.b.url).delete(messageUrl(threadId, first.id)).set(bearer(bob)).expect(403);
      const elsewhere = await sendMessage(t.a.url, alice, await createThread(t.a.url, alice, [carol]), 'elsewhere');
      await request(t.b.url).delete(messageUrl(threadId, elsewhere.id)).set(bearer(alice)).expect(404);
      const [{ n }] = (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM events WHERE thread_id = $1 AND type = 'message.deleted'`, [threadId])) as [{ n: number }];
      assert.equal(n, 2);
      assert.equal((await listed(t.a, alice, threadId))[0]!.body, 'the first');
    } finally {
      watch.close();
    }
  });
});

describe('replies', () => {
  test('a reply carries a quote of the message it answers; replyTo of another thread, unknown or deleted is 400 and stores nothing', async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const question = await sendMessage(t.a.url, alice, threadId, `Lunch? ${'x'.repeat(300)}`);
    const watch = await Watch.open(t.b.url, alice.token);
    try {
      const answer = (await reply(t.a, bob, threadId, 'Yes!', question.id).expect(201)).body.message as Message;
      assert.deepEqual(answer.replyTo, { id: question.id, seq: 1, senderId: alice.id, excerpt: `Lunch? ${'x'.repeat(153)}`, deletedAt: null });
      const { sse, poll } = await watch.next('message.created');
      assert.deepEqual(sse.data, answer);
      assert.deepEqual(poll, sse);
    } finally {
      watch.close();
    }
    const other = await createThread(t.a.url, alice, [await register(t.a.url)]);
    const foreign = await sendMessage(t.a.url, alice, other, 'elsewhere');
    const gone = await sendMessage(t.a.url, alice, threadId, 'gone');
    await request(t.a.url).delete(messageUrl(threadId, gone.id)).set(bearer(alice)).expect(204);
    const before = await t.db.query('SELECT count(*)::int AS n FROM messages');
    for (const [replyTo, problem] of [[foreign.id, 'no such message in this thread'], ['987654321', 'no such message in this thread'], [gone.id, 'is a deleted message']]) {
      const res = await reply(t.b, bob, threadId, 'hm', replyTo!).expect(400);
      assert.deepEqual(res.body.errors, [{ path: 'replyTo', message: problem }]);
    }
    assert.deepEqual(await t.db.query('SELECT count(*)::int AS n FROM messages'), before);
  });
});

describe('reactions', () => {
  test('idempotent per user and emoji; aggregated on the message; reaction events on both paths of the other instance', async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const sent = await sendMessage(t.a.url, alice, threadId, 'react to me');
    const watch = await Watch.open(t.b.url, alice.token);
    try {
      const first = await request(t.a.url).put(reactionUrl(threadId, sent.id, '👍')).set(bearer(bob)).expect(200);
      assert.deepEqual(first.body.message.reactions, [{ emoji: '👍', count: 1, userIds: [bob.id] }]);
      const added = await watch.next('reaction.added');
      assert.deepEqual(added.sse.data, { messageId: sent.id, userId: bob.id, emoji: '👍', reactions: first.body.message.reactions });
      assert.deepEqual(added.poll, added.sse);
      await request(t.b.url).put(reactionUrl(threadId, sent.id, '👍')).set(bearer(bob)).expect(200);
      await request(t.b.url).put(reactionUrl(threadId, sent.id, '👍')).set(bearer(alice)).expect(200);
      // U+2764 alone is stored with its emoji presentation selector: one reaction, not two.
      await request(t.b.url).put(reactionUrl(threadId, sent.id, '\u2764')).set(bearer(alice)).expect(200);
      const both = await request(t.a.url).put(reactionUrl(threadId, sent.id, '\u2764\uFE0F')).set(bearer(bob)).expect(200);
      assert.deepEqual(both.body.message.reactions, [
        { emoji: '👍', count: 2, userIds: [bob.id, alice.id] },
        { emoji: '\u2764\uFE0F', count: 2, userIds: [alice.id, bob.id] },
      ]);
      const removed = await request(t.a.url).delete(reactionUrl(threadId, sent.id, '👍')).set(bearer(bob)).expect(200);
      await request(t.a.url).delete(reactionUrl(threadId, sent.id, '👍')).set(bearer(bob)).expect(200);
      assert.deepEqual(removed.body.message.reactions[0], { emoji: '👍', count: 1, userIds: [alice.id] });
      const events = await watch.nextDurable(4);
      assert.deepEqual(events.map((e) => [e.type, e.data.userId, e.data.emoji]), [
        ['reaction.added', alice.id, '👍'],
        ['reaction.added', alice.id, '\u2764\uFE0F'],
        ['reaction.added', bob.id, '\u2764\uFE0F'],
        ['reaction.removed', bob.id, '👍'],
      ], 'repeats announce nothing');
      assert.deepEqual((await listed(t.b, alice, threadId))[0]!.reactions, removed.body.message.reactions);
    } finally {
      watch.close();
    }
  });

  test('at most 20 different emoji per message; not an emoji, a deleted message, another thread: refused, nothing stored', async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const sent = await sendMessage(t.a.url, alice, threadId, 'popular');
    const emoji = [...'😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙🥲😚🙂🤗'];
    for (const e of emoji.slice(0, 20)) await request(t.a.url).put(reactionUrl(threadId, sent.id, e)).set(bearer(alice)).expect(200);
    const full = await request(t.b.url).put(reactionUrl(threadId, sent.id, emoji[20]!)).set(bearer(bob)).expect(409);
    assert.match(full.body.detail, /at most 20/);
    await request(t.b.url).put(reactionUrl(threadId, sent.id, emoji[0]!)).set(bearer(bob)).expect(200);
    for (const bad of ['a', '👍👍', ':+1:', '1', '👍 ', '\u200d', 'ok👍']) {
      const res = await request(t.b.url).put(reactionUrl(threadId, sent.id, bad)).set(bearer(bob)).expect(400);
      assert.deepEqual(res.body.errors, [{ path: 'emoji', message: 'must be a single emoji' }], bad);
    }
    for (const good of ['👨‍👩‍👧‍👦', '🇻🇳', '1️⃣', '👍🏽']) await request(t.b.url).delete(reactionUrl(threadId, sent.id, good)).set(bearer(bob)).expect(200);
    const other = await createThread(t.a.url, alice, [await register(t.a.url)]);
    const foreign = await sendMessage(t.a.url, alice, other, 'elsewhere');
    await request(t.b.url).put(reactionUrl(threadId, foreign.id, '👍')).set(bearer(alice)).expect(404);
    await request(t.b.url).put(reactionUrl(other, foreign.id, '👍')).set(bearer(bob)).expect(404);
    await request(t.a.url).delete(messageUrl(threadId, sent.id)).set(bearer(alice)).expect(204);
    await request(t.b.url).put(reactionUrl(threadId, sent.id, '👍')).set(bearer(bob)).expect(409);
    assert.equal((await t.db.query('SELECT 1 FROM message_reactions WHERE message_id = ANY ($1::bigint[])', [[sent.id, foreign.id]])).length, 0);
  });
});
