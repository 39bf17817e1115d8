import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import request from 'supertest';
import { bearer, createThread, register, sendMessage, type TestUser } from './support/api.js';
import { chatState, createTestDatabase, type TestDatabase } from './support/database.js';
import { openStream } from './support/sse.js';
import { startTestInstance, type TestInstance } from './support/instance.js';

let db: TestDatabase;
let app: TestInstance;
let alice: TestUser;
let bob: TestUser;
let threadId: string;
let foreignThreadId: string;
let messageId: string;
/** Bob's message, a deleted one of alice's, one with every reaction it may carry, and one in a foreign thread. */
let bobMessageId: string;
let deletedId: string;
let fullId: string;
let foreignMessageId: string;

before(async () => {
  db = await createTestDatabase();
  // The corpus sends alice's login with dozens of bad passwords from one address: more than the
  // failures one address has before it must wait (rate-limits.test.ts tests that).
  app = await startTestInstance(db.url, { POSTLINE_LOGIN_FAILURES_PER_ADDRESS: '100' });
  [alice, bob] = [await register(app.url), await register(app.url)];
  threadId = await createThread(app.url, alice, [bob]);
  messageId = (await sendMessage(app.url, alice, threadId, 'hello')).id;
  bobMessageId = (await sendMessage(app.url, bob, threadId, 'from bob')).id;
  deletedId = (await sendMessage(app.url, alice, threadId, 'deleted')).id;
  await request(app.url).delete(`/v1/threads/${threadId}/messages/${deletedId}`).set(bearer(alice)).expect(204);
  fullId = (await sendMessage(app.url, alice, threadId, 'popular')).id;
  for (const emoji of [...'😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙🥲😚🙂']) {
    await request(app.url).put(`/v1/threads/${threadId}/messages/${fullId}/reactions/${encodeURIComponent(emoji)}`).set(bearer(alice)).expect(200);
  }
  const [carol, dave] = [await register(app.url), await register(app.url)];
  foreignThreadId = await createThread(app.url, carol, [dave]);
  foreignMessageId = (await sendMessage(app.url, carol, foreignThreadId, 'not yours')).id;
});
after(async () => {
  await app.stop();
  await db.drop();
});

const snapshot = () => chatState(db);

/**
 * A request that must be refused; `body` may be a function when it needs ids made in before().
 * `raw` requests go over a plain socket as written (what an HTTP client library refuses to send).
 */
type BadRequest = {
  name: string;
  method: string;
  path: () => string;
  auth?: boolean;
  type?: string;
  headers?: Record<string, string>;
  body?: unknown;
  raw?: () => Buffer | string;
  status: number;
};

const huge = 'x'.repeat(5000);
/** A value with each kind of control character, for every field, query parameter and path id. */
const CONTROLS = { NUL: '\u0000', BEL: '\u0007', ESC: '\u001b', DEL: '\u007f', NEL: '\u0085', CRLF: '\r\nSet-Cookie: evil=1' };
const MB = 1024 * 1024;
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
  // Delivered.
  { name: 'delivered without upTo', method: 'post', path: () => `/v1/threads/${threadId}/delivered`, body: {}, status: 400 },
  { name: 'delivered upTo not an id', method: 'post', path: () => `/v1/threads/${threadId}/delivered`, body: { upTo: 'all' }, status: 400 },
  { name: 'delivered upTo unknown', method: 'post', path: () => `/v1/threads/${threadId}/delivered`, body: { upTo: '987654321' }, status: 400 },
  { name: 'delivered upTo in another thread', method: 'post', path: () => `/v1/threads/${threadId}/delivered`, body: () => ({ upTo: foreignMessageId }), status: 400 },
  { name: 'delivered on a thread of others', method: 'post', path: () => `/v1/threads/${foreignThreadId}/delivered`, body: () => ({ upTo: foreignMessageId }), status: 404 },
  // Edit.
  { name: 'edit to an empty body', method: 'patch', path: () => `/v1/threads/${threadId}/messages/${messageId}`, body: { body: ' ' }, status: 400 },
  { name: 'edit with an XML body', method: 'patch', path: () => `/v1/threads/${threadId}/messages/${messageId}`, type: 'application/xml', body: '<body>hi</body>', status: 415 },
  { name: 'edit with a JSON array', method: 'patch', path: () => `/v1/threads/${threadId}/messages/${messageId}`, type: 'application/json', body: '["hi"]', status: 400 },
  { name: 'edit with malformed JSON', method: 'patch', path: () => `/v1/threads/${threadId}/messages/${messageId}`, type: 'application/json', body: '{"body":', status: 400 },
  { name: 'a reaction with a multipart body', method: 'put', path: () => `/v1/threads/${threadId}/messages/${messageId}/reactions/${encodeURIComponent('👍')}`, type: 'multipart/form-data; boundary=x', body: '--x--', status: 415 },
  { name: 'edit without body', method: 'patch', path: () => `/v1/threads/${threadId}/messages/${messageId}`, body: {}, status: 400 },
  { name: 'edit to an over-long body', method: 'patch', path: () => `/v1/threads/${threadId}/messages/${messageId}`, body: { body: 'é'.repeat(4001) }, status: 400 },
  { name: 'edit to a number', method: 'patch', path: () => `/v1/threads/${threadId}/messages/${messageId}`, body: { body: 7 }, status: 400 },
  { name: "edit someone else's message", method: 'patch', path: () => `/v1/threads/${threadId}/messages/${bobMessageId}`, body: { body: 'forged' }, status: 403 },
  { name: 'edit a deleted message', method: 'patch', path: () => `/v1/threads/${threadId}/messages/${deletedId}`, body: { body: 'back' }, status: 409 },
  { name: "edit another thread's message", method: 'patch', path: () => `/v1/threads/${threadId}/messages/${foreignMessageId}`, body: { body: 'moved' }, status: 404 },
  { name: 'edit in a thread of others', method: 'patch', path: () => `/v1/threads/${foreignThreadId}/messages/${foreignMessageId}`, body: { body: 'hi' }, status: 404 },
  { name: 'edit an unknown message', method: 'patch', path: () => `/v1/threads/${threadId}/messages/987654321`, body: { body: 'hi' }, status: 404 },
  { name: 'edit a message id that is not an id', method: 'patch', path: () => `/v1/threads/${threadId}/messages/first`, body: { body: 'hi' }, status: 400 },
  // Delete.
  { name: "delete someone else's message", method: 'delete', path: () => `/v1/threads/${threadId}/messages/${bobMessageId}`, status: 403 },
  { name: "delete another thread's message", method: 'delete', path: () => `/v1/threads/${threadId}/messages/${foreignMessageId}`, status: 404 },
  { name: 'delete in a thread of others', method: 'delete', path: () => `/v1/threads/${foreignThreadId}/messages/${foreignMessageId}`, status: 404 },
  { name: 'delete a message id that is not an id', method: 'delete', path: () => `/v1/threads/${threadId}/messages/-4`, status: 400 },
  // Reactions.
  ...['a', 'ok', '👍👍', ':+1:', '1', '\u200d', '😀 ', 'x'.repeat(5000), '%F0%9F'].map(
    (emoji): BadRequest => ({ name: `reaction ${JSON.stringify(emoji.slice(0, 12))}`, method: 'put', path: () => `/v1/threads/${threadId}/messages/${messageId}/reactions/${emoji.startsWith('%') ? emoji : encodeURIComponent(emoji)}`, status: 400 }),
  ),
  { name: 'a 21st different reaction', method: 'put', path: () => `/v1/threads/${threadId}/messages/${fullId}/reactions/${encodeURIComponent('🤗')}`, status: 409 },
  { name: 'a reaction to a deleted message', method: 'put', path: () => `/v1/threads/${threadId}/messages/${deletedId}/reactions/${encodeURIComponent('👍')}`, status: 409 },
  { name: "a reaction to another thread's message", method: 'put', path: () => `/v1/threads/${threadId}/messages/${foreignMessageId}/reactions/${encodeURIComponent('👍')}`, status: 404 },
  { name: 'a reaction in a thread of others', method: 'put', path: () => `/v1/threads/${foreignThreadId}/messages/${foreignMessageId}/reactions/${encodeURIComponent('👍')}`, status: 404 },
  { name: 'a reaction taken back in a thread of others', method: 'delete', path: () => `/v1/threads/${foreignThreadId}/messages/${foreignMessageId}/reactions/${encodeURIComponent('👍')}`, status: 404 },
  // Replies.
  { name: 'replyTo in another thread', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: () => ({ body: 'hi', replyTo: foreignMessageId }), status: 400 },
  { name: 'replyTo unknown', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 'hi', replyTo: '987654321' }, status: 400 },
  { name: 'replyTo a deleted message', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: () => ({ body: 'hi', replyTo: deletedId }), status: 400 },
  { name: 'replyTo not an id', method: 'post', path: () => `/v1/threads/${threadId}/messages`, body: { body: 'hi', replyTo: 'that one' }, status: 400 },
  // Search.
  { name: 'search without q', method: 'get', path: () => '/v1/search', status: 400 },
  { name: 'search with an empty q', method: 'get', path: () => '/v1/search?q=', status: 400 },
  { name: 'search with a blank q', method: 'get', path: () => '/v1/search?q=%20%20', status: 400 },
  { name: 'search with only punctuation', method: 'get', path: () => `/v1/search?q=${encodeURIComponent('!!! ---')}`, status: 400 },
  { name: 'search with an oversized q', method: 'get', path: () => `/v1/search?q=${'x'.repeat(201)}`, status: 400 },
  { name: 'search with a huge q', method: 'get', path: () => `/v1/search?q=${'tiếng '.repeat(500)}`, status: 400 },
  { name: 'search limit 0', method: 'get', path: () => '/v1/search?q=hi&limit=0', status: 400 },
  { name: 'search before not an id', method: 'get', path: () => '/v1/search?q=hi&before=now', status: 400 },
  { name: 'search in a thread of others', method: 'get', path: () => `/v1/search?q=hi&threadId=${foreignThreadId}`, status: 404 },
  { name: 'search q twice', method: 'get', path: () => '/v1/search?q=a&q=b', status: 400 },
  // People search.
  { name: 'people search with an empty q', method: 'get', path: () => '/v1/users?q=', status: 400 },
  { name: 'people search with an oversized q', method: 'get', path: () => `/v1/users?q=${'x'.repeat(65)}`, status: 400 },
  { name: 'people search and an exact username at once', method: 'get', path: () => '/v1/users?q=a&username=alice', status: 400 },
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
  // Names that could pass for someone else's (issue 15): bidi controls, invisible and formatting characters, stacked marks.
  ...Object.entries({
    'an RTL override': '\u202eecila\u202c',
    'a zero-width space': 'al\u200bice',
    'only a zero-width space': '\u200b',
    'a zero-width joiner outside an emoji': 'ali\u200dce',
    'a word joiner': 'ali\u2060ce',
    'a Hangul filler': '\u3164',
    'a soft hyphen': 'ali\u00adce',
    'a left-to-right mark': '\u200ealice',
    '64 combining marks': `a${'\u0301'.repeat(64)}`,
    '5 combining marks on a letter without a composed form': `x${'\u0301'.repeat(5)}`,
    'a stray variation selector': 'alice\ufe0f',
  }).flatMap(([what, value]): BadRequest[] => [
    { name: `${what} in a display name`, method: 'post', path: () => '/v1/users', auth: false, body: { username: 'spoofer', password: 'password1', displayName: value }, status: 400 },
    { name: `${what} in a title`, method: 'post', path: () => '/v1/threads', body: { members: [], title: value }, status: 400 },
  ]),
  // Contacts, requests, sessions.
  { name: 'block yourself', method: 'post', path: () => `/v1/users/${alice.id}/block`, status: 400 },
  { name: 'block an unknown user', method: 'post', path: () => '/v1/users/987654321/block', status: 404 },
  { name: 'block a user id that is not an id', method: 'post', path: () => '/v1/users/bob/block', status: 400 },
  { name: 'unblock a user id that is not an id', method: 'delete', path: () => '/v1/users/0/block', status: 400 },
  { name: 'accept an unknown thread', method: 'post', path: () => '/v1/threads/987654321/accept', status: 404 },
  { name: 'accept a thread of others', method: 'post', path: () => `/v1/threads/${foreignThreadId}/accept`, status: 404 },
  { name: 'thread list requests=maybe', method: 'get', path: () => '/v1/threads?requests=maybe', status: 400 },
  { name: 'revoke a session id that is not an id', method: 'delete', path: () => '/v1/sessions/mine', status: 400 },
  { name: 'revoke an unknown session', method: 'delete', path: () => '/v1/sessions/987654321', status: 404 },
  // Routes and auth.
  { name: 'unknown route', method: 'get', path: () => '/v1/nope', status: 404 },
  { name: 'unknown route outside the API', method: 'get', path: () => '/nope', auth: false, status: 404 },
  { name: 'no token', method: 'get', path: () => '/v1/threads', auth: false, status: 401 },
  ...hostileCases(),
];


/** Raw HTTP/1.1 request text (Connection: close) as alice, or anonymously. */
function rawRequest(method: string, path: string, options: { auth?: boolean; headers?: string[]; body?: Buffer | string; length?: boolean } = {}): Buffer {
  const body = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
  const head = [`${method} ${path} HTTP/1.1`, 'Host: localhost', 'Connection: close', ...(options.headers ?? [])];
  if (options.auth !== false) head.push(`Authorization: Bearer ${alice.token}`);
  if (body && options.length !== false) head.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body ?? Buffer.alloc(0)]);
}

/** JSON text whose string value holds the given raw bytes (not valid UTF-8). */
const jsonWithBytes = (field: string, bytes: number[]) =>
  Buffer.concat([Buffer.from(`{"${field}":"a`), Buffer.from(bytes), Buffer.from('b"}')]);

function hostileCases(): BadRequest[] {
  const cases: BadRequest[] = [];
  const messages = () => `/v1/threads/${threadId}/messages`;
  for (const [label, c] of Object.entries(CONTROLS)) {
    const v = `a${c}b`;
    const q = encodeURIComponent(v);
    cases.push(
      // Bodies (JSON), every field.
      { name: `${label} in clientId`, method: 'post', path: messages, body: { body: 'hi', clientId: v }, status: 400 },
      { name: `${label} in title`, method: 'post', path: () => '/v1/threads', body: { members: [], title: v }, status: 400 },
      { name: `${label} in a member id`, method: 'post', path: () => '/v1/threads', body: { members: [v] }, status: 400 },
      { name: `${label} in userId`, method: 'post', path: () => `/v1/threads/${threadId}/members`, body: { userId: v }, status: 400 },
      { name: `${label} in upTo`, method: 'post', path: () => `/v1/threads/${threadId}/seen`, body: { upTo: v }, status: 400 },
      { name: `${label} in upTo (delivered)`, method: 'post', path: () => `/v1/threads/${threadId}/delivered`, body: { upTo: v }, status: 400 },
      { name: `${label} in replyTo`, method: 'post', path: messages, body: { body: 'hi', replyTo: v }, status: 400 },
      { name: `${label} in typing`, method: 'post', path: () => `/v1/threads/${threadId}/typing`, body: { typing: v }, status: 400 },
      { name: `${label} in username (register)`, method: 'post', path: () => '/v1/users', auth: false, body: { username: v, password: 'password1' }, status: 400 },
      { name: `${label} in displayName`, method: 'post', path: () => '/v1/users', auth: false, body: { username: 'ctrlname', password: 'password1', displayName: v }, status: 400 },
      { name: `${label} in username (login)`, method: 'post', path: () => '/v1/sessions', auth: false, body: { username: v, password: 'password1' }, status: 400 },
      { name: `${label} in password (login)`, method: 'post', path: () => '/v1/sessions', auth: false, body: () => ({ username: alice.username, password: v }), status: 401 },
      { name: `${label} in access_token (body)`, method: 'post', path: messages, auth: false, body: { body: 'hi', access_token: v }, status: 401 },
      // The same in a form body.
      { name: `${label} in clientId (form)`, method: 'post', path: messages, type: 'application/x-www-form-urlencoded', body: `body=hi&clientId=${q}`, status: 400 },
      // Query parameters and path ids.
      { name: `${label} in ?limit`, method: 'get', path: () => `/v1/threads?limit=${q}`, status: 400 },
      { name: `${label} in ?before (threads)`, method: 'get', path: () => `/v1/threads?before=${q}`, status: 400 },
      { name: `${label} in ?before (messages)`, method: 'get', path: () => `${messages()}?before=${q}`, status: 400 },
      { name: `${label} in ?after`, method: 'get', path: () => `${messages()}?after=${q}`, status: 400 },
      { name: `${label} in ?username`, method: 'get', path: () => `/v1/users?username=${q}`, status: 400 },
      { name: `${label} in ?q (people)`, method: 'get', path: () => `/v1/users?q=${q}`, status: 400 },
      { name: `${label} in ?q (search)`, method: 'get', path: () => `/v1/search?q=${q}`, status: 400 },
      { name: `${label} in ?threadId (search)`, method: 'get', path: () => `/v1/search?q=hi&threadId=${q}`, status: 400 },
      { name: `${label} in an emoji`, method: 'put', path: () => `/v1/threads/${threadId}/messages/${messageId}/reactions/${encodeURIComponent(`👍${c}`)}`, status: 400 },
      { name: `${label} in a message id`, method: 'delete', path: () => `/v1/threads/${threadId}/messages/${q}`, status: 400 },
      { name: `${label} in ?userIds`, method: 'get', path: () => `/v1/presence?userIds=1,${q}`, status: 400 },
      { name: `${label} in ?cursor`, method: 'get', path: () => `/v1/poll?cursor=${q}`, status: 400 },
      { name: `${label} in ?timeout`, method: 'get', path: () => `/v1/poll?cursor=0&timeout=${q}`, status: 400 },
      { name: `${label} in ?since`, method: 'get', path: () => `/v1/events?since=${q}`, status: 400 },
      { name: `${label} in ?last_event_id`, method: 'get', path: () => `/v1/events?last_event_id=${q}`, status: 400 },
      { name: `${label} in ?lastEventId`, method: 'get', path: () => `/v1/events?lastEventId=${q}`, status: 400 },
      { name: `${label} in ?format`, method: 'get', path: () => `/v1/events?format=${q}`, status: 400 },
      { name: `${label} in ?access_token`, method: 'get', path: () => `/v1/poll?access_token=${q}`, auth: false, status: 401 },
      { name: `${label} in a thread id`, method: 'get', path: () => `/v1/threads/${q}`, status: 400 },
      { name: `${label} in a member id (path)`, method: 'delete', path: () => `/v1/threads/${threadId}/members/${q}`, status: 400 },
    );
  }
  // Message bodies may hold line breaks; every other control character is refused in an edit too.
  for (const [label, c] of Object.entries(CONTROLS)) {
    if (label === 'CRLF') continue;
    cases.push({ name: `${label} in an edited body`, method: 'patch', path: () => `/v1/threads/${threadId}/messages/${messageId}`, body: { body: `a${c}b` }, status: 400 });
  }
  // Headers with control characters or line breaks: only a raw socket sends them.
  for (const [label, c] of Object.entries(CONTROLS)) {
    if (label === 'CRLF') continue; // a CRLF in a raw head just starts another header line
    cases.push(
      { name: `${label} in Idempotency-Key`, method: 'POST', path: messages, status: 400, raw: () => rawRequest('POST', messages(), { headers: [`Idempotency-Key: a${c}b`, 'Content-Type: application/json'], body: '{"body":"hi"}' }) },
      { name: `${label} in Last-Event-ID`, method: 'GET', path: () => '/v1/events', status: 400, raw: () => rawRequest('GET', '/v1/events', { headers: [`Last-Event-ID: 1${c}2`] }) },
      // HTTP allows bytes above 0x7f in header values (NEL arrives as such): then it is just a wrong token.
      { name: `${label} in the bearer token`, method: 'GET', path: () => '/v1/me', auth: false, status: label === 'NEL' ? 401 : 400, raw: () => rawRequest('GET', '/v1/me', { auth: false, headers: [`Authorization: Bearer ab${c}cd`] }) },
    );
  }
  cases.push(
    { name: 'Idempotency-Key with an injected header', method: 'post', path: messages, headers: { 'Idempotency-Key': 'key: value' }, body: { body: 'hi' }, status: 400 },
    { name: 'Last-Event-ID not a number', method: 'get', path: () => '/v1/events', headers: { 'Last-Event-ID': '1; DROP TABLE events' }, status: 400 },
    { name: 'Last-Event-ID negative', method: 'get', path: () => '/v1/events', headers: { 'Last-Event-ID': '-1' }, status: 400 },
    { name: 'Last-Event-ID past safe integers', method: 'get', path: () => '/v1/events', headers: { 'Last-Event-ID': '99999999999999999' }, status: 400 },
    { name: 'bearer token of the wrong shape', method: 'get', path: () => '/v1/me', auth: false, headers: { Authorization: `Bearer ${'a'.repeat(5000)}` }, status: 401 },
    // Numbers: huge, negative, NaN, fractional, other notations; never clamped.
    ...['-1', 'NaN', 'Infinity', '1e3', '0x10', '1.5', '+5', ' 5', '201', '99999999999999999999'].map(
      (value): BadRequest => ({ name: `?limit=${value}`, method: 'get', path: () => `${messages()}?limit=${encodeURIComponent(value)}`, status: 400 }),
    ),
    ...['-1', 'NaN', '56', '1e1', '5.5', ''].map(
      (value): BadRequest => ({ name: `?timeout=${value}`, method: 'get', path: () => `/v1/poll?cursor=0&timeout=${encodeURIComponent(value)}`, status: 400 }),
    ),
    ...['-1', 'NaN', '1e3', '01', '99999999999999999'].map(
      (value): BadRequest => ({ name: `?cursor=${value}`, method: 'get', path: () => `/v1/poll?cursor=${encodeURIComponent(value)}`, status: 400 }),
    ),
    { name: 'upTo a huge JSON number', method: 'post', path: () => `/v1/threads/${threadId}/seen`, type: 'application/json', body: '{"upTo":1e400}', status: 400 },
    { name: 'member id a huge JSON number', method: 'post', path: () => '/v1/threads', type: 'application/json', body: '{"members":[123456789012345678901234567890]}', status: 400 },
    { name: 'member id negative', method: 'post', path: () => '/v1/threads', body: { members: [-5] }, status: 400 },
    { name: 'typing a number', method: 'post', path: () => `/v1/threads/${threadId}/typing`, body: { typing: 1 }, status: 400 },
    { name: 'body of 60 000 characters', method: 'post', path: messages, body: { body: 'x'.repeat(60_000) }, status: 400 },
    { name: 'login username of 60 000 characters', method: 'post', path: () => '/v1/sessions', auth: false, body: { username: 'x'.repeat(60_000), password: 'password1' }, status: 400 },
    { name: 'too many members', method: 'post', path: () => '/v1/threads', body: { members: Array.from({ length: 1001 }, (_, i) => String(i + 1)) }, status: 400 },
    // Malformed and deeply nested JSON; structures where strings belong; prototype tricks.
    { name: 'deeply nested arrays', method: 'post', path: messages, type: 'application/json', body: `{"body":${'['.repeat(30_000)}${']'.repeat(30_000)}}`, status: 400 },
    { name: 'deeply nested objects', method: 'post', path: messages, type: 'application/json', body: `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, status: 400 },
    { name: 'truncated JSON', method: 'post', path: messages, type: 'application/json', body: '{"body":"hi', status: 400 },
    { name: 'JSON with a trailing comma', method: 'post', path: messages, type: 'application/json', body: '{"body":"hi",}', status: 400 },
    { name: 'JSON null body', method: 'post', path: messages, type: 'application/json', body: 'null', status: 400 },
    { name: 'JSON number body', method: 'post', path: messages, type: 'application/json', body: '42', status: 400 },
    { name: 'text/plain holding a JSON array', method: 'post', path: messages, type: 'text/plain', body: '[1,2]', status: 400 },
    { name: '__proto__ in the body', method: 'post', path: () => `/v1/threads/${foreignThreadId}/messages`, type: 'application/json', body: '{"__proto__":{"isMember":true},"body":"hi"}', status: 404 },
    { name: 'constructor.prototype in the body', method: 'post', path: () => '/v1/threads', body: { constructor: { prototype: { members: ['1'] } } }, status: 400 },
    { name: 'nested form keys', method: 'post', path: messages, type: 'application/x-www-form-urlencoded', body: 'body[a][b]=1', status: 400 },
    { name: 'form with too many fields', method: 'post', path: messages, type: 'application/x-www-form-urlencoded', body: Array.from({ length: 300 }, (_, i) => `f${i}=1`).join('&'), status: 400 },
    // Invalid UTF-8 in every kind of body.
    { name: 'invalid UTF-8 in JSON', method: 'POST', path: messages, status: 400, raw: () => rawRequest('POST', messages(), { headers: ['Content-Type: application/json'], body: jsonWithBytes('body', [0xff, 0xfe]) }) },
    { name: 'overlong UTF-8 in JSON', method: 'POST', path: messages, status: 400, raw: () => rawRequest('POST', messages(), { headers: ['Content-Type: application/json'], body: jsonWithBytes('body', [0xc0, 0xaf]) }) },
    { name: 'UTF-8 surrogate bytes in JSON', method: 'POST', path: messages, status: 400, raw: () => rawRequest('POST', messages(), { headers: ['Content-Type: application/json'], body: jsonWithBytes('body', [0xed, 0xa0, 0x80]) }) },
    { name: 'invalid UTF-8 in text/plain', method: 'POST', path: messages, status: 400, raw: () => rawRequest('POST', messages(), { headers: ['Content-Type: text/plain'], body: jsonWithBytes('body', [0xff]) }) },
    { name: 'invalid UTF-8 in a form', method: 'POST', path: messages, status: 400, raw: () => rawRequest('POST', messages(), { headers: ['Content-Type: application/x-www-form-urlencoded'], body: Buffer.concat([Buffer.from('body=a'), Buffer.from([0xff]), Buffer.from('b')]) }) },
    { name: 'invalid UTF-8 in the login', method: 'POST', path: () => '/v1/sessions', status: 400, raw: () => rawRequest('POST', '/v1/sessions', { auth: false, headers: ['Content-Type: application/json'], body: Buffer.concat([Buffer.from('{"password":"password1","username":"a'), Buffer.from([0xff]), Buffer.from('"}')]) }) },
    { name: 'percent-encoded invalid UTF-8 in a path id', method: 'get', path: () => '/v1/threads/%FF', status: 400 },
    { name: 'broken percent-encoding in a path id', method: 'get', path: () => '/v1/threads/%E0%A4%A', status: 400 },
    // Header injection through ids: nothing the client sends becomes a header of ours.
    { name: 'CRLF in a thread id', method: 'get', path: () => '/v1/threads/1%0d%0aSet-Cookie:%20evil=1', status: 400 },
    { name: 'CRLF in ?since', method: 'get', path: () => '/v1/events?since=1%0d%0aevil:%201', status: 400 },
    // Methods a known path does not serve (405 with Allow), and bodies of the wrong type.
    { name: 'PUT a thread', method: 'put', path: () => `/v1/threads/${threadId}`, body: { title: 'x' }, status: 405 },
    { name: 'PATCH a thread', method: 'patch', path: () => `/v1/threads/${threadId}`, body: { title: 'x' }, status: 405 },
    { name: 'DELETE /v1/me', method: 'delete', path: () => '/v1/me', status: 405 },
    { name: 'POST /v1/events', method: 'post', path: () => '/v1/events', body: {}, status: 405 },
    { name: 'PROPFIND', method: 'PROPFIND', path: () => '/v1/threads', status: 405, raw: () => rawRequest('PROPFIND', '/v1/threads') },
    { name: 'a method on an unknown path', method: 'put', path: () => '/v1/nowhere', body: {}, status: 404 },
    { name: 'a method HTTP does not know', method: 'FROB', path: () => '/v1/threads', status: 400, raw: () => rawRequest('FROB', '/v1/threads') },
    { name: 'a request line that is not HTTP', method: 'GET', path: () => '/', status: 400, raw: () => 'GET /v1/threads HTTP/9.9\r\n\r\n' },
    { name: 'a body without a content type', method: 'POST', path: messages, status: 415, raw: () => rawRequest('POST', messages(), { body: '{"body":"hi"}' }) },
    { name: 'UTF-16 JSON', method: 'post', path: messages, type: 'application/json; charset=utf-16', body: '{"body":"hi"}', status: 415 },
    { name: 'JSON sent as octet-stream', method: 'post', path: messages, type: 'application/octet-stream', body: '{"body":"hi"}', status: 415 },
    // 1 MB: bodies of each type, a chunked body without a length, a header, a URL.
    { name: '1 MB JSON body', method: 'post', path: messages, type: 'application/json', body: JSON.stringify({ body: 'x'.repeat(MB) }), status: 413 },
    { name: '1 MB form body', method: 'post', path: messages, type: 'application/x-www-form-urlencoded', body: `body=${'x'.repeat(MB)}`, status: 413 },
    { name: '1 MB text/plain body', method: 'post', path: messages, type: 'text/plain', body: 'x'.repeat(MB), status: 413 },
    { name: '1 MB register body', method: 'post', path: () => '/v1/users', auth: false, type: 'application/json', body: JSON.stringify({ username: 'bigbody', password: 'x'.repeat(MB) }), status: 413 },
    { name: '1 MB chunked body', method: 'POST', path: messages, status: 413, raw: () => rawRequest('POST', messages(), { headers: ['Content-Type: application/json', 'Transfer-Encoding: chunked'], length: false, body: `${(MB).toString(16)}\r\n${'x'.repeat(MB)}\r\n0\r\n\r\n` }) },
    { name: 'both Content-Length and chunked (smuggling)', method: 'POST', path: messages, status: 400, raw: () => rawRequest('POST', messages(), { headers: ['Content-Type: application/json', 'Transfer-Encoding: chunked'], body: '5\r\n{"a":\r\n0\r\n\r\n' }) },
    { name: '1 MB header', method: 'GET', path: () => '/v1/me', status: 431, raw: () => rawRequest('GET', '/v1/me', { headers: [`X-Big: ${'x'.repeat(MB)}`] }) },
    { name: '1 MB URL', method: 'GET', path: () => '/v1/threads', status: 431, raw: () => rawRequest('GET', `/v1/threads?x=${'x'.repeat(MB)}`) },
  );
  return cases;
}

/** Send a raw request and parse the answer's status, headers and body. */
async function sendRaw(payload: Buffer | string): Promise<{ status: number; headers: Record<string, string>; text: string }> {
  const { port } = new URL(app.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {}); // the server may close before reading all of a huge request
  socket.write(payload);
  await once(socket, 'close');
  const answer = Buffer.concat(chunks).toString('utf8');
  const [head = '', ...rest] = answer.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0), headers, text: rest.join('\r\n\r\n') };
}

/** Send a corpus case the way its shape says: supertest for ordinary requests, a raw socket otherwise. */
async function sendCase(bad: BadRequest): Promise<{ status: number; headers: Record<string, string>; text: string }> {
  if (bad.raw) return sendRaw(bad.raw());
  const body = typeof bad.body === 'function' ? bad.body() : bad.body;
  let req = request(app.url)[bad.method as 'get' | 'post' | 'put' | 'patch' | 'delete'](bad.path());
  if (bad.auth !== false) req = req.set(bearer(alice));
  if (bad.type) req = req.set('Content-Type', bad.type);
  for (const [name, value] of Object.entries(bad.headers ?? {})) req = req.set(name, value);
  const res = body === undefined ? await req : await req.send(body as string | object);
  return { status: res.status, headers: res.headers as Record<string, string>, text: res.text };
}

test('every bad request gets a 4xx problem+json answer and changes nothing', async () => {
  const before = await snapshot();
  let serverErrors = 0;
  for (const bad of cases) {
    const res = await sendCase(bad);
    if (res.status >= 500) serverErrors++;
    assert.equal(res.status, bad.status, `${bad.name}: ${res.status} ${res.text.slice(0, 500)}`);
    assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/, bad.name);
    // Answers Node's parser gives (400, 408, 431) too: never sniffed, never rendered.
    assert.equal(res.headers['x-content-type-options'], 'nosniff', `${bad.name}: nosniff`);
    assert.match(res.headers['content-security-policy'] ?? '', /default-src '(none|self)'/, `${bad.name}: a CSP`);
    const problem = JSON.parse(res.text);
    assert.equal(problem.status, bad.status, bad.name);
    assert.equal(typeof problem.type, 'string', bad.name);
    assert.equal(typeof problem.title, 'string', bad.name);
    assert.equal(typeof problem.detail, 'string', bad.name);
    assert.ok(!/\bat .+\(.+:\d+:\d+\)/.test(res.text), `${bad.name}: a stack trace leaked`);
    if (bad.status === 400 && problem.errors) {
      for (const error of problem.errors) assert.deepEqual(Object.keys(error).sort(), ['message', 'path'], bad.name);
    }
    assert.ok(!JSON.stringify(res.headers).includes('evil'), `${bad.name}: an injected header came back`);
  }
  assert.deepEqual(await snapshot(), before);
  assert.equal(serverErrors, 0);
  console.log(`# figures bad-input: ${JSON.stringify({ tried: cases.length, serverErrors })}`);
});

test('line breaks and fake SSE fields in a message reach every stream as one event with the text intact', async () => {
  const body = 'line one\r\nevent: reset\r\ndata: {"evil":true}\n\nid: 999999\rretry: 1\u2028\u2029end';
  const sse = await openStream(app.url, bob.token);
  const ndjson = await openStream(app.url, bob.token, { query: { format: 'ndjson' } });
  try {
    const sent = await sendMessage(app.url, alice, threadId, body);
    const frame = await sse.nextEvent();
    assert.equal(frame.event, 'message.created');
    assert.equal(frame.id, (JSON.parse(frame.data!) as { id: string }).id);
    assert.equal((JSON.parse(frame.data!) as { data: { body: string } }).data.body, sent.body);
    assert.equal(sent.body, body.trim());
    const line = await ndjson.nextLine();
    assert.equal((line.data as { body: string }).body, sent.body);
    // Nothing else arrived before a marker sent after it: no second event, no id or retry from the text.
    const marker = await sendMessage(app.url, alice, threadId, 'marker');
    const next = await sse.nextFrame();
    assert.deepEqual(JSON.parse(next.data ?? 'null')?.data, marker, `the marker came next, not ${JSON.stringify(next)}`);
    assert.deepEqual((await ndjson.nextLine()).data, marker);
  } finally {
    sse.close();
    ndjson.close();
  }
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
