import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { loadConfig } from '../src/config.js';
import { bearer, createPair, PASSWORD, register, sendMessage, uniqueUsername } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { startTestInstance } from './support/instance.js';
import { openStream } from './support/sse.js';

// The smaller findings of issue 15, one test each.
const t = useInstances();

describe('sends and typing', () => {
  test('a send to a thread of others is refused without waiting for its row lock', async () => {
    const { threadId } = await createPair(t.app.url);
    const mallory = await register(t.app.url);
    // A transaction of the thread's own holds its row lock, as a long batch of sends would.
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM threads WHERE id = $1 FOR NO KEY UPDATE', [threadId]);
      const startedAt = performance.now();
      const res = await request(t.app.url).post(`/v1/threads/${threadId}/messages`).set(bearer(mallory)).send({ body: 'let me in' }).timeout(3000);
      assert.equal(res.status, 404);
      assert.ok(performance.now() - startedAt < 1000, 'answered at once, as for a thread that does not exist');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });

  test('toggling typing on and off does not get past the 2-second rule: at most one typing:true per 2 s', async () => {
    const { alice, bob, threadId } = await createPair(t.app.url);
    const stream = await openStream(t.app.url, bob.token);
    try {
      for (const typing of [true, false, true, false, true, false, true]) {
        await request(t.app.url).post(`/v1/threads/${threadId}/typing`).set(bearer(alice)).send({ typing }).expect(204);
      }
      const marker = await sendMessage(t.app.url, alice, threadId, 'marker');
      const typing = (await stream.until(marker)).filter((e) => e.type === 'typing').map((e) => e.data.typing);
      assert.deepEqual(typing, [true, false], 'the first start and its stop; the toggles after it within 2 s were not sent');
    } finally {
      stream.close();
    }
  });
});

describe('proxies', () => {
  test('POSTLINE_TRUST_PROXY=true is refused at start, with what to set instead', () => {
    assert.throws(() => loadConfig({ POSTLINE_TRUST_PROXY: 'true' }), /invalid POSTLINE_TRUST_PROXY: true would trust every X-Forwarded-For hop .*number of proxies in front \(e\.g\. 1\)/);
    assert.equal(loadConfig({ POSTLINE_TRUST_PROXY: '1' }).trustProxy, 1);
    assert.equal(loadConfig({ POSTLINE_TRUST_PROXY: 'loopback' }).trustProxy, 'loopback');
  });

  test('with a hop count, a client rotating X-Forwarded-For still counts as the address its proxy saw', async () => {
    const limited = await startTestInstance(t.db.url, { POSTLINE_TRUST_PROXY: '1', POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '3' });
    try {
      const statuses = [];
      for (let i = 0; i < 5; i++) {
        // What the client sent, then what the proxy in front appended: the address it saw.
        const forwarded = `10.9.8.${i}, 192.0.2.${i + 1}, 198.51.100.77`;
        statuses.push((await request(limited.url).post('/v1/sessions').set('X-Forwarded-For', forwarded).send({ username: uniqueUsername(), password: 'wrong password' })).status);
      }
      assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    } finally {
      await limited.stop();
    }
  });

  test('behind a TLS proxy the cookie is Secure only when the proxy is trusted; forwarding headers from an untrusted peer are warned of, once', async () => {
    const username = uniqueUsername();
    await request(t.app.url).post('/v1/users').send({ username, password: PASSWORD }).expect(201);
    const untrusted = await request(t.app.url).post('/v1/sessions').set('Postline-Session', 'cookie').set('X-Forwarded-Proto', 'https').send({ username, password: PASSWORD }).expect(201);
    assert.doesNotMatch(untrusted.headers['set-cookie']?.[0] ?? '', /Secure/);
    await request(t.app.url).get('/healthz').set('X-Forwarded-For', '203.0.113.1').expect(200);
    const warnings = t.app.logs.filter((line) => line.includes('POSTLINE_TRUST_PROXY does not trust'));
    assert.equal(warnings.length, 1, 'one warning');
    assert.match(warnings[0]!, /"level":40/);
    const behindProxy = await startTestInstance(t.db.url, { POSTLINE_TRUST_PROXY: 'loopback' });
    try {
      const trusted = await request(behindProxy.url).post('/v1/sessions').set('Postline-Session', 'cookie').set('X-Forwarded-Proto', 'https').send({ username, password: PASSWORD }).expect(201);
      assert.match(trusted.headers['set-cookie']?.[0] ?? '', /; Secure/);
      assert.ok(!behindProxy.logs.some((line) => line.includes('POSTLINE_TRUST_PROXY does not trust')));
    } finally {
      await behindProxy.stop();
    }
  });
});

describe('sessions', () => {
  test('a user lists their sessions and revokes another one: its token stops working at once and its streams end', async () => {
    const user = await register(t.app.url);
    const login = async () => (await request(t.app.url).post('/v1/sessions').send({ username: user.username, password: PASSWORD }).expect(201)).body.token as string;
    const [laptop, phone] = [await login(), await login()];
    const listed = await request(t.app.url).get('/v1/sessions').set('Authorization', `Bearer ${laptop}`).expect(200);
    const sessions = listed.body.sessions as Array<{ id: string; current: boolean; createdAt: string; expiresAt: string }>;
    assert.equal(sessions.length, 3, 'registration and two logins');
    assert.deepEqual(sessions.map((s) => s.current), [false, true, false], 'newest first; the laptop is this request');
    assert.ok(sessions.every((s) => Date.parse(s.expiresAt) > Date.parse(s.createdAt)));
    const phoneSession = sessions[0]!.id;
    const stream = await openStream(t.app.url, phone);
    try {
      await request(t.app.url).delete(`/v1/sessions/${phoneSession}`).set('Authorization', `Bearer ${laptop}`).expect(204);
      await stream.closed(5000);
      await request(t.app.url).get('/v1/me').set('Authorization', `Bearer ${phone}`).expect(401);
      await request(t.app.url).get('/v1/me').set('Authorization', `Bearer ${laptop}`).expect(200);
      await request(t.app.url).delete(`/v1/sessions/${phoneSession}`).set('Authorization', `Bearer ${laptop}`).expect(404);
      // Someone else's session is no session of yours.
      const other = await register(t.app.url);
      const [{ id: othersSession }] = (await t.db.query<{ id: string }>('SELECT id::text FROM sessions WHERE user_id = $1', [other.id])) as [{ id: string }];
      await request(t.app.url).delete(`/v1/sessions/${othersSession}`).set('Authorization', `Bearer ${laptop}`).expect(404);
      await request(t.app.url).get('/v1/me').set(bearer(other)).expect(200);
      assert.equal((await request(t.app.url).get('/v1/sessions').set('Authorization', `Bearer ${laptop}`).expect(200)).body.sessions.length, 2);
    } finally {
      stream.close();
    }
  });
});
