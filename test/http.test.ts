import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import { bearer, PASSWORD, register } from './support/api.js';
import { createTestDatabase } from './support/database.js';
import { useInstances } from './support/fixture.js';
import { startTestInstance } from './support/instance.js';

const t = useInstances({ env: { POSTLINE_CORS_ORIGINS: 'https://chat.example.com, http://localhost:8080' } });

describe('operations', () => {
  test('/healthz and /readyz answer 200 while Postgres is up', async () => {
    await request(t.app.url).get('/healthz').expect(200, { status: 'ok' });
    await request(t.app.url).get('/readyz').expect(200, { status: 'ready' });
  });

  test('/readyz answers 503, and API calls 503 problem+json, when the database is gone', async () => {
    const doomed = await createTestDatabase();
    const instance = await startTestInstance(doomed.url, {}, { expectErrors: true });
    try {
      const user = await register(instance.url);
      await doomed.drop();
      await request(instance.url).get('/readyz').expect(503);
      await request(instance.url).get('/healthz').expect(200);
      const res = await request(instance.url).get('/v1/me').set(bearer(user)).expect(503);
      assert.match(res.headers['content-type'] ?? '', /problem\+json/);
      assert.ok(res.headers['retry-after']);
      assert.ok(instance.logs.some((line) => line.includes('request failed (503): The database is unavailable')), 'the outage is logged as an error');
    } finally {
      await instance.stop();
    }
  });
});

describe('headers', () => {
  test('security headers, no-store and no-referrer on API answers', async () => {
    const user = await register(t.app.url);
    const res = await request(t.app.url).get('/v1/me').set(bearer(user)).expect(200);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-powered-by'], undefined);
    assert.match(res.headers['content-type'] ?? '', /^application\/json; charset=utf-8/);
    assert.ok(!/upgrade-insecure-requests/.test(res.headers['content-security-policy'] ?? ''));
  });

  test('errors are problem+json for unknown routes', async () => {
    const res = await request(t.app.url).get('/v1/nowhere').expect(401);
    assert.match(res.headers['content-type'] ?? '', /problem\+json/);
    const user = await register(t.app.url);
    const unknown = await request(t.app.url).get('/v1/nowhere').set(bearer(user)).expect(404);
    assert.equal(unknown.body.status, 404);
  });
});

describe('CORS', () => {
  test('listed origins may call with credentials and the contract’s headers', async () => {
    const preflight = await request(t.app.url)
      .options('/v1/threads')
      .set('Origin', 'https://chat.example.com')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization, last-event-id, idempotency-key');
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://chat.example.com');
    assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
    const allowed = (preflight.headers['access-control-allow-headers'] ?? '').toLowerCase();
    for (const header of ['authorization', 'last-event-id', 'idempotency-key']) assert.ok(allowed.includes(header), header);
  });

  test('a listed origin may sign its pages in (with the cookie session header), though cross-site', async () => {
    const preflight = await request(t.app.url)
      .options('/v1/sessions')
      .set('Origin', 'https://chat.example.com')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'content-type, postline-session');
    assert.ok((preflight.headers['access-control-allow-headers'] ?? '').toLowerCase().includes('postline-session'));
    const user = await register(t.app.url);
    const res = await request(t.app.url)
      .post('/v1/sessions')
      .set({ Origin: 'https://chat.example.com', 'Sec-Fetch-Site': 'cross-site', 'Postline-Session': 'cookie' })
      .send({ username: user.username, password: PASSWORD })
      .expect(201);
    assert.match(res.headers['set-cookie']?.[0] ?? '', /^postline_session=/);
    await request(t.app.url).post('/v1/sessions').set({ Origin: 'https://other.example.com', 'Sec-Fetch-Site': 'cross-site' }).send({ username: user.username, password: PASSWORD }).expect(403);
  });

  test('other origins get no CORS grant', async () => {
    const res = await request(t.app.url).get('/healthz').set('Origin', 'https://evil.example.net');
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });
});
