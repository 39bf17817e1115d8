import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import request from 'supertest';
import { bearer, createPair, sendMessage } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { startTestInstance } from './support/instance.js';
import { openStream, StreamReader, waitFor } from './support/sse.js';

const t = useInstances({ env: { POSTLINE_SSE_HEARTBEAT_MS: '300', POSTLINE_SSE_RETRY_MS: '1500' } });

const pair = () => createPair(t.app.url);

describe('the stream', () => {
  test('has the contract’s headers, a 2 KiB padding comment and retry: before the first event, and heartbeats', async () => {
    const { alice, bob, threadId } = await pair();
    const stream = await openStream(t.app.url, bob.token);
    try {
      assert.equal(stream.status, 200);
      assert.match(stream.response.headers['content-type'] ?? '', /^text\/event-stream/);
      assert.equal(stream.response.headers['cache-control'], 'no-cache, no-transform');
      assert.equal(stream.response.headers['x-accel-buffering'], 'no');
      assert.equal(stream.response.headers['content-encoding'], undefined);
      const sent = await sendMessage(t.app.url, alice, threadId, 'hello');
      const frame = await stream.nextEvent();
      const beforeEvent = stream.raw.slice(0, stream.raw.indexOf('event:'));
      const padding = beforeEvent.split('\n').find((line) => line.startsWith(':') && line.length >= 2047);
      assert.ok(padding, 'a comment of at least 2048 bytes (with its colon and line end) comes first');
      assert.match(beforeEvent, /^retry: ?1500$/m);
      assert.equal(frame.event, 'message.created');
      const envelope = JSON.parse(frame.data!);
      assert.equal(frame.id, envelope.id);
      assert.equal(envelope.type, 'message.created');
      assert.equal(envelope.threadId, threadId);
      assert.deepEqual(envelope.data, sent);
      const heartbeat = await stream.nextHeartbeat(3000);
      assert.deepEqual(heartbeat.comments, [''], 'an empty comment line');
    } finally {
      stream.close();
    }
  });

  test('the events one feed batch holds for a socket leave in one write', async () => {
    const { alice, bob, threadId } = await pair();
    const stream = await openStream(t.app.url, bob.token);
    // Count the writes the server makes to this stream's socket (the test runs the instance in
    // its own process, so its sockets are these).
    const clientPort = stream.response.socket.localPort;
    const writes: number[] = [];
    const { _write: write, _writev: writev } = net.Socket.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const counting = (original: (...args: unknown[]) => unknown, kind: number) =>
      function (this: net.Socket, ...args: unknown[]) {
        if (this.remotePort === clientPort) writes.push(kind);
        return original.apply(this, args);
      };
    Object.assign(net.Socket.prototype, { _write: counting(write!, 1), _writev: counting(writev!, 2) });
    try {
      await sendMessage(t.app.url, alice, threadId, 'before the batch');
      await stream.nextOfType('message.created');
      writes.length = 0;
      // Three events committed together (one statement): the feed reads them in one batch.
      await t.db.query(
        `SELECT postline_append_event('message.created', $1, $2::bigint[], json_build_object('n', n)) FROM generate_series(1, 3) AS n`,
        [threadId, [alice.id, bob.id]],
      );
      for (let n = 1; n <= 3; n++) assert.deepEqual((await stream.nextOfType('message.created')).data, { n });
      assert.deepEqual(writes, [2], 'one writev for the three frames');
    } finally {
      Object.assign(net.Socket.prototype, { _write: write, _writev: writev });
      stream.close();
    }
  });

  test('open streams keep no timers of their own, and a stream with traffic gets no heartbeat', async () => {
    const { alice, bob, threadId } = await pair();
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timers();
    const streams = await Promise.all(Array.from({ length: 10 }, () => openStream(t.app.url, bob.token)));
    try {
      // (Fewer than one per stream: the database pools' idle timers come and go meanwhile.)
      assert.ok(timers() - before < streams.length, `${timers() - before} more timers for ${streams.length} open streams`);
      // Heartbeats come every 300 ms here; a message every 100 ms keeps the streams busy.
      const busy = streams[0]!;
      const from = busy.raw.length;
      for (let i = 0; i < 12; i++) {
        await sendMessage(t.app.url, alice, threadId, `busy ${i}`);
        await busy.nextOfType('message.created');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.doesNotMatch(busy.raw.slice(from), /^:\n\n/m, 'no heartbeat between events');
      await busy.nextHeartbeat(3000);
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  test('curl -N shows the padding, events with ids, and heartbeats', async () => {
    const { alice, bob, threadId } = await pair();
    const curl = spawn('curl', ['-sN', '-H', `Authorization: Bearer ${bob.token}`, `${t.app.url}/v1/events`]);
    let output = '';
    let onOutput = () => {};
    curl.stdout.setEncoding('utf8');
    curl.stdout.on('data', (chunk: string) => {
      output += chunk;
      onOutput();
    });
    const seen = (pattern: RegExp, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`curl never printed ${pattern}; it printed:\n${output.slice(-2000)}`)), timeoutMs);
        onOutput = () => {
          if (!pattern.test(output)) return;
          clearTimeout(timer);
          resolve();
        };
        onOutput();
      });
    try {
      await seen(/retry:/);
      const message = await sendMessage(t.app.url, alice, threadId, 'via curl');
      await seen(new RegExp(`"body":"via curl"`));
      await seen(/\n:\n\n[\s\S]*\n:\n\n/); // two heartbeats
      assert.match(output, /^: {2047,}\n/m);
      assert.match(output, /^id: ?\d+\nevent: ?message\.created\ndata: ?\{.*"type":"message\.created"/m);
      assert.ok(output.includes(`"id":"${message.id}"`));
    } finally {
      curl.kill();
    }
  });

  test('401 without a token; the token may come as ?access_token or the session cookie', async () => {
    const { alice, bob, threadId } = await pair();
    const anonymous = await StreamReader.open(`${t.app.url}/v1/events`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.response.headers['content-type'] ?? '', /problem\+json/);
    const byQuery = await StreamReader.open(`${t.app.url}/v1/events?access_token=${bob.token}`);
    const byCookie = await StreamReader.open(`${t.app.url}/v1/events`, { Cookie: `postline_session=${bob.token}` });
    try {
      await sendMessage(t.app.url, alice, threadId, 'both');
      assert.equal((await byQuery.nextEnvelope()).type, 'message.created');
      assert.equal((await byCookie.nextEnvelope()).type, 'message.created');
      assert.ok(!t.app.logs.join('\n').includes(bob.token), 'the query token is not logged');
    } finally {
      byQuery.close();
      byCookie.close();
    }
  });

  test('?format=ndjson streams the same envelopes, one JSON object per line', async () => {
    const { alice, bob, threadId } = await pair();
    const stream = await openStream(t.app.url, bob.token, { query: { format: 'ndjson' } });
    try {
      assert.match(stream.response.headers['content-type'] ?? '', /^application\/x-ndjson/);
      const sent = await sendMessage(t.app.url, alice, threadId, 'line');
      const envelope = await stream.nextLine();
      assert.equal(envelope.type, 'message.created');
      assert.deepEqual(envelope.data, sent);
      const [row] = await t.db.query<{ envelope: unknown }>('SELECT envelope FROM events WHERE id = $1', [envelope.id]);
      assert.deepEqual(envelope, row!.envelope);
    } finally {
      stream.close();
    }
  });

  test('a malformed resume id or format is 400 before the stream starts', async () => {
    const { bob } = await pair();
    for (const [headers, query] of [
      [{ 'Last-Event-ID': 'abc' }, {}],
      [{}, { lastEventId: '-1' }],
      [{}, { last_event_id: '1.5' }],
      [{}, { since: '99999999999999999999' }],
      [{}, { format: 'xml' }],
    ] as const) {
      const stream = await openStream(t.app.url, bob.token, { headers, query });
      assert.equal(stream.status, 400, JSON.stringify([headers, query]));
      assert.match(stream.response.headers['content-type'] ?? '', /problem\+json/);
      stream.close();
    }
  });
});

describe('resume', () => {
  async function missedWhileAway(resume: (lastId: string) => { headers?: Record<string, string>; query?: Record<string, string> }) {
    const { alice, bob, threadId } = await pair();
    const first = await openStream(t.app.url, bob.token);
    await sendMessage(t.app.url, alice, threadId, 'seen live');
    const lastId = (await first.nextEnvelope()).id!;
    first.close();
    const sent = [];
    for (let i = 0; i < 20; i++) sent.push(await sendMessage(t.app.url, alice, threadId, `missed ${i}`));
    const second = await openStream(t.app.url, bob.token, resume(lastId));
    try {
      const replayed = await second.envelopes(20);
      assert.deepEqual(replayed.map((e) => e.data), sent, 'exactly the 20 missed, in order');
      const ids = replayed.map((e) => Number(e.id));
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
      assert.ok(ids[0]! > Number(lastId));
      // And then live, without a duplicate.
      const live = await sendMessage(t.app.url, alice, threadId, 'live again');
      assert.deepEqual((await second.nextEnvelope()).data, live);
    } finally {
      second.close();
    }
  }

  test('with the Last-Event-ID header: exactly the 20 missed events, in order, then live', () =>
    missedWhileAway((lastId) => ({ headers: { 'Last-Event-ID': lastId } })));
  test('with ?lastEventId (event-source-polyfill)', () => missedWhileAway((lastId) => ({ query: { lastEventId: lastId } })));
  test('with ?last_event_id', () => missedWhileAway((lastId) => ({ query: { last_event_id: lastId } })));
  test('with ?since', () => missedWhileAway((lastId) => ({ query: { since: lastId } })));

  test('the eventsource client resumes by itself when the server ends the stream, losing nothing', async () => {
    const short = await startTestInstance(t.db.url, { POSTLINE_SSE_LIFETIME_MS: '1000', POSTLINE_SSE_RETRY_MS: '100' });
    const { alice, bob, threadId } = await pair();
    const source = new EventSource(`${short.url}/v1/events`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, Authorization: `Bearer ${bob.token}` } }),
    });
    const received: string[] = [];
    let opens = 0;
    source.onopen = () => opens++;
    source.addEventListener('message.created', (event) => received.push(JSON.parse(event.data).data.body));
    try {
      await new Promise((resolve) => (source.onopen = () => resolve(opens++)));
      source.onopen = () => opens++;
      const bodies = [];
      for (let i = 0; i < 30; i++) {
        bodies.push(`m${i}`);
        await sendMessage(t.app.url, alice, threadId, `m${i}`);
        if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 400)); // span several stream lifetimes
      }
      await waitFor(() => received.length >= 30, 10_000, 'all 30 messages over the reopened streams');
      assert.deepEqual(received, bodies);
      assert.ok(opens >= 2, `the stream was reopened (${opens} opens)`);
    } finally {
      source.close();
      await short.stop();
    }
  });

  test('beyond the events kept in memory, the backlog comes from the database, still complete', async () => {
    const small = await startTestInstance(t.db.url, { POSTLINE_RECENT_EVENTS_KB: '1' });
    try {
      const { alice, bob, threadId } = await pair();
      const first = await openStream(small.url, bob.token);
      await sendMessage(small.url, alice, threadId, 'seen live');
      const lastId = (await first.nextOfType('message.created')).id!;
      first.close();
      const sent = [];
      for (let i = 0; i < 12; i++) sent.push(await sendMessage(small.url, alice, threadId, `missed ${i}`));
      await waitFor(() => small.realtime.feed.cursor >= Number(lastId) + 12, 5000, 'the feed to pass the sends');
      assert.equal(small.realtime.feed.holds(Number(lastId)), false, 'the cursor is older than the events in memory');
      const second = await openStream(small.url, bob.token, { headers: { 'Last-Event-ID': lastId } });
      assert.deepEqual((await second.envelopes(12)).map((e) => e.data), sent);
      second.close();
    } finally {
      await small.stop();
    }
  });

  test('every stream opens with a ready event naming its user and where it starts; from now, with that id as its id:', async () => {
    const { alice, bob, threadId } = await pair();
    const [{ head }] = (await t.db.query<{ head: string }>('SELECT max(id)::text AS head FROM events')) as [{ head: string }];
    const first = await openStream(t.app.url, bob.token);
    const ready = await first.ready();
    assert.deepEqual({ sseId: ready.sseId, data: ready.data }, { sseId: head, data: { userId: bob.id, lastEventId: head } });
    assert.match(first.raw, /^: {2047,}\n\nretry: ?1500\nid: ?\d+\nevent: ?ready\ndata: ?\{"type":"ready"/, 'right after the padding, with retry:');
    first.close();
    // EventSource took the id: a reconnect before any other event resumes from there.
    const meanwhile = await sendMessage(t.app.url, alice, threadId, 'while bob was away');
    const again = await openStream(t.app.url, bob.token, { headers: { 'Last-Event-ID': ready.sseId! } });
    try {
      const resumed = await again.ready();
      assert.deepEqual({ sseId: resumed.sseId, data: resumed.data }, { sseId: undefined, data: { userId: bob.id, lastEventId: head } }, 'a resumed stream keeps its id');
      assert.deepEqual((await again.nextOfType('message.created')).data, meanwhile);
    } finally {
      again.close();
    }
    const ndjson = await openStream(t.app.url, alice.token, { query: { format: 'ndjson' } });
    try {
      const [{ now }] = (await t.db.query<{ now: string }>('SELECT max(id)::text AS now FROM events')) as [{ now: string }];
      assert.deepEqual((await ndjson.ready()).data, { userId: alice.id, lastEventId: now }, 'NDJSON: the first line');
    } finally {
      ndjson.close();
    }
  });

  test('starting from 0 replays everything the user may see', async () => {
    const { alice, bob, threadId } = await pair();
    await sendMessage(t.app.url, alice, threadId, 'one');
    await sendMessage(t.app.url, bob, threadId, 'two');
    const stream = await openStream(t.app.url, bob.token, { query: { since: '0' } });
    try {
      // The thread's creation, bob accepting it (it was a request: see the createPair helper), the messages.
      const [created, accepted, one, two] = await stream.envelopes(4);
      assert.deepEqual([created!.type, accepted!.type], ['thread.updated', 'thread.updated']);
      assert.deepEqual([one!.data.body, two!.data.body], ['one', 'two']);
    } finally {
      stream.close();
    }
  });

  test('a cursor ahead of the log, or older than retention, gets a reset event, then live events', async () => {
    const { alice, bob, threadId } = await pair();
    const ahead = await openStream(t.app.url, bob.token, { headers: { 'Last-Event-ID': '999999999' } });
    try {
      const reset = await ahead.nextEnvelope();
      assert.equal(reset.type, 'reset');
      assert.equal(reset.id, undefined);
      assert.equal(reset.sseId, undefined, 'ephemeral events carry no id:');
      assert.equal(reset.data.reason, 'unknown-cursor');
      const live = await sendMessage(t.app.url, alice, threadId, 'after reset');
      assert.deepEqual((await ahead.nextEnvelope()).data, live);
    } finally {
      ahead.close();
    }
    const [{ head }] = (await t.db.query<{ head: string }>('SELECT max(id) AS head FROM events')) as [{ head: string }];
    await t.db.query('UPDATE event_retention SET pruned_through = $1', [Number(head) - 1]);
    await t.app.realtime.feed.refreshBounds(); // what the periodic tick does
    try {
      const old = await openStream(t.app.url, bob.token, { headers: { 'Last-Event-ID': '1' } });
      assert.equal((await old.nextEnvelope()).data.reason, 'expired-cursor');
      old.close();
    } finally {
      await t.db.query('UPDATE event_retention SET pruned_through = 0');
      await t.app.realtime.feed.refreshBounds();
    }
  });
});

describe('revocation and limits', () => {
  test('a revoked token ends open streams; reconnecting with it gets 204, a fresh connect 401', async () => {
    const { bob } = await pair();
    const stream = await openStream(t.app.url, bob.token);
    await request(t.app.url).delete('/v1/sessions/current').set(bearer(bob)).expect(204);
    await stream.closed();
    const reconnect = await openStream(t.app.url, bob.token, { headers: { 'Last-Event-ID': '1' } });
    assert.equal(reconnect.status, 204);
    const fresh = await openStream(t.app.url, bob.token);
    assert.equal(fresh.status, 401);
  });

  test('one more stream than the cap per user is told to come back later, as in overload (200, retry:, close); NDJSON gets 429', async () => {
    const capped = await startTestInstance(t.db.url, { POSTLINE_MAX_STREAMS_PER_USER: '2' });
    const { bob } = await pair();
    const streams = [await openStream(capped.url, bob.token), await openStream(capped.url, bob.token)];
    try {
      // A 429 would end an EventSource for good; a 200 that ends with retry: makes it come back.
      const third = await openStream(capped.url, bob.token);
      assert.equal(third.status, 200);
      assert.match(third.response.headers['content-type'] ?? '', /^text\/event-stream/);
      await third.closed(5000);
      assert.equal(third.raw, 'retry: 5000\n\n', 'only a retry hint, no event, no id');
      const ndjson = await openStream(capped.url, bob.token, { query: { format: 'ndjson' }, headers: { Accept: 'application/x-ndjson' } });
      assert.equal(ndjson.status, 429);
      assert.ok(ndjson.response.headers['retry-after']);
      ndjson.close();
      streams.pop()!.close();
      // Once one closes, a new one is accepted.
      let next: StreamReader | undefined;
      for (let attempt = 0; attempt < 100 && next?.status !== 200; attempt++) next = await openStream(capped.url, bob.token);
      assert.equal(next?.status, 200);
      streams.push(next!);
    } finally {
      for (const stream of streams) stream.close();
      await capped.stop();
    }
  });
});
