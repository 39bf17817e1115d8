import assert from 'node:assert/strict';
import { test } from 'node:test';
import request from 'supertest';
import { bearer, createThread, register, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';

// Two instances on one database act as one service.
const t = useInstances({ count: 2 });

test('a token from one instance works on the other, and logout on one revokes it on both', async () => {
  const user = await register(t.a.url);
  await request(t.b.url).get('/v1/me').set(bearer(user)).expect(200);
  await request(t.b.url).delete('/v1/sessions/current').set(bearer(user)).expect(204);
  await request(t.a.url).get('/v1/me').set(bearer(user)).expect(401);
});

test('threads and messages written on one instance are read on the other', async () => {
  const [alice, bob] = [await register(t.a.url), await register(t.b.url)];
  const threadId = await createThread(t.a.url, alice, [bob]);
  const sent = await sendMessage(t.b.url, bob, threadId, 'across instances');
  const list = await request(t.a.url).get(`/v1/threads/${threadId}/messages`).set(bearer(alice)).expect(200);
  assert.deepEqual(list.body.messages, [sent]);
  const again = await request(t.b.url).post('/v1/threads').set(bearer(bob)).send({ members: [alice.id] }).expect(200);
  assert.equal(again.body.thread.id, threadId, 'the direct thread is unique across instances');
});

test('concurrent sends through both instances still get gapless seq', async () => {
  const [alice, bob] = [await register(t.a.url), await register(t.b.url)];
  const threadId = await createThread(t.a.url, alice, [bob]);
  const sends = Array.from({ length: 12 }, (_, i) => sendMessage(i % 2 ? t.a.url : t.b.url, i < 6 ? alice : bob, threadId, `m${i}`));
  const seqs = (await Promise.all(sends)).map((m) => m.seq).sort((x, y) => x - y);
  assert.deepEqual(seqs, Array.from({ length: 12 }, (_, i) => i + 1));
});
