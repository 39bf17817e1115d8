import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { bearer, createPair, register, sendMessage } from './support/api.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { startTestInstance, type TestInstance } from './support/instance.js';
import { openStream, waitFor } from './support/sse.js';

// Connection exhaustion (issue 15): slow clients are cut within the configured time, a request
// whose header token is bad is refused before its body is read, streams and polls keep their own
// lifetimes, and with the connection cap reached the admin listener still answers and the
// instance recovers. Bounded: a handful of sockets on loopback, short deadlines.
const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1000;
/** How late a cut may come: Node checks the deadlines every quarter of the head's (see http/connections.ts), plus the machine's slack. */
const LATE_MS = 800;

let db: TestDatabase;
let app: TestInstance;
before(async () => {
  db = await createTestDatabase();
  app = await startTestInstance(db.url, { POSTLINE_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), POSTLINE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
});
after(async () => {
  await app.stop();
  await db.drop();
});

interface RawClient {
  socket: net.Socket;
  /** Everything the server sent. */
  received(): string;
  /** Resolves with the milliseconds from connecting until the server closed the connection; rejects after 10 s. */
  closed: Promise<number>;
}

/** The longest any of these clients waits for the server to close on it. */
const DEADLINE_MS = 10_000;

/** A socket to `baseUrl` that writes `head` and then, every `everyMs`, one byte of `trickle` (as the attacker did). */
async function rawClient(baseUrl: string, head: string, trickle = '', everyMs = 100): Promise<RawClient> {
  const { port } = new URL(baseUrl);
  const socket = net.connect(Number(port), '127.0.0.1');
  const startedAt = performance.now();
  await once(socket, 'connect');
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => {});
  socket.write(head);
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < trickle.length && socket.writable) socket.write(trickle[sent++]!);
  }, everyMs);
  const deadline = setTimeout(() => socket.destroy(new Error(`the server did not close the connection within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  const closed = new Promise<number>((resolve, reject) => {
    socket.once('close', (hadError) => {
      clearInterval(timer);
      clearTimeout(deadline);
      if (hadError && performance.now() - startedAt >= DEADLINE_MS) reject(new Error(`not closed by the server within ${DEADLINE_MS} ms; received: ${text}`));
      else resolve(performance.now() - startedAt);
    });
  });
  return { socket, received: () => text, closed };
}

const postHead = (path: string, headers: string[]) =>
  [`POST ${path} HTTP/1.1`, 'Host: localhost', 'Content-Type: application/json', 'Content-Length: 60000', ...headers, '', ''].join('\r\n');

describe('slow clients', () => {
  test('a head that trickles in is cut within the headers timeout: 408 problem+json with the security headers', async () => {
    const client = await rawClient(app.url, 'POST /v1/threads/1/messages HTTP/1.1\r\nHost: localhost\r\n', 'X-Slow: ' + 'x'.repeat(1000));
    const ms = await client.closed;
    assert.ok(ms >= HEADERS_TIMEOUT_MS - 50 && ms < HEADERS_TIMEOUT_MS + LATE_MS, `cut after ${Math.round(ms)} ms`);
    assert.match(client.received(), /^HTTP\/1\.1 408 /);
    assert.match(client.received(), /\r\nx-content-type-options: nosniff\r\n/i);
    assert.match(client.received(), /"type":"urn:postline:problem:request-timeout"/);
  });

  test('a body that trickles in (with a valid token) is cut within the request timeout', async () => {
    const { alice, threadId } = await createPair(app.url);
    const client = await rawClient(app.url, postHead(`/v1/threads/${threadId}/messages`, [`Authorization: Bearer ${alice.token}`]), '{"body":"' + 'x'.repeat(1000));
    const ms = await client.closed;
    assert.ok(ms >= REQUEST_TIMEOUT_MS - 50 && ms < REQUEST_TIMEOUT_MS + LATE_MS, `cut after ${Math.round(ms)} ms`);
    assert.match(client.received(), /^HTTP\/1\.1 408 /);
  });

  test('a bad header token is refused before the body is read, and the connection closes; without a header the body is read (it may hold the token), within the request timeout', async () => {
    const wrong = await rawClient(app.url, postHead('/v1/threads/1/messages', ['Authorization: Bearer pl_' + 'A'.repeat(43)]), '{"body":"' + 'x'.repeat(1000));
    const ms = await wrong.closed;
    assert.match(wrong.received(), /^HTTP\/1\.1 401 /, 'no body byte was needed for the answer');
    assert.match(wrong.received(), /\r\nConnection: close\r\n/i);
    assert.ok(ms < REQUEST_TIMEOUT_MS / 2, `answered and closed after ${Math.round(ms)} ms`);
    const none = await rawClient(app.url, postHead('/v1/threads/1/messages', []), '{"body":"' + 'x'.repeat(1000));
    const noneMs = await none.closed;
    assert.match(none.received(), /^HTTP\/1\.1 408 /);
    assert.ok(noneMs < REQUEST_TIMEOUT_MS + LATE_MS, `cut after ${Math.round(noneMs)} ms`);
  });

  test('over the user’s request limit, a header-token request is refused before its body is read', async () => {
    const limited = await startTestInstance(db.url, { POSTLINE_RATE_LIMIT_PER_MIN: '1', POSTLINE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), POSTLINE_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS) });
    try {
      const user = await register(limited.url);
      await request(limited.url).get('/v1/me').set(bearer(user)).expect(200);
      const client = await rawClient(limited.url, postHead('/v1/threads', [`Authorization: Bearer ${user.token}`]), '{"members":[' + ' '.repeat(1000));
      const ms = await client.closed;
      assert.match(client.received(), /^HTTP\/1\.1 429 /);
      assert.ok(ms < REQUEST_TIMEOUT_MS / 2, `answered and closed after ${Math.round(ms)} ms`);
    } finally {
      await limited.stop();
    }
  });

  test('streams and waiting polls are not cut by the request timeout: they keep their own lifetimes', async () => {
    const { alice, bob, threadId } = await createPair(app.url);
    const stream = await openStream(app.url, bob.token);
    try {
      const { body } = await request(app.url).get('/v1/poll').set(bearer(bob)).expect(200);
      const startedAt = performance.now();
      const polled = request(app.url).get(`/v1/poll?cursor=${body.cursor}&timeout=2`).set(bearer(bob));
      const answer = await polled;
      assert.equal(answer.status, 200, 'a poll waiting twice the request timeout answers');
      assert.ok(performance.now() - startedAt >= 1900);
      const message = await sendMessage(app.url, alice, threadId, 'still here');
      assert.deepEqual((await stream.nextOfType('message.created')).data, message, 'the stream, open for longer than the request timeout, still delivers');
      assert.ok(!stream.ended);
    } finally {
      stream.close();
    }
  });
});

describe('the connection cap', () => {
  const cap = 10;

  test('near the cap the oldest slow connections are cut to make room: requests keep getting in while a flood holds the port', async () => {
    const capped = await startTestInstance(db.url, { POSTLINE_MAX_CONNECTIONS: String(cap) });
    const slow: RawClient[] = [];
    try {
      for (let i = 0; i < cap; i++) slow.push(await rawClient(capped.url, 'POST /v1/threads/1/messages HTTP/1.1\r\nHost: localhost\r\n'));
      await waitFor(async () => (await connections(capped)) === cap, 5000, 'the port full of slow heads');
      // Once a second old (a younger one may be a client about to send), the oldest are cut down to 90% of the cap.
      await waitFor(async () => (await connections(capped)) === cap - 1, 5000, 'room made');
      assert.ok(slow[0]!.socket.destroyed || (await Promise.race([slow[0]!.closed.then(() => true), new Promise((resolve) => setTimeout(resolve, 1000, false))])), 'the oldest went first');
      const user = await register(capped.url);
      for (let i = 0; i < 5; i++) await request(capped.url).get('/v1/me').set(bearer(user)).expect(200);
      const metrics = (await request(capped.url).get('/metrics').expect(200)).text;
      assert.match(metrics, /^postline_connections_shed_total [1-9]/m);
      assert.ok(capped.logs.some((line) => line.includes('connections near their cap') && line.includes('"level":40')), 'logged');
    } finally {
      for (const client of slow) client.socket.destroy();
      await capped.stop();
    }
  });

  test('at the cap new connections are refused and logged, idle keep-alive ones closed, the admin listener answers; the instance recovers when they leave', async () => {
    const capped = await startTestInstance(db.url, { POSTLINE_MAX_CONNECTIONS: String(cap), POSTLINE_ADMIN_PORT: '0' }, { expectErrors: true });
    const polls: http.ClientRequest[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.ok(capped.adminUrl, 'the admin listener is up');
      // One keep-alive connection, idle after its request, and waiting polls up to the cap:
      // complete requests, which are never shed.
      const idleClosed = new Promise<void>((resolve) => {
        http.get(`${capped.url}/healthz`, { agent }, (res) => {
          res.resume();
          res.socket.once('close', () => resolve());
        });
      });
      const users = [await register(capped.url), await register(capped.url)];
      await waitFor(async () => (await connections(capped)) === 1, 5000, 'the keep-alive connection');
      for (let i = 1; i < cap; i++) {
        const poll = http.get(`${capped.url}/v1/poll?cursor=0&timeout=30`, { headers: bearer(users[i % 2]!) });
        poll.on('error', () => {});
        polls.push(poll);
      }
      await waitFor(async () => (await connections(capped)) === cap, 5000, 'the cap reached');

      // One more: closed as it arrives, without an answer.
      const refused = await rawClient(capped.url, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await refused.closed;
      assert.equal(refused.received(), '');
      await idleClosed; // the idle keep-alive connection was closed to make room
      await waitFor(() => capped.logs.some((line) => line.includes('connections near their cap')), 5000, 'the log line');
      const warning = JSON.parse(capped.logs.find((line) => line.includes('connections near their cap'))!) as { level: number; maxConnections: number };
      assert.equal(warning.level, 40);
      assert.equal(warning.maxConnections, cap);

      // The probes and metrics still answer, on the admin listener.
      await request(capped.adminUrl).get('/healthz').expect(200, { status: 'ok' });
      await request(capped.adminUrl).get('/readyz').expect(200);
      const metrics = (await request(capped.adminUrl).get('/metrics').expect(200)).text;
      assert.match(metrics, /^postline_connections_refused_total [1-9]/m);
      assert.match(metrics, new RegExp(`^postline_connections ${cap - 1}$`, 'm'));
      await request(capped.adminUrl).get('/v1/me').expect(404); // nothing else is served there

      // They leave: the API port answers again.
      for (const poll of polls.splice(0)) poll.destroy();
      await waitFor(async () => (await connections(capped)) === 0, 5000, 'the connections gone');
      await request(capped.url).get('/healthz').expect(200);
      await request(capped.url).get('/v1/me').set(bearer(users[0]!)).expect(200);
    } finally {
      for (const poll of polls) poll.destroy();
      agent.destroy();
      await capped.stop();
    }
  });
});

/** Open connections of an instance's API port. */
function connections(instance: TestInstance): Promise<number> {
  return new Promise((resolve, reject) => instance.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}
