import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { bearer, createPair, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { poll } from './support/poll.js';
import { openStream, waitFor } from './support/sse.js';

// Two instances on one database. The periodic catch-up is slow here (60 s), so anything that
// arrives within a test came by NOTIFY or by the listener's reconnect catch-up.
const settings = {
  POSTLINE_CATCH_UP_INTERVAL_MS: '60000',
  POSTLINE_PRESENCE_GRACE_MS: '300',
  POSTLINE_POLL_PRESENCE_MS: '300',
  POSTLINE_LISTENER_CHECK_MS: '1000',
};
const t = useInstances({ count: 2, env: settings });

const pair = () => createPair(t.a.url);

describe('across instances', () => {
  test('a POST on A reaches a stream on B and a waiting poll on B', async () => {
    const { alice, bob, threadId } = await pair();
    const stream = await openStream(t.b.url, bob.token);
    const { cursor } = await poll(t.b.url, bob.token);
    const waiting = poll(t.b.url, bob.token, { cursor, timeout: 20 });
    try {
      const sent = await sendMessage(t.a.url, alice, threadId, 'from A');
      assert.deepEqual((await stream.nextEnvelope()).data, sent);
      assert.deepEqual((await waiting).events.map((e) => e.data), [sent]);
    } finally {
      stream.close();
    }
  });

  test('typing reaches the other members on the other instance, not the sender; a repeat within 2 s is not re-sent', async () => {
    const [alice, bob, carol] = [await register(t.a.url), await register(t.a.url), await register(t.a.url)];
    const threadId = await createThread(t.a.url, alice, [bob, carol]);
    const bobStream = await openStream(t.b.url, bob.token);
    const aliceStream = await openStream(t.b.url, alice.token);
    try {
      for (let i = 0; i < 3; i++) {
        await request(i % 2 ? t.b.url : t.a.url).post(`/v1/threads/${threadId}/typing`).set(bearer(alice)).send({ typing: true }).expect(204);
      }
      await request(t.a.url).post(`/v1/threads/${threadId}/typing`).set(bearer(alice)).type('form').send('typing=false').expect(204);
      const typing = await bobStream.nextOfType('typing');
      assert.deepEqual(typing.data, { userId: alice.id, typing: true });
      assert.equal(typing.threadId, threadId);
      assert.equal(typing.id, undefined);
      const stopped = await bobStream.nextOfType('typing');
      assert.deepEqual(stopped.data, { userId: alice.id, typing: false }, 'the repeated true events were not re-sent');
      // The sender hears nothing of it: her next event is the message below.
      const sent = await sendMessage(t.a.url, bob, threadId, 'marker');
      const aliceSaw = await aliceStream.nextOfType('message.created');
      assert.deepEqual(aliceSaw.data, sent);
      assert.ok(!aliceStream.raw.includes('event:typing'), 'the sender got no typing event');
      const [{ n }] = (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE type = $1', ['typing'])) as [{ n: number }];
      assert.equal(n, 0, 'typing is never stored');
    } finally {
      bobStream.close();
      aliceStream.close();
    }
  });

  test('typing by a non-member is 404 and reaches nobody', async () => {
    const { alice, bob, threadId } = await pair();
    const mallory = await register(t.a.url);
    const bobStream = await openStream(t.b.url, bob.token);
    try {
      await request(t.a.url).post(`/v1/threads/${threadId}/typing`).set(bearer(mallory)).send({ typing: true }).expect(404);
      await request(t.a.url).post(`/v1/threads/${threadId}/typing`).set(bearer(mallory)).send({ typing: 'yes' }).expect(400);
      // A member's typing, sent after on the same channel, is the first typing event the member sees.
      await request(t.a.url).post(`/v1/threads/${threadId}/typing`).set(bearer(alice)).send({ typing: true }).expect(204);
      assert.deepEqual((await bobStream.nextOfType('typing')).data, { userId: alice.id, typing: true });
    } finally {
      bobStream.close();
    }
  });

  test('presence: a stream on A makes its user online for co-members streaming on B, and offline after the grace period', async () => {
    const { alice, bob } = await pair();
    const bobStream = await openStream(t.b.url, bob.token);
    try {
      assert.equal(await presenceOf(t.b.url, bob, alice.id), false);
      const aliceStream = await openStream(t.a.url, alice.token);
      const online = await bobStream.nextOfType('presence');
      assert.deepEqual(online.data, { userId: alice.id, online: true });
      assert.equal(await presenceOf(t.a.url, bob, alice.id), true);
      aliceStream.close();
      const offline = await bobStream.nextOfType('presence');
      assert.deepEqual(offline.data, { userId: alice.id, online: false });
      assert.equal(await presenceOf(t.b.url, bob, alice.id), false);
    } finally {
      bobStream.close();
    }
  });

  test('presence: a quick reconnect does not flap; polling counts as online', async () => {
    const { alice, bob } = await pair();
    const bobStream = await openStream(t.b.url, bob.token);
    try {
      const first = await openStream(t.a.url, alice.token);
      assert.deepEqual((await bobStream.nextOfType('presence')).data, { userId: alice.id, online: true });
      first.close();
      const second = await openStream(t.b.url, alice.token); // within the grace period, on the other instance
      second.close();
      // Alice now only polls (on A): she stays online without any event in between.
      const { cursor } = await poll(t.a.url, alice.token);
      const marker = await sendMessage(t.a.url, alice, (await createThread(t.a.url, alice, [bob], 'marker')), 'marker');
      const next = await bobStream.nextEnvelope();
      assert.equal(next.type, 'thread.updated');
      assert.deepEqual((await bobStream.nextEnvelope()).data, marker, 'no presence event came between');
      assert.equal(await presenceOf(t.b.url, bob, alice.id), true, 'polling keeps her online');
      assert.match(cursor, /^\d+$/);
      const offline = await bobStream.nextOfType('presence');
      assert.deepEqual(offline.data, { userId: alice.id, online: false }, 'offline once the poll grace has passed');
    } finally {
      bobStream.close();
    }
  });

  test('presence in bursts: arrivals and departures are reconciled and announced in batches, and a co-member still hears of each', async () => {
    const crowd = await Promise.all(Array.from({ length: 30 }, () => register(t.a.url)));
    const watcher = await register(t.b.url);
    await createThread(t.a.url, crowd[0]!, [...crowd.slice(1), watcher], 'crowd');
    const watcherStream = await openStream(t.b.url, watcher.token);
    const listener = new pg.Client({ connectionString: t.db.url });
    await listener.connect();
    // Notifications about the crowd (other tests' users may come and go meanwhile).
    const ids = new Set(crowd.map((user) => user.id));
    type Change = { userId: string; online: boolean };
    const notices: Change[][] = [];
    listener.on('notification', (message) => {
      const notice = JSON.parse(message.payload ?? '{}') as { kind: string; changes?: Change[] } & Partial<Change>;
      if (!notice.kind.startsWith('presence')) return;
      const changes = notice.changes ?? [{ userId: notice.userId!, online: notice.online! }];
      if (changes.some((change) => ids.has(change.userId))) notices.push(changes);
    });
    // How many notifications announced the crowd's arrivals (or departures), counted once all
    // are heard: this listener may hear them after the watcher's stream has (its backend is
    // woken separately).
    const announcedIn = async (online: boolean) => {
      const announced = () => new Set(notices.flat().filter((c) => c.online === online && ids.has(c.userId)).map((c) => c.userId));
      await waitFor(() => announced().size === crowd.length, 5000, `every ${online ? 'arrival' : 'departure'} notified`);
      const count = notices.length;
      notices.length = 0;
      return count;
    };
    await listener.query('LISTEN postline_ephemeral');
    const heard = async (online: boolean) => {
      const seen = new Set<string>();
      while (seen.size < crowd.length) {
        const { data } = await watcherStream.nextOfType('presence');
        const change = data as { userId: string; online: boolean };
        if (change.online === online) seen.add(change.userId);
      }
      assert.deepEqual([...seen].sort(), crowd.map((user) => user.id).sort());
    };
    // The first write is held (the table locked) until every other change has queued behind it.
    const blocker = new pg.Client({ connectionString: t.db.url });
    await blocker.connect();
    const queuedBehindOne = async (change: () => Promise<void>) => {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE presence_connections IN SHARE ROW EXCLUSIVE MODE');
      await change();
      await waitFor(() => t.a.realtime.presence.queuedChanges === crowd.length - 1, 5000, 'the changes queued');
      await blocker.query('COMMIT');
    };
    try {
      let streams: Awaited<ReturnType<typeof openStream>>[] = [];
      await queuedBehindOne(async () => {
        streams = await Promise.all(crowd.map((user) => openStream(t.a.url, user.token)));
      });
      await heard(true);
      // One notification per user before batching; now the held one, then one for the rest.
      const arrivals = await announcedIn(true);
      assert.ok(arrivals <= 2, `${arrivals} notifications for ${crowd.length} arrivals`);
      await queuedBehindOne(async () => {
        for (const stream of streams) stream.close();
      });
      await heard(false);
      const departures = await announcedIn(false);
      assert.ok(departures <= 2, `${departures} notifications for ${crowd.length} departures`);
    } finally {
      watcherStream.close();
      await listener.end();
      await blocker.end();
    }
  });

  test('presence is only told about users who share a thread', async () => {
    const { alice } = await pair();
    const stranger = await register(t.a.url);
    const res = await request(t.a.url).get(`/v1/presence?userIds=${stranger.id},${alice.id}`).set(bearer(alice)).expect(200);
    assert.deepEqual(res.body.presence.map((p: { userId: string }) => p.userId), [alice.id]);
    await request(t.a.url).get('/v1/presence?userIds=abc').set(bearer(alice)).expect(400);
    await request(t.a.url).get('/v1/presence').set(bearer(alice)).expect(400);
  });
});

describe('visibility', () => {
  test('an added member’s open stream gets the thread from its thread.updated on; a removed one gets thread.removed and then nothing', async () => {
    const [alice, bob, carol] = [await register(t.a.url), await register(t.a.url), await register(t.a.url)];
    const threadId = await createThread(t.a.url, alice, [bob], 'Group');
    const carolStream = await openStream(t.b.url, carol.token);
    const bobStream = await openStream(t.b.url, bob.token);
    try {
      await sendMessage(t.a.url, alice, threadId, 'before carol');
      assert.equal((await bobStream.nextOfType('message.created')).data.body, 'before carol');
      await request(t.a.url).post(`/v1/threads/${threadId}/members`).set(bearer(alice)).send({ userId: carol.id }).expect(200);
      const added = await carolStream.nextOfType('thread.updated');
      assert.equal(added.threadId, threadId);
      const during = await sendMessage(t.a.url, alice, threadId, 'with carol');
      assert.deepEqual((await carolStream.nextOfType('message.created')).data, during, 'nothing from before she joined');
      await request(t.a.url).delete(`/v1/threads/${threadId}/members/${carol.id}`).set(bearer(alice)).expect(204);
      assert.deepEqual((await carolStream.nextOfType('thread.removed')).data, { threadId });
      await sendMessage(t.a.url, alice, threadId, 'after carol');
      const marker = await sendMessage(t.a.url, alice, await createThread(t.a.url, alice, [carol], 'Elsewhere'), 'marker');
      for (;;) {
        const next = await carolStream.nextEnvelope();
        assert.ok(next.threadId !== threadId, `nothing more from the old thread (got ${next.type})`);
        if (next.type === 'message.created') {
          assert.deepEqual(next.data, marker);
          break;
        }
      }
    } finally {
      carolStream.close();
      bobStream.close();
    }
  });

  test('replay follows the same rule: a reconnect after being removed does not replay the old thread', async () => {
    const [alice, bob] = [await register(t.a.url), await register(t.a.url)];
    const threadId = await createThread(t.a.url, alice, [bob], 'Group');
    const stream = await openStream(t.a.url, bob.token);
    await sendMessage(t.a.url, alice, threadId, 'seen');
    const lastId = (await stream.nextOfType('message.created')).id!;
    stream.close();
    await request(t.a.url).delete(`/v1/threads/${threadId}/members/${bob.id}`).set(bearer(alice)).expect(204);
    await sendMessage(t.a.url, alice, threadId, 'not for bob');
    const marker = await sendMessage(t.a.url, alice, await createThread(t.a.url, alice, [bob]), 'marker');
    const replay = await openStream(t.b.url, bob.token, { headers: { 'Last-Event-ID': lastId } });
    try {
      const types: string[] = [];
      for (;;) {
        const next = await replay.nextEnvelope();
        if (next.type === 'presence') continue;
        types.push(next.type);
        if (next.type === 'message.created') {
          assert.deepEqual(next.data, marker);
          break;
        }
      }
      // The marker thread's creation and bob accepting it (it was a request), then the marker.
      assert.deepEqual(types, ['thread.removed', 'thread.updated', 'thread.updated', 'message.created']);
    } finally {
      replay.close();
    }
  });
});

describe('the LISTEN connection', () => {
  test('killed with pg_terminate_backend: what is sent during the outage is delivered after recovery', async () => {
    const { alice, bob, threadId } = await pair();
    const stream = await openStream(t.b.url, bob.token);
    const admin = new pg.Client({ connectionString: t.db.url });
    await admin.connect();
    try {
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'postline-listen'`,
      );
      assert.equal(killed.rowCount, 2, 'both instances’ listeners were killed');
      const sent = [];
      for (let i = 0; i < 5; i++) sent.push(await sendMessage(t.a.url, alice, threadId, `during outage ${i}`));
      const received = await stream.envelopes(5, 15_000);
      assert.deepEqual(received.map((e) => e.data), sent);
      await waitFor(() => t.b.realtime.listening, 10_000, 'listener back');
      await request(t.b.url).get('/readyz').expect(200);
    } finally {
      stream.close();
      await admin.end();
    }
  });
});

async function presenceOf(baseUrl: string, viewer: TestUser, userId: string): Promise<boolean | undefined> {
  const res = await request(baseUrl).get(`/v1/presence?userIds=${userId}`).set(bearer(viewer));
  return res.body.presence.find((p: { userId: string }) => p.userId === userId)?.online;
}
