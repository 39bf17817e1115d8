import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import Postline from '../src/client/postline-client.cjs';
import request from 'supertest';
import { bearer, createPair, sendMessage, type TestUser } from './support/api.js';
import { useInstances } from './support/fixture.js';
import { BodyHoldingProxy } from './support/body-holding-proxy.js';
import { waitFor } from './support/sse.js';
import { NodeXMLHttpRequest } from './support/xhr.js';

/**
 * postline-client in Node (the `eventsource` package and an XMLHttpRequest on node:http) against
 * a real instance, for what the browser suites cannot stage: how it picks and leaves a transport.
 * The browser behaviour itself is tested in Chromium by test/e2e.
 */
const t = useInstances();

/** A client for `user` on `baseUrl`, with quick reconnects. */
async function signedInClient(baseUrl: string, user: TestUser, options: Postline.Options = {}): Promise<Postline.Client> {
  const client = new Postline.Client({ baseUrl, XMLHttpRequest: NodeXMLHttpRequest, EventSource, reconnectBaseMs: 50, ...options });
  await new Promise<void>((resolve, reject) => client.useToken(user.token, (error) => (error ? reject(new Error(error.message)) : resolve())));
  return client;
}

/** The next `type` event of `client`, within 15 s. */
const next = <T>(client: Postline.Client, type: string) => until<T>((resolve) => client.once(type, resolve), `a ${type} event`);

/** A promise that `subscribe` resolves, or that fails after `timeoutMs`. */
function until<T>(subscribe: (resolve: (value: T) => void) => void, what: string, timeoutMs = 15_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
    subscribe((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/**
 * A proxy in front of the instance that passes everything but the stream endpoint, which it
 * either `cut`s (answers the head, then closes) or `hold`s (never answers), as hostile
 * middleboxes do.
 */
async function streamBreakingProxy(target: string, mode: 'cut' | 'hold'): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    if (req.url!.startsWith('/v1/events')) {
      if (mode === 'cut') res.writeHead(200, { 'Content-Type': 'text/event-stream' }).end();
      return;
    }
    const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => server.close() && server.closeAllConnections(),
  };
}

describe('postline-client picks its transport', () => {
  const clients: Postline.Client[] = [];
  after(() => clients.forEach((client) => client.disconnect()));

  async function connected(baseUrl: string, user: TestUser, options?: Postline.Options) {
    const client = await signedInClient(baseUrl, user, options);
    clients.push(client);
    const transport = next<string>(client, 'transport');
    client.connect();
    return { client, transport: await transport };
  }

  test('EventSource when there is one; events arrive once, in order', async () => {
    const { alice, bob, threadId } = await createPair(t.app.url);
    const { client, transport } = await connected(t.app.url, bob);
    assert.equal(transport, 'sse');
    const received: Array<string | null> = [];
    const allThree = new Promise<void>((resolve) =>
      client.on('message.created', (envelope: Postline.Envelope<Postline.Message>) => received.push(envelope.data.body) === 3 && resolve()),
    );
    // The resume point was learned before the transport started: nothing sent from here on is missed.
    for (const body of ['one', 'two', 'three']) await sendMessage(t.app.url, alice, threadId, body);
    await allThree;
    assert.deepEqual(received, ['one', 'two', 'three']);
  });

  test('long-poll when there is no EventSource', async () => {
    const { alice, bob, threadId } = await createPair(t.app.url);
    const { client, transport } = await connected(t.app.url, bob, { EventSource: null });
    assert.equal(transport, 'long-poll');
    const arrived = next<Postline.Envelope<Postline.Message>>(client, 'message.created');
    await sendMessage(t.app.url, alice, threadId, 'polled');
    assert.equal((await arrived).data.body, 'polled');
  });

  for (const [mode, reason] of [
    ['cut', /4 streams in a row ended before their first event/],
    ['hold', /did not open within 300 ms/],
  ] as const) {
    test(`long-poll by itself when a proxy ${mode === 'cut' ? 'cuts every stream at once' : 'holds streams back'}`, async () => {
      const proxy = await streamBreakingProxy(t.app.url, mode);
      try {
        const { alice, bob, threadId } = await createPair(t.app.url);
        const client = await signedInClient(proxy.url, bob, { openTimeoutMs: 300 });
        clients.push(client);
        const fellBack = next<string>(client, 'fallback');
        client.connect();
        assert.match(await fellBack, reason);
        assert.equal(client.transport, 'long-poll');
        const arrived = next<Postline.Envelope<Postline.Message>>(client, 'message.created');
        await sendMessage(t.app.url, alice, threadId, 'through the proxy');
        assert.equal((await arrived).data.body, 'through the proxy');
      } finally {
        proxy.close();
      }
    });
  }
});

describe('postline-client finds out when streams work', () => {
  const clients: Postline.Client[] = [];
  after(() => clients.forEach((client) => client.disconnect()));

  async function client(baseUrl: string, user: TestUser, options: Postline.Options) {
    const made = await signedInClient(baseUrl, user, options);
    clients.push(made);
    return made;
  }

  /** The bodies of the messages `client` emits, in order. */
  function bodiesOf(client: Postline.Client): string[] {
    const bodies: string[] = [];
    client.on('message.created', (envelope: Postline.Envelope<Postline.Message>) => bodies.push(envelope.data.body!));
    return bodies;
  }

  test('behind a proxy that passes the head and holds the body, the stream opens but its first event never comes: long-poll', async () => {
    const proxy = await BodyHoldingProxy.start(t.app.url);
    try {
      const { alice, bob, threadId } = await createPair(t.app.url);
      const bobs = await client(proxy.url, bob, { openTimeoutMs: 500, streamRetryMs: 60_000 });
      const fellBack = next<string>(bobs, 'fallback');
      bobs.connect();
      assert.equal(await fellBack, 'the stream opened but its first event did not arrive within 500 ms');
      assert.equal(bobs.transport, 'long-poll');
      const arrived = next<Postline.Envelope<Postline.Message>>(bobs, 'message.created');
      await sendMessage(t.app.url, alice, threadId, 'by poll');
      assert.equal((await arrived).data.body, 'by poll');
    } finally {
      await proxy.close();
    }
  });

  test('on long-poll by fallback it tries the stream again now and then, and goes back to it, losing and repeating nothing', async () => {
    const proxy = await BodyHoldingProxy.start(t.app.url);
    try {
      const { alice, bob, threadId } = await createPair(t.app.url);
      const bobs = await client(proxy.url, bob, { openTimeoutMs: 300, streamRetryMs: 200, streamRetryMaxMs: 400 });
      const bodies = bodiesOf(bobs);
      const fellBack = next(bobs, 'fallback');
      bobs.connect();
      await fellBack;
      await sendMessage(t.app.url, alice, threadId, 'one');
      await waitFor(() => bodies.length === 1, 10_000, 'one by poll');
      proxy.holding = false; // the gateway is fixed: the next try of the stream gets through
      await until<void>((resolve) => bobs.on('transport', (name: string) => name === 'sse' && resolve()), 'return to SSE');
      for (const body of ['two', 'three']) await sendMessage(t.app.url, alice, threadId, body);
      await waitFor(() => bodies.length >= 3, 10_000, 'two and three by stream');
      assert.deepEqual(bodies, ['one', 'two', 'three']);
      assert.equal(bobs.transport, 'sse');
    } finally {
      await proxy.close();
    }
  });

  test('cuts of working streams close together (proxy reloads, an instance going) keep it on SSE', async () => {
    const { alice, bob, threadId } = await createPair(t.app.url);
    const bobs = await client(t.app.url, bob, { maxStreamFailures: 2 });
    const fallbacks: string[] = [];
    bobs.on('fallback', (reason: string) => fallbacks.push(reason));
    const opened = () => until<void>((resolve) => bobs.on('state', (state: string) => state === 'open' && resolve()), 'open stream');
    let open = opened();
    bobs.connect();
    for (let cut = 0; cut < 4; cut++) {
      await open;
      open = opened();
      t.app.realtime.hub.endAll('shutdown');
    }
    await open;
    assert.deepEqual(fallbacks, []);
    assert.equal(bobs.transport, 'sse');
    const arrived = next<Postline.Envelope<Postline.Message>>(bobs, 'message.created');
    await sendMessage(t.app.url, alice, threadId, 'still streaming');
    assert.equal((await arrived).data.body, 'still streaming');
  });
});

describe('postline-client acknowledges delivery by itself', () => {
  const clients: Postline.Client[] = [];
  after(() => clients.forEach((client) => client.disconnect()));

  /** An XMLHttpRequest that records the marker requests it sends. */
  function recordingXhr(calls: string[]) {
    return class extends NodeXMLHttpRequest {
      override send(body: string | null): void {
        const url = (this as unknown as { url: string }).url;
        if (/\/(delivered|seen)$/.test(url)) calls.push(`${url.replace(/^.*\/threads\/\d+\//, '')} ${body}`);
        super.send(body);
      }
    };
  }

  const deliveredSeq = async (viewer: TestUser, threadId: string, userId: string) => {
    const res = await request(t.app.url).get(`/v1/threads/${threadId}`).set(bearer(viewer)).expect(200);
    return res.body.thread.receipts.find((r: Postline.Receipt) => r.userId === userId).deliveredSeq as number;
  };

  for (const transport of ['sse', 'long-poll'] as const) {
    test(`a burst of messages (${transport}) is acknowledged once, for the newest; own messages never`, async () => {
      const { alice, bob, threadId } = await createPair(t.app.url);
      const calls: string[] = [];
      const client = await signedInClient(t.app.url, bob, {
        XMLHttpRequest: recordingXhr(calls),
        deliveredDelayMs: 300,
        ...(transport === 'long-poll' && { EventSource: null }),
      });
      clients.push(client);
      await new Promise<void>((resolve) => client.connect(resolve));
      const sent = [];
      for (const body of ['one', 'two', 'three']) sent.push(await sendMessage(t.app.url, alice, threadId, body));
      await waitFor(async () => (await deliveredSeq(alice, threadId, bob.id)) === 3, 10_000, 'bob’s client to acknowledge');
      assert.deepEqual(calls, [`delivered {"upTo":"${sent[2]!.id}"}`]);
      // Bob's own message is not acknowledged; nor is anything again.
      const own = next<Postline.Envelope<Postline.Message>>(client, 'message.created');
      await sendMessage(t.app.url, bob, threadId, 'mine');
      await own;
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(calls.length, 1);
    });
  }

  test('what arrived while away is acknowledged from the thread list; what was acknowledged before is not again', async () => {
    const { alice, bob, threadId } = await createPair(t.app.url);
    const calls: string[] = [];
    const first = await sendMessage(t.app.url, alice, threadId, 'while you were away');
    const client = await signedInClient(t.app.url, bob, { XMLHttpRequest: recordingXhr(calls), deliveredDelayMs: 50 });
    await new Promise<void>((resolve, reject) => client.listThreads((error) => (error ? reject(new Error(error.message)) : resolve())));
    await waitFor(async () => (await deliveredSeq(alice, threadId, bob.id)) === 1, 10_000, 'the acknowledgement');
    assert.deepEqual(calls, [`delivered {"upTo":"${first.id}"}`]);
    // A new page load: a new client learns from the receipts that this was acknowledged already.
    const again = await signedInClient(t.app.url, bob, { XMLHttpRequest: recordingXhr(calls), deliveredDelayMs: 50 });
    await new Promise<void>((resolve) => again.listThreads(() => resolve()));
    await new Promise<void>((resolve) => again.listMessages(threadId, null, () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(calls.length, 1);
  });
});
