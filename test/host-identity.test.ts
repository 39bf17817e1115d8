import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { SignJWT } from 'jose';
import request from 'supertest';
import { liveSessionIds } from '../src/store/sessions.js';
import { bearer, register } from './support/api.js';
import { chatState } from './support/database.js';
import { useInstances } from './support/fixture.js';
import { AUDIENCE, hostToken, ISSUER, JwksServer, newSigningKey, nowSeconds, type SigningKey } from './support/host-issuer.js';
import { startTestInstance, type TestInstance } from './support/instance.js';
import { StreamReader, openStream } from './support/sse.js';
import pg from 'pg';

const jwks = new JwksServer();
const jwksUrl = await jwks.start();
const [key1, key2, stranger] = await Promise.all([newSigningKey('k1'), newSigningKey('k2'), newSigningKey('k1')]);
jwks.keys = [key1];

const HOST_ENV = {
  POSTLINE_JWT_ISSUER: ISSUER,
  POSTLINE_JWT_AUDIENCE: AUDIENCE,
  POSTLINE_JWT_CLOCK_SKEW_S: '1',
  POSTLINE_JWT_NAME_CLAIM: 'nickname',
  POSTLINE_SESSION_CACHE_MS: '0', // every request verifies its token
};
const JWKS_ENV = { ...HOST_ENV, POSTLINE_JWT_JWKS_URL: jwksUrl, POSTLINE_JWKS_TIMEOUT_MS: '500', POSTLINE_JWKS_COOLDOWN_MS: '0' };
const t = useInstances({ env: JWKS_ENV });
after(() => jwks.stop());

/**
 * Extra instances a test starts on the fixture's database (other settings); stopped at the end.
 * Those that meet a JWKS outage log its 503s as errors, which the test expects: they log only fatal.
 */
const extra: TestInstance[] = [];
async function instanceWith(env: Record<string, string>): Promise<TestInstance> {
  const instance = await startTestInstance(t.db.url, env);
  extra.push(instance);
  return instance;
}
after(() => Promise.all(extra.map((instance) => instance.stop())));

const sub = () => `host-user-${randomBytes(4).toString('hex')}`;
const me = (baseUrl: string, token: string) => request(baseUrl).get('/v1/me').set('Authorization', `Bearer ${token}`);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function expectRejected(baseUrl: string, token: string, reason: RegExp): Promise<void> {
  const res = await me(baseUrl, token);
  assert.equal(res.status, 401, res.text);
  assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"');
  assert.match(res.body.detail, reason);
}

test('a host JWT signs its sub in as a postline user, created on first sight, named by the configured claim', async () => {
  const subject = sub();
  const first = await me(t.app.url, await hostToken(key1, { sub: subject, nickname: 'Ada L.' })).expect(200);
  assert.deepEqual(first.body.user, { id: first.body.user.id, username: `~${subject}`, displayName: 'Ada L.' });
  const again = await me(t.app.url, await hostToken(key1, { sub: subject, nickname: 'Ada Lovelace' })).expect(200);
  assert.equal(again.body.user.id, first.body.user.id, 'the same user for the same sub');
  assert.equal(again.body.user.displayName, 'Ada Lovelace', 'the display name follows the host');
  const rows = await t.db.query('SELECT external_id, password_hash FROM users WHERE id = $1', [first.body.user.id]);
  assert.deepEqual(rows, [{ external_id: subject, password_hash: null }]);
  const unnamed = await me(t.app.url, await hostToken(key1, { sub: `${subject}-2` })).expect(200);
  assert.equal(unnamed.body.user.displayName, `${subject}-2`, 'without the claim, the sub is the name');
});

test('host users chat with each other and with own accounts; the JWT works in the header, ?access_token and the cookie, on streams and polls', async () => {
  const aliceToken = await hostToken(key1, { sub: sub(), nickname: 'Alice' });
  const alice = (await me(t.app.url, aliceToken)).body.user;
  const bob = await register(t.app.url);
  const thread = await request(t.app.url).post('/v1/threads').set('Authorization', `Bearer ${aliceToken}`).send({ members: [bob.id] }).expect(201);
  const byHeader = await openStream(t.app.url, aliceToken);
  const byQuery = await StreamReader.open(`${t.app.url}/v1/events?access_token=${aliceToken}`);
  const byCookie = await StreamReader.open(`${t.app.url}/v1/events`, { Cookie: `postline_session=${aliceToken}` });
  for (const stream of [byHeader, byQuery, byCookie]) assert.equal(stream.status, 200);
  const polls = {
    header: (path: string) => request(t.app.url).get(path).set('Authorization', `Bearer ${aliceToken}`),
    query: (path: string) => request(t.app.url).get(`${path}${path.includes('?') ? '&' : '?'}access_token=${aliceToken}`),
    cookie: (path: string) => request(t.app.url).get(path).set('Cookie', `postline_session=${aliceToken}`),
  };
  const cursors = Object.fromEntries(
    await Promise.all(Object.entries(polls).map(async ([source, get]) => [source, (await get('/v1/poll').expect(200)).body.cursor as string])),
  );
  await request(t.app.url).post(`/v1/threads/${thread.body.thread.id}/messages`).set(bearer(bob)).send({ body: 'hi host user' }).expect(201);
  for (const stream of [byHeader, byQuery, byCookie]) {
    const event = await stream.nextOfType('message.created');
    assert.equal((event.data as { body: string }).body, 'hi host user');
    stream.close();
  }
  for (const [source, get] of Object.entries(polls)) {
    const answer = await get(`/v1/poll?cursor=${cursors[source]}&timeout=10`).expect(200);
    assert.ok(answer.body.events.some((event: { type: string; data: { body?: string } }) => event.type === 'message.created' && event.data.body === 'hi host user'), source);
  }
  const members = thread.body.thread.members.map((member: { id: string }) => member.id).sort();
  assert.deepEqual(members, [alice.id, bob.id].sort());
  assert.ok(!t.app.logs.some((line) => line.includes(aliceToken)), 'the JWT is never logged');
});

test('key rotation: a token signed with a newly published key works at once, and a withdrawn key stops working', async () => {
  const subject = sub();
  await me(t.app.url, await hostToken(key1, { sub: subject })).expect(200);
  jwks.keys = [key2];
  try {
    const fetches = jwks.fetches;
    await me(t.app.url, await hostToken(key2, { sub: subject })).expect(200);
    assert.ok(jwks.fetches > fetches, 'the unknown kid made the instance fetch the set again');
    await expectRejected(t.app.url, await hostToken(key1, { sub: subject }), /kid/);
  } finally {
    jwks.keys = [key1];
  }
});

test('the classic attacks are answered 401 and change nothing', async () => {
  const before = await chatState(t.db);
  const claims = { iss: ISSUER, aud: AUDIENCE, sub: sub(), exp: nowSeconds() + 600 };
  const sign = (key: SigningKey, extra: object, header: object = {}) =>
    new SignJWT({ ...claims, ...extra }).setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header }).sign(key.privateKey);

  await expectRejected(t.app.url, `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`, /alg/);
  const hsInput = `${b64url({ alg: 'HS256', kid: key1.kid })}.${b64url(claims)}`;
  const hsWithPublicKey = `${hsInput}.${createHmac('sha256', key1.publicPem).update(hsInput).digest('base64url')}`;
  await expectRejected(t.app.url, hsWithPublicKey, /alg/);
  await expectRejected(t.app.url, await sign(key1, { aud: 'someone-else' }), /"aud"/);
  await expectRejected(t.app.url, await sign(key1, { iss: 'https://evil.example' }), /"iss"/);
  await expectRejected(t.app.url, await sign(key1, { exp: nowSeconds() - 5 }), /expired/);
  await expectRejected(t.app.url, await sign(key1, {}, { kid: 'not-in-the-set' }), /kid/);
  await expectRejected(t.app.url, await sign(stranger, {}), /signature/); // a known kid, someone else's key
  await expectRejected(t.app.url, await sign(key1, { nbf: nowSeconds() + 60 }), /"nbf"/);
  const { exp: _exp, ...withoutExp } = claims;
  await expectRejected(
    t.app.url,
    await new SignJWT(withoutExp).setProtectedHeader({ alg: 'RS256', kid: key1.kid }).sign(key1.privateKey),
    /"exp"/,
  );
  assert.deepEqual(await chatState(t.db), before);
});

test('malformed and oversized JWTs are 401', async () => {
  const fetches = jwks.fetches;
  await expectRejected(t.app.url, 'bm90IGpzb24.bm90IGpzb24.c2ln', /well-formed/); // the header is not JSON
  await expectRejected(t.app.url, `${b64url({ alg: 'RS256', kid: 'k9' })}.${b64url('just a string')}.AAAA`, /kid/);
  const oversized = `${b64url({ alg: 'RS256', kid: 'k1' })}.${'A'.repeat(9000)}.AAAA`;
  const res = await me(t.app.url, oversized).expect(401);
  assert.match(res.body.detail, /invalid/);
  await me(t.app.url, 'a.b').expect(401);
  assert.equal(jwks.fetches, fetches + 1, 'only the unknown kid made the instance look at the key set');
});

test("an open stream and a waiting poll end at the JWT's exp (plus the clock skew)", async () => {
  const exp = nowSeconds() + 2;
  const token = await hostToken(key1, { sub: sub(), exp });
  const stream = await openStream(t.app.url, token);
  assert.equal(stream.status, 200);
  const cursor = (await request(t.app.url).get('/v1/poll').set('Authorization', `Bearer ${token}`).expect(200)).body.cursor;
  const pollAnswer = request(t.app.url).get(`/v1/poll?cursor=${cursor}&timeout=30`).set('Authorization', `Bearer ${token}`);
  await stream.closed(6000);
  const endedAt = Date.now();
  const expiresAt = (exp + 1) * 1000; // exp + POSTLINE_JWT_CLOCK_SKEW_S
  assert.ok(endedAt >= expiresAt - 50 && endedAt < expiresAt + 1000, `ended ${endedAt - expiresAt} ms after the expiry`);
  assert.equal((await pollAnswer).status, 401);
  // A reconnect with its resume point is told to stop (204), as for an expired postline token.
  const reconnect = await openStream(t.app.url, token, { headers: { 'Last-Event-ID': '1' } });
  assert.equal(reconnect.status, 204);
});

test('the periodic token re-check keeps host sessions: they have no row in sessions and end at their exp', async () => {
  const owner = await register(t.app.url);
  const [ownSession] = await t.db.query<{ id: string }>('SELECT s.id::text AS id FROM sessions s WHERE s.user_id = $1', [owner.id]);
  const pool = new pg.Pool({ connectionString: t.db.url, max: 1 });
  try {
    const live = await liveSessionIds(pool, ['host:abc', ownSession!.id, '999999']);
    assert.deepEqual([...live].sort(), [ownSession!.id, 'host:abc'].sort());
  } finally {
    await pool.end();
  }
});

test('a host token cannot be revoked through postline (409), and keeps working', async () => {
  const token = await hostToken(key1, { sub: sub() });
  const res = await request(t.app.url).delete('/v1/sessions/current').set('Authorization', `Bearer ${token}`).expect(409);
  assert.match(res.body.detail, /host/);
  await me(t.app.url, token).expect(200);
});

test('the JWKS endpoint down: cached keys keep working (also once the set is due for a refresh), an unknown kid is 503 within the timeout', async () => {
  const instance = await instanceWith({ ...JWKS_ENV, POSTLINE_JWKS_CACHE_MS: '1000', POSTLINE_LOG_LEVEL: 'fatal' });
  const subject = sub();
  await me(instance.url, await hostToken(key1, { sub: subject })).expect(200); // the set is fetched and cached
  jwks.mode = 'hang';
  try {
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the cached set is now due for a refresh
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      await me(instance.url, await hostToken(key1, { sub: subject })).expect(200);
      assert.ok(Date.now() - started < 400, `a cached key answered in ${Date.now() - started} ms (not after the JWKS timeout)`);
    }
    const started = Date.now();
    const res = await me(instance.url, await hostToken(key2, { sub: subject })).expect(503);
    const took = Date.now() - started;
    assert.ok(took >= 450 && took < 2000, `an unknown kid waited ${took} ms for the set (timeout 500 ms)`);
    assert.equal(res.body.type, 'urn:postline:problem:unavailable');
    assert.ok(res.headers['retry-after']);
  } finally {
    jwks.mode = 'ok';
  }
});

test('no key cached and the JWKS endpoint failing or hanging: 503, bounded by the timeout; 200 once it is back', async () => {
  for (const mode of ['fail', 'hang'] as const) {
    const instance = await instanceWith({ ...JWKS_ENV, POSTLINE_LOG_LEVEL: 'fatal' });
    jwks.mode = mode;
    try {
      const started = Date.now();
      await me(instance.url, await hostToken(key1, { sub: sub() })).expect(503);
      assert.ok(Date.now() - started < 2000, `${mode}: answered after ${Date.now() - started} ms`);
      const stream = await openStream(instance.url, await hostToken(key1, { sub: sub() }));
      assert.equal(stream.status, 200, 'an EventSource is told to retry, never given a 5xx');
      assert.match(stream.raw + (await stream.closed().then(() => stream.raw)), /^retry: \d+/);
    } finally {
      jwks.mode = 'ok';
    }
    await me(instance.url, await hostToken(key1, { sub: sub() })).expect(200);
  }
});

test('a PEM public key: RS256 tokens verify; an HS256 token keyed with that public key is refused', async () => {
  const instance = await instanceWith({ ...HOST_ENV, POSTLINE_JWT_PUBLIC_KEY: key1.publicPem.replace(/\n/g, '\\n') });
  await me(instance.url, await hostToken(key1, { sub: sub() })).expect(200);
  const claims = { iss: ISSUER, aud: AUDIENCE, sub: sub(), exp: nowSeconds() + 600 };
  const hsInput = `${b64url({ alg: 'HS256' })}.${b64url(claims)}`;
  await expectRejected(instance.url, `${hsInput}.${createHmac('sha256', key1.publicPem).update(hsInput).digest('base64url')}`, /alg/);
  await expectRejected(instance.url, await hostToken(key2, { sub: sub() }), /signature/);
});

test('an HS256 secret: tokens with it verify, tokens with another secret or another alg do not', async () => {
  const secret = randomBytes(32).toString('hex');
  const instance = await instanceWith({ ...HOST_ENV, POSTLINE_JWT_SECRET: secret });
  const hs = (key: string) =>
    new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: sub(), exp: nowSeconds() + 600 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(key));
  await me(instance.url, await hs(secret)).expect(200);
  await expectRejected(instance.url, await hs(`${secret}x`), /signature/);
  await expectRejected(instance.url, await hostToken(key1, { sub: sub() }), /alg/);
  assert.ok(!instance.logs.some((line) => line.includes(secret)), 'the secret is never logged');
});

test('own accounts switched off: register and login are 404, postline tokens are refused, host JWTs work', async () => {
  const own = await register(t.app.url);
  const instance = await instanceWith({ ...JWKS_ENV, POSTLINE_OWN_ACCOUNTS: 'false' });
  const res = await request(instance.url).post('/v1/users').send({ username: 'nobody_here', password: 'long enough' }).expect(404);
  assert.match(res.body.detail, /host/);
  await request(instance.url).post('/v1/sessions').send({ username: own.username, password: 'whatever1' }).expect(404);
  await request(instance.url).get('/v1/me').set(bearer(own)).expect(401);
  // The lean delivery path too, by every token source.
  await request(instance.url).get('/v1/poll').set(bearer(own)).expect(401);
  await request(instance.url).get(`/v1/poll?access_token=${own.token}`).expect(401);
  await request(instance.url).get('/v1/events?format=ndjson').set('Cookie', `postline_session=${own.token}`).expect(401);
  const token = await hostToken(key1, { sub: sub() });
  await me(instance.url, token).expect(200);
  await request(instance.url).get(`/v1/poll?access_token=${token}`).expect(200);
});

test('host users cannot log in with a password', async () => {
  const subject = sub();
  await me(t.app.url, await hostToken(key1, { sub: subject })).expect(200);
  await request(t.app.url).post('/v1/sessions').send({ username: `~${subject}`, password: 'anything at all' }).expect(401);
});

test('the host identity settings are checked at start, with one-line errors naming the variable', async () => {
  const { loadConfig } = await import('../src/config.js');
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ POSTLINE_JWT_JWKS_URL: jwksUrl, POSTLINE_JWT_AUDIENCE: AUDIENCE }, /: invalid POSTLINE_JWT_ISSUER: is required/],
    [{ POSTLINE_JWT_SECRET: 'x'.repeat(32), POSTLINE_JWT_ISSUER: ISSUER }, /: invalid POSTLINE_JWT_AUDIENCE: is required/],
    [{ ...HOST_ENV, POSTLINE_JWT_JWKS_URL: jwksUrl, POSTLINE_JWT_SECRET: 'x'.repeat(32) }, /: invalid POSTLINE_JWT_SECRET: set only one/],
    [{ ...HOST_ENV, POSTLINE_JWT_SECRET: 'short' }, /: invalid POSTLINE_JWT_SECRET: must be at least 32/],
    [{ ...HOST_ENV, POSTLINE_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----' }, /: invalid POSTLINE_JWT_PUBLIC_KEY/],
    [{ ...HOST_ENV, POSTLINE_JWT_JWKS_URL: jwksUrl, POSTLINE_JWT_ALGORITHMS: 'RS256,HS256' }, /: invalid POSTLINE_JWT_ALGORITHMS/],
    [{ POSTLINE_OWN_ACCOUNTS: 'false' }, /: invalid POSTLINE_OWN_ACCOUNTS: false needs a host JWT key/],
  ];
  for (const [env, message] of bad) assert.throws(() => loadConfig(env), message);
  const secret = 'y'.repeat(40);
  assert.throws(
    () => loadConfig({ ...HOST_ENV, POSTLINE_JWT_SECRET: secret, POSTLINE_JWT_JWKS_URL: jwksUrl }),
    (error: Error) => !error.message.includes(secret),
    'a config error never shows the secret',
  );
});
