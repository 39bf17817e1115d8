import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import { bearer, createPair, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { poll } from './support/poll.js';
import { Watch } from './support/watch.js';

// Sent → delivered → read over two instances: the markers, the events on both delivery paths,
// who receives them, and the receipts every thread object carries.
const t = useInstances({ count: 2 });

const delivered = (app: { url: string }, user: TestUser, threadId: string, upTo: string) =>
  request(app.url).post(`/v1/threads/${threadId}/delivered`).set(bearer(user)).send({ upTo });
const seen = (app: { url: string }, user: TestUser, threadId: string, upTo: string) =>
  request(app.url).post(`/v1/threads/${threadId}/seen`).set(bearer(user)).send({ upTo });

async function receipts(app: { url: string }, viewer: TestUser, threadId: string): Promise<Record<string, [number, number]>> {
  const res = await request(app.url).get(`/v1/threads/${threadId}`).set(bearer(viewer)).expect(200);
  return Object.fromEntries(
    res.body.thread.receipts.map((r: { userId: string; deliveredSeq: number; readSeq: number }) => [r.userId, [r.deliveredSeq, r.readSeq]]),
  );
}

/** The audiences of a thread's events of `type`, in order. */
async function audiences(threadId: string, type: string): Promise<string[][]> {
  const rows = await t.db.query<{ audience: string[] }>(
    'SELECT audience::text[] AS audience FROM events WHERE thread_id = $1 AND type = $2 ORDER BY id',
    [threadId, type],
  );
  return rows.map((row) => row.audience.sort());
}

describe('delivered', () => {
  test('an acknowledgement moves the marker forward only; the sender learns it live on both paths of the other instance, and from the thread after a reload', async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const m1 = await sendMessage(t.a.url, alice, threadId, 'one');
    const m2 = await sendMessage(t.a.url, alice, threadId, 'two');
    assert.deepEqual(await receipts(t.b, alice, threadId), { [alice.id]: [2, 2], [bob.id]: [0, 0] }, 'sent: the sender has read her own');
    const watch = await Watch.open(t.b.url, alice.token);
    try {
      await delivered(t.a, bob, threadId, m2.id).expect(204);
      const { sse, poll: polled } = await watch.next('delivered');
      assert.deepEqual(sse.data, { userId: bob.id, upTo: m2.id, seq: 2 });
      assert.deepEqual(polled, sse, 'the same envelope on both paths');
      assert.equal(sse.threadId, threadId);
      for (const app of t.apps) assert.deepEqual(await receipts(app, alice, threadId), { [alice.id]: [2, 2], [bob.id]: [2, 0] });

      // Backwards and repeated acknowledgements change nothing and say nothing.
      await delivered(t.b, bob, threadId, m1.id).expect(204);
      await delivered(t.b, bob, threadId, m2.id).expect(204);
      assert.equal((await audiences(threadId, 'delivered')).length, 1);
      assert.deepEqual(await receipts(t.a, bob, threadId), { [alice.id]: [2, 2], [bob.id]: [2, 0] });

      // Reading delivers too: read up to 3 puts the delivered position at 3 without a delivered event.
      const m3 = await sendMessage(t.a.url, alice, threadId, 'three');
      await seen(t.b, bob, threadId, m3.id).expect(204);
      const read = await watch.next('seen');
      assert.deepEqual(read.sse.data, { userId: bob.id, upTo: m3.id, seq: 3 });
      assert.deepEqual(await receipts(t.a, alice, threadId), { [alice.id]: [3, 3], [bob.id]: [3, 3] });
      await delivered(t.a, bob, threadId, m3.id).expect(204);
      assert.equal((await audiences(threadId, 'delivered')).length, 1, 'already delivered by reading');
    } finally {
      watch.close();
    }
  });

  test('in a group, an acknowledgement reaches the one who made it and the senders of what it newly covers, not every member', async () => {
    const [alice, bob, carol, dave] = [await register(t.a.url), await register(t.a.url), await register(t.a.url), await register(t.a.url)];
    const threadId = await createThread(t.a.url, alice, [bob, carol, dave], 'group');
    await sendMessage(t.a.url, alice, threadId, 'from alice');
    const fromBob = await sendMessage(t.a.url, bob, threadId, 'from bob');
    const [daveWatch, bobWatch] = [await Watch.open(t.b.url, dave.token), await Watch.open(t.b.url, bob.token)];
    try {
      await delivered(t.a, carol, threadId, fromBob.id).expect(204);
      assert.deepEqual((await bobWatch.next('delivered')).sse.data, { userId: carol.id, upTo: fromBob.id, seq: 2 });
      const again = await sendMessage(t.a.url, alice, threadId, 'alice again');
      await delivered(t.b, carol, threadId, again.id).expect(204);
      assert.deepEqual(await audiences(threadId, 'delivered'), [[alice.id, bob.id, carol.id].sort(), [alice.id, carol.id].sort()]);
      // Dave sent nothing: his next durable events on both paths are the messages, no receipt.
      const marker = await sendMessage(t.a.url, alice, threadId, 'marker');
      const daveSaw = await daveWatch.nextDurable(2);
      assert.deepEqual(daveSaw.map((e) => e.type), ['message.created', 'message.created']);
      assert.equal(daveSaw[1]!.data.id, marker.id);
      // Everyone still sees everyone's positions in the thread.
      const all = await receipts(t.b, dave, threadId);
      assert.deepEqual(all[carol.id], [3, 0]);
    } finally {
      daveWatch.close();
      bobWatch.close();
    }
  });

  test('a poll that carried a message does not acknowledge it: only the client says it has it', async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const { cursor } = await poll(t.b.url, bob.token);
    const sent = await sendMessage(t.a.url, alice, threadId, 'polled');
    let answer = await poll(t.b.url, bob.token, { cursor, timeout: 10 });
    while (!answer.events.some((e) => e.type === 'message.created')) answer = await poll(t.b.url, bob.token, { cursor: answer.cursor, timeout: 10 });
    await poll(t.b.url, bob.token, { cursor: answer.cursor, timeout: 0 });
    assert.deepEqual((await receipts(t.a, alice, threadId))[bob.id], [0, 0]);
    await delivered(t.b, bob, threadId, sent.id).expect(204);
    assert.deepEqual((await receipts(t.a, alice, threadId))[bob.id], [1, 0]);
  });

  test('non-members get 404, a message of another thread 400, and neither moves anything', async () => {
    const { alice, bob, threadId } = await createPair(t.a.url);
    const other = await createThread(t.a.url, alice, [await register(t.a.url)]);
    const foreign = await sendMessage(t.a.url, alice, other, 'elsewhere');
    const mine = await sendMessage(t.a.url, alice, threadId, 'here');
    const res = await delivered(t.b, bob, threadId, foreign.id).expect(400);
    assert.deepEqual(res.body.errors, [{ path: 'upTo', message: 'no such message in this thread' }]);
    await delivered(t.b, await register(t.b.url), threadId, mine.id).expect(404);
    assert.deepEqual((await receipts(t.a, alice, threadId))[bob.id], [0, 0]);
  });

  test('volume: one message in a group of 8 that everyone acknowledges and reads', async () => {
    const members = await Promise.all(Array.from({ length: 8 }, () => register(t.a.url)));
    const [sender, ...others] = members as [TestUser, ...TestUser[]];
    const threadId = await createThread(t.a.url, sender, others, 'eight');
    const message = await sendMessage(t.a.url, sender, threadId, 'hello all');
    for (const member of others) await delivered(t.b, member, threadId, message.id).expect(204);
    for (const member of others) await seen(t.a, member, threadId, message.id).expect(204);
    const deliveries = async (type: string) => (await audiences(threadId, type)).reduce((sum, audience) => sum + audience.length, 0);
    const figures = { members: 8, deliveredEvents: (await audiences(threadId, 'delivered')).length, deliveredDeliveries: await deliveries('delivered'), seenDeliveries: await deliveries('seen') };
    assert.equal(figures.deliveredDeliveries, 2 * 7, 'each acknowledgement reaches two users');
    assert.equal(figures.seenDeliveries, 8 * 7);
    console.log(`# figures receipts: ${JSON.stringify(figures)}`);
  });
});
