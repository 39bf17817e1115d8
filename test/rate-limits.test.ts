import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import request from 'supertest';
import { bearer, PASSWORD, register, uniqueUsername } from './support/api.js';
import { useInstances } from './support/fixture.js';

// Two instances with small limits; every test starts from empty counters.
const limits = { POSTLINE_RATE_LIMIT_PER_MIN: '8', POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '3' };
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
