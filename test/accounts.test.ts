import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import request from 'supertest';
import { bearer, createThread, PASSWORD, register, uniqueUsername } from './support/api.js';
import { useInstances } from './support/fixture.js';

const t = useInstances();

describe('register', () => {
  test('answers 201 with the user and a token, and no cookie', async () => {
    const username = uniqueUsername();
    const res = await request(t.app.url)
      .post('/v1/users')
      .send({ username, password: PASSWORD, displayName: '  Alice A.  ' })
      .expect(201)
      .expect('Cache-Control', 'no-store');
    assert.equal(res.body.user.username, username);
    assert.equal(res.body.user.displayName, 'Alice A.');
    assert.match(res.body.user.id, /^\d+$/);
    assert.match(res.body.token, /^pl_[A-Za-z0-9_-]{43}$/);
    assert.equal(res.headers['set-cookie'], undefined);
  });

  test('with Postline-Session: cookie, the session is the HttpOnly cookie alone: the answer has no token', async () => {
    const res = await request(t.app.url).post('/v1/users').set('Postline-Session', 'cookie').send({ username: uniqueUsername(), password: PASSWORD }).expect(201);
    assert.deepEqual(Object.keys(res.body), ['user']);
    const cookie = res.headers['set-cookie']?.[0] ?? '';
    assert.match(cookie, /^postline_session=pl_[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /Path=\/v1/);
    assert.match(cookie, /SameSite=Lax/);
  });

  test('stores only a salted slow hash of the password and a SHA-256 of the token', async () => {
    const username = uniqueUsername();
    const res = await request(t.app.url).post('/v1/users').send({ username, password: PASSWORD }).expect(201);
    const [user] = await t.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE username = $1', [username]);
    assert.match(user!.password_hash, /^scrypt\$\d+\$\d+\$\d+\$[\w-]+\$[\w-]+$/);
    assert.ok(!user!.password_hash.includes(PASSWORD));
    const sessions = await t.db.query<{ token_hash: Buffer }>(
      'SELECT token_hash FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = $1',
      [username],
    );
    assert.deepEqual(sessions.map((s) => s.token_hash), [createHash('sha256').update(res.body.token).digest()]);
  });

  test('two users with the same password get different hashes', async () => {
    const [a, b] = [uniqueUsername(), uniqueUsername()];
    await request(t.app.url).post('/v1/users').send({ username: a, password: PASSWORD }).expect(201);
    await request(t.app.url).post('/v1/users').send({ username: b, password: PASSWORD }).expect(201);
    const rows = await t.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE username IN ($1, $2)', [a, b]);
    assert.notEqual(rows[0]!.password_hash, rows[1]!.password_hash);
  });

  test('a taken username is 409 problem+json', async () => {
    const user = await register(t.app.url);
    const res = await request(t.app.url).post('/v1/users').send({ username: user.username, password: PASSWORD }).expect(409);
    assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
    assert.equal(res.body.status, 409);
  });

  test('the display name defaults to the username', async () => {
    const user = await register(t.app.url);
    const res = await request(t.app.url).get('/v1/me').set(bearer(user)).expect(200);
    assert.deepEqual(res.body, { user: { id: user.id, username: user.username, displayName: user.username } });
  });
});

describe('login and logout', () => {
  test('login answers 201 with a new token; with Postline-Session: cookie, the cookie instead', async () => {
    const user = await register(t.app.url);
    const res = await request(t.app.url).post('/v1/sessions').send({ username: user.username, password: PASSWORD }).expect(201);
    assert.equal(res.body.user.id, user.id);
    assert.notEqual(res.body.token, user.token);
    assert.equal(res.headers['set-cookie'], undefined);
    await request(t.app.url).get('/v1/me').set('Authorization', `Bearer ${res.body.token}`).expect(200);
    const page = await request(t.app.url).post('/v1/sessions').set('Postline-Session', 'cookie').send({ username: user.username, password: PASSWORD }).expect(201);
    assert.deepEqual(page.body, { user: res.body.user });
    assert.match(page.headers['set-cookie']?.[0] ?? '', /^postline_session=pl_.*HttpOnly/);
  });

  test('wrong password and unknown user get the same 401', async () => {
    const user = await register(t.app.url);
    const wrong = await request(t.app.url).post('/v1/sessions').send({ username: user.username, password: 'not the password' });
    const unknown = await request(t.app.url).post('/v1/sessions').send({ username: uniqueUsername(), password: PASSWORD });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.deepEqual(wrong.body, unknown.body);
  });

  test('logout revokes the token at once; other sessions of the user live on', async () => {
    const user = await register(t.app.url);
    const other = await request(t.app.url).post('/v1/sessions').send({ username: user.username, password: PASSWORD });
    await request(t.app.url).delete('/v1/sessions/current').set(bearer(user)).expect(204);
    const res = await request(t.app.url).get('/v1/me').set(bearer(user)).expect(401);
    assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/);
    await request(t.app.url).get('/v1/me').set('Authorization', `Bearer ${other.body.token}`).expect(200);
  });

  test('an expired token is refused', async () => {
    const user = await register(t.app.url);
    await t.db.query(`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1`, [user.id]);
    await request(t.app.url).get('/v1/me').set(bearer(user)).expect(401);
  });
});

describe('authentication', () => {
  test('missing, malformed and unknown tokens are 401 with WWW-Authenticate: Bearer', async () => {
    for (const header of [undefined, 'Basic abc', 'Bearer', 'Bearer nope', `Bearer pl_${'A'.repeat(43)}`]) {
      const req = request(t.app.url).get('/v1/me');
      if (header) req.set('Authorization', header);
      const res = await req.expect(401);
      assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/, String(header));
      assert.equal(res.body.status, 401);
    }
  });

  test('the session cookie counts on REST calls only with Postline-Session: cookie (which cross-site forms cannot send)', async () => {
    const [alice, bob] = [await register(t.app.url), await register(t.app.url)];
    const agent = request.agent(t.app.url);
    await agent.post('/v1/sessions').set('Postline-Session', 'cookie').send({ username: alice.username, password: PASSWORD }).expect(201);
    // A reload: the cookie restores the session on a safe GET, and a POST with the header works.
    const me = await agent.get('/v1/me').set('Postline-Session', 'cookie').expect(200);
    assert.equal(me.body.user.id, alice.id);
    const created = await agent.post('/v1/threads').set('Postline-Session', 'cookie').send({ members: [bob.id] }).expect(201);
    const messages = `/v1/threads/${created.body.thread.id}/messages`;
    await agent.post(messages).set('Postline-Session', 'cookie').send({ body: 'by the page' }).expect(201);
    // Without the header, the cookie is not a credential: what a form of another site would send.
    for (const call of [agent.get('/v1/me'), agent.post(messages).type('form').send('body=forged')]) {
      const res = await call.expect(401);
      assert.match(res.body.detail, /only with the header "Postline-Session: cookie"/);
    }
    const bodies = await t.db.query<{ body: string }>('SELECT body FROM messages WHERE thread_id = $1', [created.body.thread.id]);
    assert.deepEqual(bodies.map((row) => row.body), ['by the page']);
    // Logout with the cookie ends that session and clears the cookie.
    const out = await agent.delete('/v1/sessions/current').set('Postline-Session', 'cookie').expect(204);
    assert.match(out.headers['set-cookie']?.[0] ?? '', /^postline_session=;/);
    await request(t.app.url).get('/v1/me').set(bearer(alice)).expect(200);
  });

  test('sign-ins that a browser says come from another site are refused (login CSRF); curl and own pages sign in', async () => {
    const user = await register(t.app.url);
    const host = new URL(t.app.url).host;
    const login = (headers: Record<string, string>) => request(t.app.url).post('/v1/sessions').set(headers).type('form').send({ username: user.username, password: PASSWORD });
    const before = await t.db.query('SELECT id FROM sessions WHERE user_id = $1', [user.id]);
    const foreign: Array<Record<string, string>> = [
      { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' },
      { Origin: 'https://evil.example' },
      { Origin: `http://${host.replace(/:\d+$/, ':1')}`, 'Sec-Fetch-Site': 'same-site' },
      { 'Sec-Fetch-Site': 'cross-site' },
      { Origin: 'null' },
    ];
    for (const headers of foreign) {
      const res = await login({ ...headers, 'Postline-Session': 'cookie' }).expect(403);
      assert.equal(res.body.type, 'urn:postline:problem:forbidden', JSON.stringify(headers));
      assert.equal(res.headers['set-cookie'], undefined);
      await request(t.app.url).post('/v1/users').set(headers).send({ username: uniqueUsername(), password: PASSWORD }).expect(403);
    }
    assert.equal((await t.db.query('SELECT id FROM sessions WHERE user_id = $1', [user.id])).length, before.length, 'no session was made');
    const own: Array<Record<string, string>> = [{}, { Origin: `http://${host}` }, { Origin: `http://${host}`, 'Sec-Fetch-Site': 'same-origin' }, { 'Sec-Fetch-Site': 'none' }];
    for (const headers of own) {
      await login(headers).expect(201);
    }
  });

  test('an access_token field in a text/plain POST body is accepted (XDomainRequest)', async () => {
    const alice = await register(t.app.url);
    const bob = await register(t.app.url);
    const threadId = await createThread(t.app.url, alice, [bob]);
    const res = await request(t.app.url)
      .post(`/v1/threads/${threadId}/messages`)
      .set('Content-Type', 'text/plain')
      .send(JSON.stringify({ body: 'from old IE', access_token: alice.token }))
      .expect(201);
    assert.equal(res.body.message.senderId, alice.id);
  });

  test('the token never reaches the logs', async () => {
    const user = await register(t.app.url);
    await request(t.app.url).get('/v1/me').set(bearer(user)).expect(200);
    await request(t.app.url).post('/v1/sessions').send({ username: user.username, password: PASSWORD }).expect(201);
    const logs = t.app.logs.join('\n');
    assert.ok(logs.includes('/v1/me'), 'requests are logged');
    assert.ok(!logs.includes(user.token), 'token found in logs');
    assert.ok(!logs.includes(PASSWORD), 'password found in logs');
  });
});

describe('user lookup', () => {
  test('finds by exact username, else an empty list', async () => {
    const alice = await register(t.app.url);
    const bob = await register(t.app.url);
    const found = await request(t.app.url).get('/v1/users').query({ username: bob.username }).set(bearer(alice)).expect(200);
    assert.deepEqual(found.body, { users: [{ id: bob.id, username: bob.username, displayName: bob.username }] });
    const none = await request(t.app.url).get('/v1/users').query({ username: uniqueUsername() }).set(bearer(alice)).expect(200);
    assert.deepEqual(none.body, { users: [] });
    const prefix = await request(t.app.url).get('/v1/users').query({ username: bob.username.slice(0, -1) }).set(bearer(alice)).expect(200);
    assert.deepEqual(prefix.body, { users: [] });
  });
});
