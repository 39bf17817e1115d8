import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import request from 'supertest';
import { bearer, register } from './support/api.js';
import { statementsDuring } from './support/database.js';
import { useInstances } from './support/fixture.js';

// Floods that cost the database (issue 15): made-up tokens, and requests refused for failing
// too often, are answered from memory. Two addresses through one trusted proxy hop. Token
// lookups are not reused (POSTLINE_SESSION_CACHE_MS=0): every request with a valid token asks.
const t = useInstances({ env: { POSTLINE_AUTH_FAILURES_PER_MIN: '5', POSTLINE_TRUST_PROXY: '1', POSTLINE_SESSION_CACHE_MS: '0' } });

const madeUpToken = () => `pl_${randomBytes(32).toString('base64url')}`;

/** A request from `address` (the X-Forwarded-For entry the trusted proxy added). */
const from = (address: string) => ({ 'X-Forwarded-For': address });

test('a made-up token costs one lookup: it is remembered as unknown', async () => {
  const token = madeUpToken();
  const address = '198.51.100.1';
  await request(t.app.url).get('/v1/me').set(from(address)).set('Authorization', `Bearer ${token}`).expect(401);
  const statements = await statementsDuring(async () => {
    for (let i = 0; i < 3; i++) await request(t.app.url).get('/v1/me').set(from(address)).set('Authorization', `Bearer ${token}`).expect(401);
    await request(t.app.url).get(`/v1/poll?access_token=${token}`).set(from(address)).expect(401);
  });
  assert.equal(statements, 0);
});

test('an address whose tokens keep failing gets 429 from memory, on both paths; known tokens from it and other addresses go on', async () => {
  const [user, other] = [await register(t.app.url), await register(t.app.url)];
  const guesser = '203.0.113.9';
  await request(t.app.url).get('/v1/me').set(from(guesser)).set(bearer(user)).expect(200); // a known token from the same address
  for (let i = 0; i < 5; i++) await request(t.app.url).get('/v1/me').set(from(guesser)).set('Authorization', `Bearer ${madeUpToken()}`).expect(401);
  const statements = await statementsDuring(async () => {
    const refused = await request(t.app.url).get('/v1/me').set(from(guesser)).set('Authorization', `Bearer ${madeUpToken()}`).expect(429);
    assert.ok(Number(refused.headers['retry-after']) > 0);
    assert.match(refused.body.type, /rate-limited$/);
    await request(t.app.url).get(`/v1/poll?access_token=${madeUpToken()}`).set(from(guesser)).expect(429);
    await request(t.app.url).get('/v1/events').set(from(guesser)).set('Accept', 'application/x-ndjson').set('Authorization', `Bearer ${madeUpToken()}`).expect(429);
  });
  assert.equal(statements, 0, 'the refusals cost the database nothing');
  // The known token still works from that address (its lookup is allowed), another address is untouched.
  await request(t.app.url).get('/v1/me').set(from(guesser)).set(bearer(user)).expect(200);
  await request(t.app.url).get('/v1/me').set(from('203.0.113.10')).set(bearer(other)).expect(200);
  await request(t.app.url).get('/v1/me').set(from('203.0.113.10')).set('Authorization', `Bearer ${madeUpToken()}`).expect(401);
  const metrics = (await request(t.app.url).get('/metrics')).text;
  assert.match(metrics, /^postline_rate_limited_total\{limit="auth-failures"\} [3-9]/m);
});

test('a flood of /readyz costs a handful of statements, not one each', async () => {
  const statements = await statementsDuring(async () => {
    await Promise.all(Array.from({ length: 50 }, () => request(t.app.url).get('/readyz').expect(200)));
  });
  assert.ok(statements <= 5, `${statements} statements for 50 probes`);
});
