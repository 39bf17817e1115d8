import assert from 'node:assert/strict';
import { test } from 'node:test';
import request from 'supertest';
import { bearer, register } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { waitFor } from './support/sse.js';

// Token lookups are reused for a minute here, so that only the revocation NOTIFY can explain an
// instance refusing a revoked token it has cached.
const t = useInstances({ count: 2, env: { POSTLINE_SESSION_CACHE_MS: '60000' } });

test('a token revoked on one instance is refused by another that has it cached, at once (by NOTIFY)', async () => {
  const user = await register(t.a.url);
  await request(t.b.url).get('/v1/me').set(bearer(user)).expect(200); // B caches the session
  const revokedAt = Date.now();
  await request(t.a.url).delete('/v1/sessions/current').set(bearer(user)).expect(204);
  await waitFor(async () => (await request(t.b.url).get('/v1/me').set(bearer(user))).status === 401, 2000, 'B to refuse the revoked token');
  assert.ok(Date.now() - revokedAt < 2000);
});

test('the instance that served the logout refuses the token on the very next request', async () => {
  const user = await register(t.a.url);
  await request(t.a.url).get('/v1/me').set(bearer(user)).expect(200);
  await request(t.a.url).delete('/v1/sessions/current').set(bearer(user)).expect(204);
  await request(t.a.url).get('/v1/me').set(bearer(user)).expect(401);
});

test('a cached session still ends at its expiry', async () => {
  const user = await register(t.a.url);
  await t.db.query(`UPDATE sessions SET expires_at = now() + interval '300 milliseconds' WHERE user_id = $1`, [user.id]);
  await request(t.a.url).get('/v1/me').set(bearer(user)).expect(200); // cached with that expiry
  await waitFor(async () => (await request(t.a.url).get('/v1/me').set(bearer(user))).status === 401, 3000, 'expiry');
});
