import assert from 'node:assert/strict';
import { test } from 'node:test';
import request from 'supertest';
import { bearer, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { poll, type PollAnswer } from './support/poll.js';
import { openStream, waitFor, type Envelope, type StreamReader } from './support/sse.js';

// The authorization matrix on two instances: for every route and both delivery paths, a user
// who is not a member, was removed, or whose token was revoked or expired gets nothing of the
// thread, on either instance, including streams and polls that were open before the change.
// Logging at trace level, so that the token check below sees everything that is ever logged.
const t = useInstances({ count: 2, env: { POSTLINE_LOG_LEVEL: 'trace' } });

type Outsider = 'non-member' | 'removed' | 'revoked' | 'expired';

/** Every route that touches a thread, as `user` would call it. */
function threadRoutes(threadId: string, messageId: string, bystander: TestUser) {
  return [
    { name: 'GET thread', call: (api: request.Agent) => api.get(`/v1/threads/${threadId}`) },
    { name: 'GET messages', call: (api: request.Agent) => api.get(`/v1/threads/${threadId}/messages`) },
    { name: 'POST message', call: (api: request.Agent) => api.post(`/v1/threads/${threadId}/messages`).send({ body: 'let me in' }) },
    { name: 'POST typing', call: (api: request.Agent) => api.post(`/v1/threads/${threadId}/typing`).send({ typing: true }) },
    { name: 'POST seen', call: (api: request.Agent) => api.post(`/v1/threads/${threadId}/seen`).send({ upTo: messageId }) },
    { name: 'POST delivered', call: (api: request.Agent) => api.post(`/v1/threads/${threadId}/delivered`).send({ upTo: messageId }) },
    { name: 'PATCH message', call: (api: request.Agent) => api.patch(`/v1/threads/${threadId}/messages/${messageId}`).send({ body: 'mine now' }) },
    { name: 'DELETE message', call: (api: request.Agent) => api.delete(`/v1/threads/${threadId}/messages/${messageId}`) },
    { name: 'PUT reaction', call: (api: request.Agent) => api.put(`/v1/threads/${threadId}/messages/${messageId}/reactions/${encodeURIComponent('👀')}`) },
    { name: 'DELETE reaction', call: (api: request.Agent) => api.delete(`/v1/threads/${threadId}/messages/${messageId}/reactions/${encodeURIComponent('👍')}`) },
    { name: 'POST reply', call: (api: request.Agent) => api.post(`/v1/threads/${threadId}/messages`).send({ body: 'let me in', replyTo: messageId }) },
    { name: 'GET search in thread', call: (api: request.Agent) => api.get('/v1/search').query({ q: 'secret', threadId }) },
    { name: 'POST member', call: (api: request.Agent) => api.post(`/v1/threads/${threadId}/members`).send({ userId: bystander.id }) },
    { name: 'DELETE member', call: (api: request.Agent) => api.delete(`/v1/threads/${threadId}/members/${bystander.id}`) },
  ];
}

/** A long-poll client from `cursor`: it polls on while answers bring only presence, and returns the first other answer. */
async function pollUntilNews(baseUrl: string, token: string, cursor: string): Promise<PollAnswer> {
  for (;;) {
    const answer = await poll(baseUrl, token, { cursor, timeout: 20 });
    if (answer.status !== 200 || answer.events.some((event) => event.type !== 'presence')) return answer;
    cursor = answer.cursor;
  }
}

/** Everything `reader` still receives, until `until` says stop (or the stream ends). */
async function collect(reader: StreamReader, until: (envelope: Envelope) => boolean): Promise<Envelope[]> {
  const seen: Envelope[] = [];
  for (;;) {
    const envelope = await reader.nextEnvelope(10_000).catch(() => undefined);
    if (!envelope) return seen;
    seen.push(envelope);
    if (until(envelope)) return seen;
  }
}

test('non-members, removed members, revoked and expired tokens get nothing of the thread, on every instance, streams and polls included', async () => {
  const [alice, bob] = [await register(t.a.url), await register(t.a.url)];
  const outsiders: Record<Outsider, TestUser> = {
    'non-member': await register(t.a.url),
    removed: await register(t.a.url),
    revoked: await register(t.b.url),
    expired: await register(t.b.url),
  };
  // Created raw and accepted in the table: the outsiders' tokens must not be used (and cached) on A
  // before the expiry below is set (the helper has them accept over HTTP).
  const acceptedThread = async (members: TestUser[], title: string) => {
    const created = await request(t.a.url).post('/v1/threads').set(bearer(alice)).send({ members: members.map((user) => user.id), title }).expect(201);
    await t.db.query('UPDATE thread_members SET accepted = true WHERE thread_id = $1', [created.body.thread.id]);
    return created.body.thread.id as string;
  };
  const threadId = await acceptedThread([bob, outsiders.removed, outsiders.revoked, outsiders.expired], 'secret');
  const message = await sendMessage(t.a.url, alice, threadId, 'before the change');
  await request(t.a.url).put(`/v1/threads/${threadId}/messages/${message.id}/reactions/${encodeURIComponent('👍')}`).set(bearer(bob)).expect(200);
  // A thread of their own with alice, for a marker that ends the reading of open streams.
  const markers = Object.fromEntries(
    await Promise.all(Object.entries(outsiders).map(async ([kind, user]) => [kind, await acceptedThread([user], `marker ${kind}`)])),
  ) as Record<Outsider, string>;
  // The expired token expires in a moment, while its streams and polls are open.
  await t.db.query(`UPDATE sessions SET expires_at = now() + interval '1500 milliseconds' WHERE user_id = $1`, [outsiders.expired.id]);

  // Streams and waiting polls on both instances, opened before the change.
  const [{ head }] = (await t.db.query<{ head: string }>('SELECT max(id)::text AS head FROM events')) as [{ head: string }];
  const streams = await Promise.all(
    (Object.keys(outsiders) as Outsider[]).flatMap((kind) =>
      t.apps.map(async (app, i) => ({ kind, app, instance: i === 0 ? 'A' : 'B', stream: await openStream(app.url, outsiders[kind].token) })),
    ),
  );
  // Long-poll clients, each polling on while answers bring only presence (the streams' own
  // presence announcements wake the first polls).
  const open = streams.map((opened) => ({ ...opened, poll: pollUntilNews(opened.app.url, outsiders[opened.kind].token, head) }));
  await waitFor(() => open.every(({ kind, app }) => app.realtime.hub.count(outsiders[kind].id, 'poll') === 1), 5000, 'every poll waiting');

  // The changes: removal by the creator, revocation on one instance, expiry by the clock. Each
  // outsider may have what happened before its change (the event log's head then), nothing after.
  const headNow = async () => ((await t.db.query<{ head: string }>('SELECT max(id)::text AS head FROM events')) as [{ head: string }])[0].head;
  const changedAt = { 'non-member': '0' } as Record<Outsider, string>;
  // (Revocation and expiry first: the polls must still be waiting, and a removal wakes them.)
  await request(t.b.url).delete('/v1/sessions/current').set(bearer(outsiders.revoked)).expect(204);
  changedAt.revoked = await headNow();
  await Promise.all(open.filter(({ kind }) => kind === 'expired').map(({ stream }) => stream.closed(5000)));
  changedAt.expired = await headNow();
  await request(t.a.url).delete(`/v1/threads/${threadId}/members/${outsiders.removed.id}`).set(bearer(alice)).expect(204);
  changedAt.removed = await headNow();
  const removedAt = changedAt.removed;

  // Activity in the thread after the change, of every durable and ephemeral kind.
  const after = await sendMessage(t.b.url, alice, threadId, 'after the change');
  await request(t.a.url).post(`/v1/threads/${threadId}/typing`).set(bearer(bob)).send({ typing: true }).expect(204);
  await request(t.b.url).post(`/v1/threads/${threadId}/seen`).set(bearer(bob)).send({ upTo: after.id }).expect(204);
  // Receipts, edits, replies, reactions and deletions after the change.
  const answer = await request(t.a.url).post(`/v1/threads/${threadId}/messages`).set(bearer(bob)).send({ body: 'a reply after the change', replyTo: after.id }).expect(201);
  await request(t.b.url).post(`/v1/threads/${threadId}/delivered`).set(bearer(alice)).send({ upTo: answer.body.message.id }).expect(204);
  await request(t.a.url).patch(`/v1/threads/${threadId}/messages/${after.id}`).set(bearer(alice)).send({ body: 'after the change, edited' }).expect(200);
  await request(t.b.url).put(`/v1/threads/${threadId}/messages/${after.id}/reactions/${encodeURIComponent('🎉')}`).set(bearer(bob)).expect(200);
  await request(t.a.url).delete(`/v1/threads/${threadId}/messages/${message.id}/reactions/${encodeURIComponent('👍')}`).set(bearer(bob)).expect(200);
  await request(t.b.url).delete(`/v1/threads/${threadId}/messages/${answer.body.message.id}`).set(bearer(bob)).expect(204);
  const newcomer = await register(t.a.url);
  await request(t.b.url).post(`/v1/threads/${threadId}/members`).set(bearer(alice)).send({ userId: newcomer.id }).expect(200);
  for (const kind of Object.keys(outsiders) as Outsider[]) await sendMessage(t.a.url, alice, markers[kind], `marker for ${kind}`);

  for (const { kind, instance, stream, poll: waiting } of open) {
    const label = `${kind} on ${instance}`;
    const received = await collect(stream, (envelope) => envelope.type === 'message.created' && envelope.threadId === markers[kind]);
    stream.close();
    const leaked = received.filter((envelope) => envelope.threadId === threadId && (envelope.id === undefined || Number(envelope.id) > Number(changedAt[kind])));
    assert.deepEqual(leaked, [], `${label}: nothing of the thread on the open stream`);
    if (kind === 'removed') assert.ok(received.some((e) => e.type === 'thread.removed' && e.threadId === threadId), `${label}: told of the removal`);
    if (kind === 'revoked' || kind === 'expired') assert.ok(stream.ended, `${label}: the stream ended`);
    const answer = await waiting;
    if (kind === 'revoked' || kind === 'expired') assert.equal(answer.status, 401, `${label}: the waiting poll was refused: ${JSON.stringify(answer.events)}`);
    else assert.ok(answer.events.every((e) => e.threadId !== threadId || Number(e.id) <= Number(changedAt[kind])), `${label}: nothing of the thread in the poll`);
  }

  for (const app of t.apps) {
    for (const kind of Object.keys(outsiders) as Outsider[]) {
      const user = outsiders[kind];
      const tokenDead = kind === 'revoked' || kind === 'expired';
      const label = `${kind} on ${app === t.a ? 'A' : 'B'}`;
      for (const route of threadRoutes(threadId, message.id, bob)) {
        const res = await route.call(request.agent(app.url).set(bearer(user)));
        assert.equal(res.status, tokenDead ? 401 : 404, `${label}: ${route.name}: ${res.status}`);
        assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
        assert.ok(!res.text.includes('secret') && !res.text.includes('after the change'), `${label}: ${route.name} leaked`);
      }
      const list = await request(app.url).get('/v1/threads').set(bearer(user));
      if (tokenDead) assert.equal(list.status, 401);
      else assert.ok(!list.body.threads.some((thread: { id: string }) => thread.id === threadId), `${label}: not in the list`);
      const found = await request(app.url).get('/v1/search').query({ q: 'change' }).set(bearer(user));
      if (tokenDead) assert.equal(found.status, 401);
      else assert.deepEqual(found.body.results, [], `${label}: search finds nothing of the thread`);
      // Replays (SSE and poll) from before the change hold nothing of the thread after it.
      const replay = await openStream(app.url, user.token, { headers: { 'Last-Event-ID': head } });
      if (tokenDead) {
        assert.equal(replay.status, 204, `${label}: a reconnect with a dead token is told to stop`);
        assert.equal((await openStream(app.url, user.token)).status, 401);
      } else {
        const replayed = await collect(replay, (envelope) => envelope.threadId === markers[kind]);
        assert.ok(replayed.every((e) => e.threadId !== threadId || Number(e.id) <= Number(removedAt)), `${label}: replay`);
      }
      replay.close();
      const polled = await poll(app.url, user.token, { cursor: head, timeout: 0 });
      if (tokenDead) assert.equal(polled.status, 401);
      else assert.ok(polled.events.every((e) => e.threadId !== threadId || Number(e.id) <= Number(removedAt)), `${label}: poll replay`);
    }
  }
});

test('tokens never appear in the logs, whichever way they were sent', async () => {
  const [alice, bob] = [await register(t.a.url), await register(t.b.url)];
  const threadId = await createThread(t.a.url, alice, [bob]);
  const login = await request(t.b.url).post('/v1/sessions').send({ username: alice.username, password: 'correct horse battery' }).expect(201);
  const tokens = [alice.token, bob.token, login.body.token as string];
  for (const app of t.apps) {
    await request(app.url).get(`/v1/poll?access_token=${alice.token}`).expect(200);
    await request(app.url).get(`/v1/poll?cursor=0&timeout=0&access_token=${bob.token}&x=1`).expect(200);
    await request(app.url).get('/v1/poll').set('Cookie', `postline_session=${login.body.token}`).expect(200);
    await request(app.url).post(`/v1/threads/${threadId}/messages`).type('form').send(`body=hi&access_token=${alice.token}`).expect(201);
    await request(app.url).post(`/v1/threads/${threadId}/typing`).type('text/plain').send(JSON.stringify({ typing: true, access_token: bob.token })).expect(204);
    // Failures log more: a wrong token, a token where none belongs, a token in a bad body.
    await request(app.url).get('/v1/me').set('Authorization', `Bearer ${alice.token}x`).expect(401);
    await request(app.url).get(`/v1/threads?access_token=${alice.token}`).expect(401);
    await request(app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(alice)).send({ body: '', token: alice.token }).expect(400);
    await request(app.url).post('/v1/sessions').send({ username: alice.username, password: alice.token }).expect(401);
    const stream = await openStream(app.url, bob.token, { query: { access_token: bob.token } });
    stream.close();
    // Tokens and passwords where they do not belong: in a path, in other parameters, percent-encoded.
    await request(app.url).get(`/v1/threads/${alice.token}`).set(bearer(bob)).expect(400);
    await request(app.url).get(`/v1/threads/${encodeURIComponent(alice.token).replace(/^p/, '%70')}/messages`).set(bearer(bob)).expect(400);
    await request(app.url).get(`/v1/me?token=${bob.token}&debug=1`).set(bearer(bob)).expect(200);
    await request(app.url).get(`/v1/me?note=${alice.token}`).set(bearer(bob)).expect(200);
    await request(app.url).get(`/v1/me?next=${encodeURIComponent(`/x?access_token=${alice.token}`)}`).set(bearer(bob)).expect(200);
    await request(app.url).get(`/v1/poll?cursor=0&timeout=0&password=${encodeURIComponent('correct horse battery')}`).set(bearer(bob)).expect(200);
    await request(app.url).get(`/v1/users?username=bob&Password=correct+horse+battery`).set(bearer(bob)).expect(200);
  }
  await request(t.a.url).delete('/v1/sessions/current').set(bearer(alice)).expect(204);
  const logs = [...t.a.logs, ...t.b.logs].join('\n');
  assert.ok(logs.length > 10_000, 'there are logs to search');
  for (const token of tokens) {
    assert.ok(!logs.includes(token), 'a token was logged');
    assert.ok(!logs.includes(token.slice(1)), 'a percent-encoded token was logged');
  }
  assert.ok(!/correct(\+|%20| )horse/i.test(logs), 'a password was logged');
  assert.match(logs, /"url":"\/v1\/me\?token=\[Redacted\]&debug=1"/, 'what is redacted is said to be, the rest of the URL kept');
});

test('strangers and blocked users, on every instance: no presence, no typing from them, no way to add or message the blocker', async () => {
  const [alice, bob, mallory, eve] = await Promise.all([register(t.a.url), register(t.b.url), register(t.a.url), register(t.b.url)]);
  await createThread(t.a.url, alice, [bob], 'friends'); // bob is a contact: he must hear what the others must not
  const direct = await createThread(t.b.url, eve, [alice]); // eve was a contact, until alice blocks her
  const evesGroup = await createThread(t.b.url, eve, [bob], 'eve’s');
  const request_ = (await request(t.a.url).post('/v1/threads').set(bearer(mallory)).send({ members: [alice.id] }).expect(201)).body.thread;
  assert.deepEqual(request_.pending, [alice.id], 'mallory’s thread is a request for alice');
  await request(t.b.url).post(`/v1/users/${eve.id}/block`).set(bearer(alice)).expect(204);
  const watchers = await Promise.all(
    [bob, mallory, eve].flatMap((user) => t.apps.map(async (app) => ({ user, stream: await openStream(app.url, user.token) }))),
  );
  // Alice comes online on both instances.
  const aliceStreams = await Promise.all(t.apps.map((app) => openStream(app.url, alice.token)));
  try {
    for (const { stream } of watchers.filter(({ user }) => user === bob)) {
      for (;;) if ((await stream.nextOfType('presence')).data.userId === alice.id) break;
    }
    for (const app of t.apps) {
      const label = app === t.a ? 'A' : 'B';
      for (const outsider of [mallory, eve]) {
        const presence = await request(app.url).get(`/v1/presence?userIds=${alice.id}`).set(bearer(outsider)).expect(200);
        assert.deepEqual(presence.body.presence, [], `${label}: alice's presence hidden`);
      }
      const unknown = (await request(app.url).post('/v1/threads').set(bearer(eve)).send({ members: ['987654321'] }).expect(400)).body;
      assert.deepEqual((await request(app.url).post('/v1/threads').set(bearer(eve)).send({ members: [alice.id], title: 'hi' }).expect(400)).body, unknown, `${label}: blocked like an unknown id`);
      const unknownAdd = (await request(app.url).post(`/v1/threads/${evesGroup}/members`).set(bearer(eve)).send({ userId: '987654321' }).expect(400)).body;
      assert.deepEqual((await request(app.url).post(`/v1/threads/${evesGroup}/members`).set(bearer(eve)).send({ userId: alice.id }).expect(400)).body, unknownAdd, `${label}: not addable`);
      await request(app.url).post(`/v1/threads/${direct}/messages`).set(bearer(eve)).send({ body: 'hear me out' }).expect(403);
      await request(app.url).post(`/v1/threads/${direct}/typing`).set(bearer(eve)).send({ typing: true }).expect(204);
      await request(app.url).post(`/v1/threads/${request_.id}/typing`).set(bearer(mallory)).send({ typing: true }).expect(204);
    }
    const marker = await sendMessage(t.a.url, bob, (await request(t.a.url).get('/v1/threads').set(bearer(bob))).body.threads.find((th: { title: string }) => th.title === 'friends').id, 'marker');
    for (const stream of aliceStreams) {
      const seen = await collect(stream, (envelope) => envelope.type === 'message.created' && envelope.data.id === marker.id);
      assert.deepEqual(seen.filter((e) => e.type === 'typing'), [], 'no typing from a stranger or a blocked user');
    }
    for (const { user, stream } of watchers.filter(({ user }) => user !== bob)) {
      // A marker of their own ends their reading.
      const own = await createThread(t.a.url, user, [await register(t.a.url)], 'own');
      const ownMarker = await sendMessage(t.a.url, user, own, 'own marker');
      const seen = await collect(stream, (envelope) => envelope.type === 'message.created' && envelope.data.id === ownMarker.id);
      assert.deepEqual(seen.filter((e) => e.type === 'presence' && e.data.userId === alice.id), [], `${user.username}: no presence of alice`);
    }
  } finally {
    for (const stream of [...aliceStreams, ...watchers.map(({ stream }) => stream)]) stream.close();
  }
});
