import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import request from 'supertest';
import { bearer, PASSWORD, register, uniqueUsername } from './support/api.js';
import { statementsDuring } from './support/database.js';
import { useInstances } from './support/fixture.js';
import { startTestInstance, type TestInstance } from './support/instance.js';
import { poll } from './support/poll.js';
import { openStream, waitFor } from './support/sse.js';

// Small limits. Counts are kept by each instance and flushed to Postgres periodically; here the
// period is long and the tests flush when they mean to, and tests that count start instances of
// their own (fresh local counts) on a cleared table.
const limits = {
  POSTLINE_RATE_LIMIT_PER_MIN: '8',
  POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '3',
  POSTLINE_LOGIN_FAILURES_PER_ADDRESS: '3',
  POSTLINE_LOGIN_FAILURES_PER_ACCOUNT: '6',
  POSTLINE_MAX_STREAMS_PER_USER: '2',
  POSTLINE_MAX_POLLS_PER_USER: '2',
  POSTLINE_RATE_LIMIT_FLUSH_MS: '10000',
  // The brute-force test comes from many addresses, as a guesser would (one trusted proxy hop).
  POSTLINE_TRUST_PROXY: '1',
};
const t = useInstances({ count: 2, env: limits });
beforeEach(async () => {
  await t.db.query('DELETE FROM rate_limit_hits');
});

/** Two instances of the test's own with `env` on top of the limits, stopped at the end of `use`. */
async function withInstances(env: Record<string, string>, use: (a: TestInstance, b: TestInstance) => Promise<void>): Promise<void> {
  const [a, b] = await Promise.all([startTestInstance(t.db.url, { ...limits, ...env }), startTestInstance(t.db.url, { ...limits, ...env })]);
  try {
    await use(a!, b!);
  } finally {
    await Promise.all([a!.stop(), b!.stop()]);
  }
}

/** The shared total of a key once the instances have flushed it. */
const sharedHits = async (key: string) => (await t.db.query<{ hits: number }>('SELECT hits FROM rate_limit_hits WHERE key = $1', [key]))[0]?.hits ?? 0;

test('the per-user limit is exact on one instance, with the contract’s headers; other users are not affected', async () => {
  await withInstances({}, async (a) => {
    const [user, other] = [await register(a.url), await register(a.url)];
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await request(a.url).get('/v1/me').set(bearer(user))).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
    const limited = await request(a.url).get('/v1/me').set(bearer(user)).expect(429);
    assert.match(limited.headers['content-type'] ?? '', /problem\+json/);
    assert.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After');
    assert.match(limited.headers['ratelimit'] ?? '', /r=0/);
    assert.ok(limited.headers['ratelimit-policy'], 'RateLimit-Policy');
    await request(a.url).get('/v1/me').set(bearer(other)).expect(200);
  });
});

test('across instances the count is shared: each learns the other’s hits at its next flush', async () => {
  await withInstances({}, async (a, b) => {
    const user = await register(a.url);
    for (let i = 0; i < 5; i++) await request(a.url).get('/v1/me').set(bearer(user)).expect(200);
    await a.counters.flush();
    await request(b.url).get('/v1/me').set(bearer(user)).expect(200);
    await b.counters.flush(); // B learns the total: A's five and its one
    assert.equal(await sharedHits(`user:${user.id}`), 6);
    const onB = [];
    for (let i = 0; i < 3; i++) onB.push((await request(b.url).get('/v1/me').set(bearer(user))).status);
    assert.deepEqual(onB, [200, 200, 429]);
    // A last heard of 5: what it admits until its next flush is the bounded overshoot; after it, A refuses too.
    await request(a.url).get('/v1/me').set(bearer(user)).expect(200);
    await b.counters.flush();
    await a.counters.flush(); // A learns the total, with B's hits
    await request(a.url).get('/v1/me').set(bearer(user)).expect(429);
    await request(b.url).get('/v1/me').set(bearer(user)).expect(429);
  });
});

test('a concurrent burst over both instances: each admits at most the limit before it hears of the other; then both refuse', async () => {
  await withInstances({}, async (a, b) => {
    const user = await register(a.url);
    const statuses = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => (await request(i % 2 ? a.url : b.url).get('/v1/me').set(bearer(user))).status),
    );
    const admitted = statuses.filter((status) => status === 200).length;
    assert.ok(admitted >= 8 && admitted <= 16, `admitted ${admitted}: the limit, plus at most one flush interval's worth per other instance`);
    await a.counters.flush();
    await b.counters.flush();
    assert.equal(await sharedHits(`user:${user.id}`), 30);
    await request(a.url).get('/v1/me').set(bearer(user)).expect(429);
    await request(b.url).get('/v1/me').set(bearer(user)).expect(429);
  });
});

test('counting costs no Postgres round trip per request: 200 requests, a few statements', async () => {
  await withInstances({ POSTLINE_RATE_LIMIT_PER_MIN: '600', POSTLINE_RATE_LIMIT_FLUSH_MS: '250' }, async (a) => {
    const user = await register(a.url);
    await request(a.url).get('/v1/me').set(bearer(user)).expect(200); // the session is looked up and kept for a second
    const statements = await statementsDuring(async () => {
      for (let i = 0; i < 200; i++) await request(a.url).get('/v1/me').set(bearer(user)).expect(200);
    });
    assert.ok(statements < 50, `${statements} statements for 200 requests (one a request would be 200 or more)`);
    await a.counters.flush();
    assert.equal(await sharedHits(`user:${user.id}`), 201, 'every hit counted in the shared total');
  });
});

test('sign-in attempts are limited per address, more strictly', async () => {
  await withInstances({}, async (a) => {
    const username = uniqueUsername();
    const statuses = [
      (await request(a.url).post('/v1/users').send({ username, password: PASSWORD })).status,
      (await request(a.url).post('/v1/sessions').send({ username, password: 'wrong password' })).status,
      (await request(a.url).post('/v1/sessions').send({ username, password: 'wrong again!' })).status,
      (await request(a.url).post('/v1/sessions').send({ username, password: PASSWORD })).status,
    ];
    assert.deepEqual(statuses, [201, 401, 401, 429]);
  });
});

test('a limited request changes nothing', async () => {
  await withInstances({}, async (a) => {
    const user = await register(a.url);
    for (let i = 0; i < 8; i++) await request(a.url).get('/v1/me').set(bearer(user)).expect(200);
    await request(a.url).post('/v1/threads').set(bearer(user)).send({ members: [] }).expect(429);
    const [row] = await t.db.query('SELECT count(*)::int AS n FROM threads WHERE created_by = $1', [user.id]);
    assert.equal(row!.n, 0);
  });
});

test('delivery is not throttled by the request limit: streams and polls are bounded by their caps only', async () => {
  await withInstances({}, async (a) => {
    const user = await register(a.url);
    const { cursor } = await poll(a.url, user.token);
    for (let i = 0; i < 20; i++) assert.equal((await poll(a.url, user.token, { cursor, timeout: 0 })).status, 200, `poll ${i}`);
    for (let i = 0; i < 12; i++) {
      const stream = await openStream(a.url, user.token);
      assert.equal(stream.status, 200, `stream ${i}`);
      stream.close();
      await waitFor(() => a.realtime.hub.count(user.id, 'stream') === 0, 5000, 'the stream gone');
    }
    await request(a.url).get('/v1/me').set(bearer(user)).expect(200); // actions still have their whole budget
  });
});

/** A login for `username` from `address` (one trusted proxy hop: the address is the X-Forwarded-For entry), on A or B. */
async function login(app: TestInstance, username: string, password: string, address: string) {
  const res = await request(app.url).post('/v1/sessions').set('X-Forwarded-For', address).send({ username, password });
  return { status: res.status, retryAfter: Number(res.headers['retry-after'] ?? 0) };
}

// The per-address limit on sign-in attempts is off here: these count failed logins, not attempts.
test('failed logins from one address: a few free, then each waits twice as long; the right password from another address still signs in', async () => {
  await withInstances({ POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '0', POSTLINE_LOGIN_FAILURES_PER_ACCOUNT: '100' }, async (a, b) => {
    const user = await register(a.url);
    const guesser = '203.0.113.7';
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await login(i % 2 ? t.a : b, user.username, `guess number ${i}`, guesser));
    assert.deepEqual(first.map((answer) => answer.status), [401, 401, 401, 429], 'three free failures (POSTLINE_LOGIN_FAILURES_PER_ADDRESS), then a wait');
    assert.equal(first[3]!.retryAfter, 1);
    assert.equal((await login(a, user.username, PASSWORD, guesser)).status, 429, 'the guessing address waits, even with the right password');
    // Nobody is locked out: the right password from an address with no recent failures is checked.
    await request(b.url).post('/v1/sessions').set('X-Forwarded-For', '198.51.100.20').send({ username: user.username, password: PASSWORD }).expect(201);
    await request(b.url).get('/v1/me').set(bearer(user)).expect(200); // open sessions keep working
    // Each further failure doubles the wait (the waits are let pass in the table, not slept through).
    const waits = [];
    for (let i = 0; i < 3; i++) {
      await t.db.query('UPDATE login_failures SET retry_at = now() WHERE username = $1', [user.username]);
      assert.equal((await login(b, user.username, `another guess ${i}`, guesser)).status, 401);
      waits.push((await login(a, user.username, `too soon ${i}`, guesser)).retryAfter);
    }
    assert.deepEqual(waits, [2, 4, 8]);
    // Once its wait is over, the right password signs in from there too, and the address is clean again.
    await t.db.query('UPDATE login_failures SET retry_at = now() WHERE username = $1', [user.username]);
    assert.equal((await login(a, user.username, PASSWORD, guesser)).status, 201);
    assert.deepEqual(await t.db.query('SELECT * FROM login_failures WHERE username = $1', [user.username]), []);
  });
});

test('failed logins from many addresses: past the account cap, addresses that failed are held back and new ones get one guess; the right password from a new address signs in', async () => {
  await withInstances({ POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '0' }, async (a, b) => {
    const user = await register(a.url);
    const spread = [];
    for (let i = 0; i < 6; i++) spread.push((await login(i % 2 ? t.a : b, user.username, `guess ${i}`, `203.0.113.${i + 1}`)).status);
    assert.deepEqual(spread, [401, 401, 401, 401, 401, 401], 'six addresses, one failure each: the account cap (POSTLINE_LOGIN_FAILURES_PER_ACCOUNT)');
    const again = await login(a, user.username, 'guess again', '203.0.113.1');
    assert.equal(again.status, 429, 'an address that failed is held back once the account is over its cap, though it has failures to spare');
    assert.ok(again.retryAfter > 60, `until the account's oldest failure is forgotten (${again.retryAfter} s)`);
    assert.equal((await login(b, user.username, 'a new address', '203.0.113.50')).status, 401, 'a new address gets its one guess');
    assert.equal((await login(a, user.username, 'and another', '203.0.113.50')).status, 429, '… and only one');
    assert.equal((await login(b, user.username, PASSWORD, '198.51.100.30')).status, 201, 'the right password from a new address');
    const [{ failures }] = (await t.db.query<{ failures: number }>('SELECT sum(failures)::int AS failures FROM login_failures WHERE username = $1', [user.username])) as [{ failures: number }];
    assert.equal(failures, 7, 'refused attempts were not counted (nor written)');
  });
});

test('stream and waiting-poll caps hold per user on each instance; a closed stream frees its place', async () => {
  const user = await register(t.a.url);
  const streams = [await openStream(t.a.url, user.token), await openStream(t.a.url, user.token)];
  try {
    assert.deepEqual(streams.map((s) => s.status), [200, 200]);
    const third = await openStream(t.a.url, user.token, { query: { format: 'ndjson' }, headers: { Accept: 'application/x-ndjson' } });
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
