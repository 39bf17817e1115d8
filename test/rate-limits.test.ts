import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import request from 'supertest';
import { bearer, PASSWORD, register, uniqueUsername } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { poll } from './support/poll.js';
import { openStream, waitFor } from './support/sse.js';

// Two instances with small limits; every test starts from empty counters.
const limits = {
  POSTLINE_RATE_LIMIT_PER_MIN: '8',
  POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '3',
  POSTLINE_LOGIN_FAILURES_PER_MIN: '4',
  POSTLINE_MAX_STREAMS_PER_USER: '2',
  POSTLINE_MAX_POLLS_PER_USER: '2',
};
const t = useInstances({ count: 2, env: limits });
beforeEach(async () => {
  await t.db.query('DELETE FROM rate_limit_hits');
});

test('the per-user limit counts requests on both instances together', async () => {
  const user = await register(t.a.url);
  const other = await register(t.b.url);
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await request(i % 2 ? t.a.url : t.b.url).get('/v1/me').set(bearer(user))).status);
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
  const limited = await request(t.a.url).get('/v1/me').set(bearer(user)).expect(429);
  assert.match(limited.headers['content-type'] ?? '', /problem\+json/);
  assert.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After');
  assert.match(limited.headers['ratelimit'] ?? '', /r=0/);
  assert.ok(limited.headers['ratelimit-policy'], 'RateLimit-Policy');
  await request(t.b.url).get('/v1/me').set(bearer(other)).expect(200); // another user is not affected
});

test('sign-in attempts are limited per address, more strictly, across instances', async () => {
  const username = uniqueUsername();
  const statuses = [
    (await request(t.a.url).post('/v1/users').send({ username, password: PASSWORD })).status,
    (await request(t.b.url).post('/v1/sessions').send({ username, password: 'wrong password' })).status,
    (await request(t.a.url).post('/v1/sessions').send({ username, password: 'wrong again!' })).status,
    (await request(t.b.url).post('/v1/sessions').send({ username, password: PASSWORD })).status,
  ];
  assert.deepEqual(statuses, [201, 401, 401, 429]);
});

test('a limited request changes nothing', async () => {
  const user = await register(t.a.url);
  await t.db.query("INSERT INTO rate_limit_hits VALUES ('user:' || $1, 8, now() + interval '1 minute') ON CONFLICT (key) DO UPDATE SET hits = 8", [user.id]);
  await request(t.a.url).post('/v1/threads').set(bearer(user)).send({ members: [] }).expect(429);
  const [row] = await t.db.query('SELECT count(*)::int AS n FROM threads');
  assert.equal(row!.n, 0);
});

test('a concurrent burst spread over both instances is limited as one', async () => {
  const user = await register(t.a.url);
  const statuses = await Promise.all(
    Array.from({ length: 30 }, async (_, i) => (await request(i % 2 ? t.a.url : t.b.url).get('/v1/me').set(bearer(user))).status),
  );
  assert.equal(statuses.filter((status) => status === 200).length, 8);
  assert.equal(statuses.filter((status) => status === 429).length, 22);
});

test('login brute force is slowed per account, across instances and addresses, even with the right password', async () => {
  // The per-address limit is lifted here, as for a guesser spreading attempts over many addresses.
  const user = await register(t.a.url);
  await t.db.query('DELETE FROM rate_limit_hits');
  const attempt = async (i: number, password: string) => {
    await t.db.query(`DELETE FROM rate_limit_hits WHERE key LIKE 'sign-in:%'`);
    return (await request(i % 2 ? t.a.url : t.b.url).post('/v1/sessions').send({ username: user.username, password })).status;
  };
  const guesses: number[] = [];
  for (let i = 0; i < 12; i++) guesses.push(await attempt(i, `guess number ${i}`));
  assert.equal(guesses.filter((status) => status === 401).length, 4, 'four wrong passwords were checked');
  assert.equal(guesses.filter((status) => status === 429).length, 8, 'the rest were refused unchecked');
  const right = await request(t.a.url).post('/v1/sessions').send({ username: user.username, password: PASSWORD });
  assert.equal(right.status, 429, 'the right password waits too');
  assert.ok(Number(right.headers['retry-after']) > 0);
  await request(t.b.url).get('/v1/me').set(bearer(user)).expect(200); // open sessions keep working
  // Once the window is over, the right password works again, and success does not count as failure.
  await t.db.query(`DELETE FROM rate_limit_hits`);
  await request(t.b.url).post('/v1/sessions').send({ username: user.username, password: PASSWORD }).expect(201);
  const [row] = await t.db.query<{ hits: number }>(`SELECT hits FROM rate_limit_hits WHERE key = $1`, [`login-failures:${user.username}`]);
  assert.equal(row?.hits ?? 0, 0);
});

test('stream and waiting-poll caps hold per user on each instance; a closed stream frees its place', async () => {
  const user = await register(t.a.url);
  await t.db.query('DELETE FROM rate_limit_hits');
  const streams = [await openStream(t.a.url, user.token), await openStream(t.a.url, user.token)];
  try {
    assert.deepEqual(streams.map((s) => s.status), [200, 200]);
    const third = await openStream(t.a.url, user.token);
    assert.equal(third.status, 429);
    assert.match(third.response.headers['content-type'] ?? '', /problem\+json/);
    third.close();
    // The caps are per instance (docs/api.md): B has its own.
    const onB = await openStream(t.b.url, user.token);
    assert.equal(onB.status, 200);
    onB.close();
    streams.shift()!.close();
    await waitFor(() => t.a.realtime.hub.count(user.id, 'stream') === 1, 5000, 'place freed');
    streams.push(await openStream(t.a.url, user.token));
    assert.equal(streams.at(-1)!.status, 200);

    const { cursor } = await poll(t.a.url, user.token);
    const waiting = [poll(t.a.url, user.token, { cursor, timeout: 2 }), poll(t.a.url, user.token, { cursor, timeout: 2 })];
    await waitFor(() => t.a.realtime.hub.count(user.id, 'poll') === 2, 5000, 'two polls waiting');
    const refused = await poll(t.a.url, user.token, { cursor, timeout: 2 });
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers['retry-after']) > 0);
    assert.deepEqual((await Promise.all(waiting)).map((answer) => answer.status), [200, 200]);
  } finally {
    for (const stream of streams) stream.close();
  }
});
