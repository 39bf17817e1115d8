import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import request from 'supertest';
import { bearer, createPair, createThread, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { poll } from './support/poll.js';
import { waitFor } from './support/sse.js';

const t = useInstances({ env: { POSTLINE_MAX_POLLS_PER_USER: '2' } });

const pair = () => createPair(t.app.url);

/**
 * Wait until the instance has read everything committed. An answer served from the instance's
 * memory holds what it has read; what it has not read yet comes with the next poll.
 */
async function caughtUp(): Promise<void> {
  const [{ head }] = (await t.db.query<{ head: string }>('SELECT coalesce(max(id), 0) AS head FROM events')) as [{ head: string }];
  await waitFor(() => t.app.realtime.feed.cursor >= Number(head), 5000, 'the feed to catch up');
}

test('without a cursor it answers at once with the head; with one, the missed events in order', async () => {
  const { alice, bob, threadId } = await pair();
  const start = await poll(t.app.url, bob.token);
  assert.equal(start.status, 200);
  assert.deepEqual(start.events, []);
  assert.match(start.cursor, /^\d+$/);
  assert.equal(start.headers['cache-control'], 'no-store');
  const sent = [];
  for (let i = 0; i < 20; i++) sent.push(await sendMessage(t.app.url, alice, threadId, `m${i}`));
  await caughtUp();
  const answer = await poll(t.app.url, bob.token, { cursor: start.cursor, timeout: 5 });
  assert.deepEqual(answer.events.map((e) => e.data), sent, JSON.stringify(answer.events.map((e) => [e.type, e.id])));
  assert.equal(answer.cursor, answer.events.at(-1)!.id);
  const [row] = await t.db.query<{ envelope: unknown }>('SELECT envelope FROM events WHERE id = $1', [answer.cursor]);
  assert.deepEqual(answer.events.at(-1), row!.envelope, 'the same envelope as the event log holds');
});

test('a waiting poll answers with the first new event, and the cursor carries on without loss', async () => {
  const { alice, bob, threadId } = await pair();
  const { cursor } = await poll(t.app.url, bob.token);
  const waiting = poll(t.app.url, bob.token, { cursor, timeout: 20 });
  // The poll registers before it reads; whenever the send lands, it is answered.
  const sent = await sendMessage(t.app.url, alice, threadId, 'wake up');
  const answer = await waiting;
  assert.deepEqual(answer.events.map((e) => e.data), [sent]);
  const next = poll(t.app.url, bob.token, { cursor: answer.cursor, timeout: 20 });
  const second = await sendMessage(t.app.url, alice, threadId, 'and again');
  assert.deepEqual((await next).events.map((e) => e.data), [second]);
});

test('at the timeout it answers with no events and a cursor that misses nothing', async () => {
  const { alice, bob, threadId } = await pair();
  const { cursor } = await poll(t.app.url, bob.token);
  // Others' traffic moves the log on while bob waits; bob's cursor may move past it.
  const [carol, dave] = [await register(t.app.url), await register(t.app.url)];
  await sendMessage(t.app.url, carol, await createThread(t.app.url, carol, [dave]), 'not for bob');
  const empty = await poll(t.app.url, bob.token, { cursor, timeout: 1 });
  assert.deepEqual(empty.events, []);
  assert.ok(Number(empty.cursor) >= Number(cursor));
  const sent = await sendMessage(t.app.url, alice, threadId, 'after the timeout');
  const answer = await poll(t.app.url, bob.token, { cursor: empty.cursor, timeout: 5 });
  assert.deepEqual(answer.events.map((e) => e.data), [sent]);
});

test('answers carry at most 100 events; the cursor picks up the rest', async () => {
  const { alice, bob, threadId } = await pair();
  const { cursor } = await poll(t.app.url, bob.token);
  await Promise.all(Array.from({ length: 130 }, (_, i) => sendMessage(t.app.url, alice, threadId, `bulk ${i}`)));
  await caughtUp();
  const first = await poll(t.app.url, bob.token, { cursor, timeout: 5 });
  assert.equal(first.events.length, 100);
  const second = await poll(t.app.url, bob.token, { cursor: first.cursor, timeout: 5 });
  assert.equal(second.events.length, 30, JSON.stringify(second.events.map((e) => [e.type, e.id, e.data.seq])));
  const seqs = [...first.events, ...second.events].map((e) => e.data.seq);
  assert.deepEqual(seqs, Array.from({ length: 130 }, (_, i) => i + 1));
});

test('an unknown cursor gets a reset event and the head', async () => {
  const { bob } = await pair();
  const answer = await poll(t.app.url, bob.token, { cursor: '999999999', timeout: 5 });
  assert.equal(answer.events.length, 1);
  assert.equal(answer.events[0]!.type, 'reset');
  assert.equal(answer.events[0]!.id, undefined);
  assert.ok(Number(answer.cursor) < 999999999);
});

test('bad cursors and timeouts are 400; a missing token 401; the poll cap 429', async () => {
  const { bob } = await pair();
  for (const query of ['cursor=abc', 'cursor=-1', 'timeout=56', 'timeout=-1', 'timeout=1.5', 'cursor=1&cursor=2']) {
    const res = await request(t.app.url).get(`/v1/poll?${query}`).set(bearer(bob));
    assert.equal(res.status, 400, query);
    assert.match(res.headers['content-type'] ?? '', /problem\+json/);
  }
  await request(t.app.url).get('/v1/poll?cursor=1').expect(401);
  const { cursor } = await poll(t.app.url, bob.token);
  const waiting = [poll(t.app.url, bob.token, { cursor, timeout: 3 }), poll(t.app.url, bob.token, { cursor, timeout: 3 })];
  // Both are waiting once the hub counts them.
  await waitFor(() => t.app.realtime.hub.count(bob.id, 'poll') === 2, 5000, 'both polls waiting');
  const third = await poll(t.app.url, bob.token, { cursor, timeout: 3 });
  assert.equal(third.status, 429);
  await Promise.all(waiting);
});

test('the token may come as ?access_token; a revoked token ends a waiting poll with 401', async () => {
  const { bob } = await pair();
  const { cursor } = (await request(t.app.url).get(`/v1/poll?access_token=${bob.token}`).expect(200)).body;
  const waiting = request(t.app.url).get(`/v1/poll?cursor=${cursor}&timeout=20&access_token=${bob.token}`);
  const answered = waiting.then((res) => res.status);
  await waitFor(() => t.app.realtime.hub.count(bob.id, 'poll') === 1, 5000, 'the poll waiting');
  await request(t.app.url).delete('/v1/sessions/current').set(bearer(bob)).expect(204);
  assert.equal(await answered, 401);
});

test('a poll whose client leaves frees its place at once: no 429 afterwards, and the hub forgets it', async () => {
  const { bob } = await pair();
  const { cursor } = await poll(t.app.url, bob.token);
  for (let i = 0; i < 3; i++) {
    // More abandoned polls than the cap of 2: each must release its place when its client leaves.
    const gone = http.get(`${t.app.url}/v1/poll?cursor=${cursor}&timeout=30`, { headers: bearer(bob) });
    gone.on('error', () => {});
    await waitFor(() => t.app.realtime.hub.count(bob.id, 'poll') === 1, 5000, 'the poll to wait');
    gone.destroy();
    await waitFor(() => t.app.realtime.hub.count(bob.id, 'poll') === 0, 5000, 'the abandoned poll to leave the hub');
  }
  const answer = await poll(t.app.url, bob.token, { cursor, timeout: 0 });
  assert.equal(answer.status, 200);
});
