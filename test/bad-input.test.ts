import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { bearer, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { startTestInstance, type TestInstance } from './support/instance.js';

let db: TestDatabase;
let app: TestInstance;
let alice: TestUser;
let bob: TestUser;
let threadId: string;
let foreignThreadId: string;
let messageId: string;

before(async () => {
  db = await createTestDatabase();
  app = await startTestInstance(db.url);
  [alice, bob] = [await register(app.url), await register(app.url)];
  threadId = await createThread(app.url, alice, [bob]);
  messageId = (await sendMessage(app.url, alice, threadId, 'hello')).id;
  const [carol, dave] = [await register(app.url), await register(app.url)];
  foreignThreadId = await createThread(app.url, carol, [dave]);
});
after(async () => {
  await app.stop();
  await db.drop();
});

/** Everything a bad request could have changed. */
async function snapshot(): Promise<unknown> {
  return db.query(`SELECT
    (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM sessions) AS sessions,
    (SELECT count(*) FROM threads) AS threads, (SELECT count(*) FROM thread_members) AS members,
    (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM events) AS events,
    (SELECT sum(read_seq) FROM thread_members) AS read_markers,
    (SELECT max(updated_at) FROM threads) AS activity`);
}

/** A request that must be refused; `body` may be a function when it needs ids made in before(). */
type BadRequest = { name: string; method: 'get' | 'post' | 'delete'; path: () => string; auth?: boolean; type?: string; body?: unknown; status: number };

const huge = 'x'.repeat(5000);
const cases: BadRequest[] = [
  // Bodies that are not what they claim, or not allowed at all.
  { name: 'malformed JSON', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'application/json', body: '{"body": "hi"', status: 400 },
  { name: 'JSON array body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'application/json', body: '["hi"]', status: 400 },
  { name: 'JSON string body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'application/json', body: '"hi"', status: 400 },
  { name: 'text/plain that is not JSON', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'text/plain', body: 'body=hi', status: 400 },
  { name: 'XML body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'application/xml', body: '<body>hi</body>', status: 415 },
  { name: 'multipart body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'multipart/form-data; boundary=x', body: '--x--', status: 415 },
  { name: 'body over 64 KiB', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'application/json', body: JSON.stringify({ body: 'x'.repeat(70_000) }), status: 413 },
  { name: 'Latin-1 JSON', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'application/json; charset=latin1', body: '{"body":"hi"}', status: 415 },
  // Messages.
  { name: 'missing body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: {}, status: 400 },
  { name: 'empty body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: '' }, status: 400 },
  { name: 'whitespace-only body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: ' \n\t ' }, status: 400 },
  { name: 'over-long body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 'é'.repeat(4001) }, status: 400 },
  { name: 'number body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 42 }, status: 400 },
  { name: 'object body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: { text: 'hi' } }, status: 400 },
  { name: 'NUL in body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 'a\u0000b' }, status: 400 },
  { name: 'escape in body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 'a\u001bb' }, status: 400 },
  { name: 'lone surrogate in body', method: 'post', path: () => `/v1/threads/${threadId}/messages`, type: 'application/json', body: '{"body":"a\\ud800b"}', status: 400 },
  { name: 'clientId with a space', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 'hi', clientId: 'a b' }, status: 400 },
  { name: 'clientId too long', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 'hi', clientId: 'k'.repeat(129) }, status: 400 },
  { name: 'clientId number', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 'hi', clientId: 7 }, status: 400 },
  { name: 'send to unknown thread', method: 'post', path: () => '/v1/threads/999999999/messages', body: { body: 'hi' }, status: 404 },
  { name: 'send to a thread of others', method: 'post', path: () => `/v1/threads/${foreignThreadId}/messages`, body: { body: 'hi' }, status: 404 },
  { name: 'thread id not an id', method: 'post', path: () => '/v1/threads/abc/messages', body: { body: 'hi' }, status: 400 },
  { name: 'thread id zero', method: 'post', path: () => '/v1/threads/0/messages', body: { body: 'hi' }, status: 400 },
  { name: 'thread id past bigint', method: 'post', path: () => '/v1/threads/9223372036854775808/messages', body: { body: 'hi' }, status: 400 },
  { name: 'thread id negative', method: 'get', path: () => '/v1/threads/-1', status: 400 },
  { name: 'huge limit', method: 'get', path: () => `/v1/threads/${threadId}/messages?limit=99999999999999999999999`, status: 400 },
  { name: 'huge before', method: 'get', path: () => `/v1/threads/${threadId}/messages?before=99999999999999999999999`, status: 400 },
  { name: 'huge after', method: 'get', path: () => `/v1/threads/${threadId}/messages?after=1e308`, status: 400 },
  { name: 'thread list limit 0', method: 'get', path: () => '/v1/threads?limit=0', status: 400 },
  { name: 'thread list before not an id', method: 'get', path: () => '/v1/threads?before=yesterday', status: 400 },
  // Threads.
  { name: 'members missing', method: 'post', path: () => '/v1/threads', body: {}, status: 400 },
  { name: 'members not a list', method: 'post', path: () => '/v1/threads', body: { members: { id: '1' } }, status: 400 },
  { name: 'member id not an id', method: 'post', path: () => '/v1/threads', body: { members: ['bob'] }, status: 400 },
  { name: 'member id float', method: 'post', path: () => '/v1/threads', body: { members: [1.5] }, status: 400 },
  { name: 'unknown member', method: 'post', path: () => '/v1/threads', body: { members: ['123456789'] }, status: 400 },
  { name: 'title with control characters', method: 'post', path: () => '/v1/threads', body: { members: [], title: 'a\u0007b' }, status: 400 },
  { name: 'empty title', method: 'post', path: () => '/v1/threads', body: { members: [], title: '  ' }, status: 400 },
  { name: 'title too long', method: 'post', path: () => '/v1/threads', body: { members: [], title: huge }, status: 400 },
  { name: 'add unknown user', method: 'post', path: () => `/v1/threads/${threadId}/members`, body: { userId: '123456789' }, status: 400 },
  { name: 'add without userId', method: 'post', path: () => `/v1/threads/${threadId}/members`, body: {}, status: 400 },
  { name: 'remove member id not an id', method: 'delete', path: () => `/v1/threads/${threadId}/members/me`, status: 400 },
  { name: 'get a thread of others', method: 'get', path: () => `/v1/threads/${foreignThreadId}`, status: 404 },
  // Seen.
  { name: 'seen without upTo', method: 'post', path: () => `/v1/threads/${threadId}/seen`, body: {}, status: 400 },
  { name: 'seen upTo not an id', method: 'post', path: () => `/v1/threads/${threadId}/seen`, body: { upTo: 'last' }, status: 400 },
  { name: 'seen upTo unknown', method: 'post', path: () => `/v1/threads/${threadId}/seen`, body: { upTo: '987654321' }, status: 400 },
  { name: 'seen on a thread of others', method: 'post', path: () => `/v1/threads/${foreignThreadId}/seen`, body: () => ({ upTo: messageId }), status: 404 },
  // Accounts.
  { name: 'register without password', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'nopass' }, status: 400 },
  { name: 'register short password', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'shortpw', password: 'short' }, status: 400 },
  { name: 'register long password', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'longpw', password: 'p'.repeat(257) }, status: 400 },
  { name: 'register uppercase username', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'Alice', password: 'password1' }, status: 400 },
  { name: 'register short username', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'ab', password: 'password1' }, status: 400 },
  { name: 'register username with NUL', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'ab\u0000cd', password: 'password1' }, status: 400 },
  { name: 'register username with newline', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'ab\ncd', password: 'password1' }, status: 400 },
  { name: 'register username with tab', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'ab\tcd', password: 'password1' }, status: 400 },
  { name: 'register display name with control', method: 'post', path: () => '/v1/users', auth: false, body: { username: 'ctrlname', password: 'password1', displayName: 'a\u0085b' }, status: 400 },
  { name: 'register taken username', method: 'post', path: () => '/v1/users', auth: false, body: () => ({ username: alice.username, password: 'password1' }), status: 409 },
  { name: 'login without fields', method: 'post', path: () => '/v1/sessions', auth: false, body: {}, status: 400 },
  { name: 'login wrong types', method: 'post', path: () => '/v1/sessions', auth: false, body: { username: ['a'], password: 1 }, status: 400 },
  { name: 'user lookup without username', method: 'get', path: () => '/v1/users', status: 400 },
  { name: 'user lookup with a bad username', method: 'get', path: () => '/v1/users?username=%00', status: 400 },
  // Routes and auth.
  { name: 'unknown route', method: 'get', path: () => '/v1/nope', status: 404 },
  { name: 'unknown route outside the API', method: 'get', path: () => '/nope', auth: false, status: 404 },
  { name: 'no token', method: 'get', path: () => '/v1/threads', auth: false, status: 401 },
];

test('every bad request gets a 4xx problem+json answer and changes nothing', async () => {
  const before = await snapshot();
  for (const bad of cases) {
    const body = typeof bad.body === 'function' ? bad.body() : bad.body;
    let req = request(app.url)[bad.method](bad.path());
    if (bad.auth !== false) req = req.set(bearer(alice));
    if (bad.type) req = req.set('Content-Type', bad.type);
    const res = body === undefined ? await req : await req.send(body as string | object);
    assert.equal(res.status, bad.status, `${bad.name}: ${res.status} ${res.text}`);
    assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/, bad.name);
    const problem = JSON.parse(res.text);
    assert.equal(problem.status, bad.status, bad.name);
    assert.equal(typeof problem.type, 'string', bad.name);
    assert.equal(typeof problem.title, 'string', bad.name);
    assert.equal(typeof problem.detail, 'string', bad.name);
    assert.ok(!/\bat .+\(.+:\d+:\d+\)/.test(res.text), `${bad.name}: a stack trace leaked`);
    if (bad.status === 400 && problem.errors) {
      for (const error of problem.errors) assert.deepEqual(Object.keys(error).sort(), ['message', 'path'], bad.name);
    }
  }
  assert.deepEqual(await snapshot(), before);
});

test('validation answers name each bad field', async () => {
  const res = await request(app.url).post('/v1/users').send({ username: 'A', password: 1, displayName: '' }).expect(400);
  assert.deepEqual(
    res.body.errors.map((e: { path: string }) => e.path).sort(),
    ['displayName', 'password', 'username'],
  );
  const missing = await request(app.url).post('/v1/users').send({}).expect(400);
  assert.deepEqual(missing.body.errors, [
    { path: 'username', message: 'is required' },
    { path: 'password', message: 'is required' },
  ]);
});
