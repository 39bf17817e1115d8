import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { bearer, createPair, register, sendMessage } from '../support/api.js';
import { useInstances } from '../support/fixture.js';
import { startTestInstance, type TestInstance } from '../support/instance.js';
import { openStream, waitFor } from '../support/sse.js';
import { launchChromium } from './support/browser.js';
import { runChatScenario } from './support/chat-scenario.js';
import { DemoUser } from './support/demo-page.js';
import { startNginx, type Nginx } from './support/nginx.js';
import { requireProgram } from './support/programs.js';
import { E2E_SERVER_ENV } from './support/server-env.js';

const nginxProgram = requireProgram('nginx', 'nginx');
const chromium = requireProgram('chromium', 'chromium');
const skip = nginxProgram.skip || chromium.skip;

const HEARTBEAT_MS = 500;
const READ_TIMEOUT_MS = 2000;
const SERVER_ENV = { ...E2E_SERVER_ENV, POSTLINE_SSE_HEARTBEAT_MS: String(HEARTBEAT_MS), POSTLINE_TRUST_PROXY: 'loopback' };

/** Ignores the server's X-Accel-Buffering: no, and has room to hold a whole stream. */
const FORCED_BUFFERING = [
  'proxy_ignore_headers X-Accel-Buffering;',
  'proxy_buffering on;',
  'proxy_buffer_size 64k;',
  'proxy_buffers 16 64k;',
  'proxy_busy_buffers_size 128k;',
];
const SHORT_READ_TIMEOUT = [`proxy_read_timeout ${READ_TIMEOUT_MS / 1000}s;`];

const t = useInstances({ count: 2, env: SERVER_ENV });
const endAllConnections = () => t.apps.forEach((app) => app.realtime.hub.endAll('shutdown'));

let browser: Browser;
before(async () => {
  if (!skip) browser = await launchChromium(chromium.path);
});
after(async () => {
  await browser?.close();
});

/** Start nginx in front of `upstreams()` before the describe's tests, stop it after them. */
function useNginx(upstreams: () => TestInstance[], directives: string[]): { proxy: Nginx } {
  const holder = {} as { proxy: Nginx };
  before(async () => {
    if (!skip) holder.proxy = await startNginx(nginxProgram.path, upstreams().map((instance) => instance.url), directives);
  });
  after(async () => {
    await holder.proxy?.stop();
  });
  return holder;
}

describe('nginx with its default proxy_buffering on, round robin over two instances', { skip }, () => {
  const nginx = useNginx(() => t.apps, []);

  test('events arrive promptly on streams through it (the server says X-Accel-Buffering: no), on both instances', async () => {
    const { alice, bob, threadId } = await createPair(nginx.proxy.url);
    const streams = [await openStream(nginx.proxy.url, bob.token), await openStream(nginx.proxy.url, bob.token)];
    try {
      await waitFor(() => t.apps.every((instance) => instance.realtime.hub.count(bob.id, 'stream') === 1), 5000, 'one stream on each instance');
      await sendMessage(nginx.proxy.url, alice, threadId, 'promptly');
      const acknowledgedAt = Date.now();
      // Held back, it would only come out when the stream ends (minutes later).
      for (const stream of streams) assert.equal((await stream.nextEnvelope(2000)).data.body, 'promptly');
      const latencyMs = Date.now() - acknowledgedAt;
      assert.ok(latencyMs < 2000, `delivered ${latencyMs} ms after the send was acknowledged`);
    } finally {
      streams.forEach((stream) => stream.close());
    }
  });

  test('two people chat through it; when an instance dies, pages resume on the other', async (c) => {
    // Its own pair of instances and proxy: this chat loses one of them on purpose.
    const [dying, survivor] = await Promise.all([startTestInstance(t.db.url, SERVER_ENV), startTestInstance(t.db.url, SERVER_ENV)]);
    const proxy = await startNginx(nginxProgram.path, [dying.url, survivor.url]);
    let dead = false;
    try {
      await runChatScenario(c, {
        browser,
        baseUrl: proxy.url,
        variant: 'native',
        transport: 'sse',
        cutConnections: async () => {
          survivor.realtime.hub.endAll('shutdown');
          dead = true;
          await dying.stop();
        },
      });
    } finally {
      await proxy.stop();
      await Promise.all([survivor.stop(), dead ? undefined : dying.stop()]);
    }
  });
});

describe('nginx that ignores X-Accel-Buffering and buffers', { skip }, () => {
  const nginx = useNginx(() => t.apps, FORCED_BUFFERING);

  test('holds a stream back: not even its head arrives', async () => {
    const { alice, bob, threadId } = await createPair(nginx.proxy.url);
    let answered = false;
    const stream = http.get(`${nginx.proxy.url}/v1/events`, { headers: bearer(bob) }, () => (answered = true));
    stream.on('error', () => {});
    try {
      await waitFor(() => t.apps.some((instance) => instance.realtime.hub.count(bob.id, 'stream') === 1), 5000, 'the stream to reach an instance');
      await sendMessage(nginx.proxy.url, alice, threadId, 'held back');
      await delay(3000); // nothing to await: the point is that nothing comes
      assert.equal(answered, false);
    } finally {
      stream.destroy();
    }
  });

  test('the page falls back to long-poll by itself and the chat works', (c) =>
    runChatScenario(c, { browser, baseUrl: nginx.proxy.url, variant: 'native', transport: 'long-poll', cutConnections: endAllConnections }));
});

describe(`nginx with a ${READ_TIMEOUT_MS / 1000} s proxy_read_timeout`, { skip }, () => {
  const nginx = useNginx(() => t.apps, SHORT_READ_TIMEOUT);

  test(`heartbeats every ${HEARTBEAT_MS} ms keep a stream open past it`, async () => {
    const { alice, bob, threadId } = await createPair(nginx.proxy.url);
    const stream = await openStream(nginx.proxy.url, bob.token);
    try {
      const openedAt = Date.now();
      await waitFor(() => stream.ended || Date.now() - openedAt > 3 * READ_TIMEOUT_MS, 10_000, 'three read timeouts');
      assert.equal(stream.ended, false, 'the stream is still open');
      await sendMessage(nginx.proxy.url, alice, threadId, 'still here');
      assert.equal((await stream.nextEnvelope(3000)).data.body, 'still here');
    } finally {
      stream.close();
    }
  });

  test('without heartbeats nginx would cut it (the timeout is real)', async () => {
    const quiet = await startTestInstance(t.db.url, { ...SERVER_ENV, POSTLINE_SSE_HEARTBEAT_MS: '60000' });
    const proxy = await startNginx(nginxProgram.path, [quiet.url], SHORT_READ_TIMEOUT);
    try {
      const { bob } = await createPair(quiet.url);
      const stream = await openStream(proxy.url, bob.token);
      await stream.closed(3 * READ_TIMEOUT_MS);
    } finally {
      await proxy.stop();
      await quiet.stop();
    }
  });

  test('two people chat through it over SSE', (c) =>
    runChatScenario(c, { browser, baseUrl: nginx.proxy.url, variant: 'native', transport: 'sse', cutConnections: endAllConnections }));
});

interface FallbackWindow {
  postlineDemo: { client: { on(type: 'fallback', listener: (reason: string) => void): void }; fallbacks?: string[] };
}

/** Record, in the page, why its client fell back to long-poll (if it does). */
const recordFallbacks = (user: DemoUser) =>
  user.page.evaluate(() => {
    const demo = (globalThis as unknown as FallbackWindow).postlineDemo;
    demo.fallbacks = [];
    demo.client.on('fallback', (reason) => demo.fallbacks!.push(reason));
  });
const fallbacksOf = (user: DemoUser) => user.page.evaluate(() => (globalThis as unknown as FallbackWindow).postlineDemo.fallbacks!);

describe('nginx reloaded under pages (worker_shutdown_timeout 1s: a reload cuts the open streams)', { skip }, () => {
  test('four reloads 3 s apart cut working streams, and the page stays on SSE', async () => {
    const proxy = await startNginx(nginxProgram.path, t.apps.map((app) => app.url), [], { reloadable: true });
    const alice = await DemoUser.register(browser, proxy.url, 'native', 'Alice');
    const bob = await DemoUser.register(browser, proxy.url, 'native', 'Bob');
    try {
      await alice.startChatWith(bob);
      await bob.acceptRequestFrom(alice);
      await alice.expectTransport('sse');
      await recordFallbacks(alice);
      const streams = () => alice.requests.filter((request) => request.url().includes('/v1/events')).length;
      const before = streams();
      for (let reload = 0; reload < 4; reload++) {
        await proxy.reload();
        await delay(3000); // the cadence itself is the scenario: four reloads 3 s apart sent pages to long-poll
      }
      assert.deepEqual(await fallbacksOf(alice), [], 'never fell back');
      await alice.expectTransport('sse');
      assert.ok(streams() >= before + 4, `each reload cut the stream (${streams() - before} new streams)`);
      await bob.openChatWith(alice);
      await bob.send('after four reloads');
      await alice.expectMessage('after four reloads');
    } finally {
      await Promise.all([alice.close(), bob.close()]);
      await proxy.stop();
    }
  });

  test('a page that fell back to long-poll (nginx buffered its streams) goes back to SSE once streams get through', async () => {
    const proxy = await startNginx(nginxProgram.path, t.apps.map((app) => app.url), FORCED_BUFFERING, { reloadable: true });
    const alice = await DemoUser.register(browser, proxy.url, 'native', 'Alice');
    const bob = await register(proxy.url);
    const threadId = await alice.acceptThreadFrom(proxy.url, bob);
    try {
      await alice.expectTransport('long-poll');
      await proxy.reload([]); // buffering off again: X-Accel-Buffering is honoured
      // The page tries a stream again 7.5-15 s after it fell back (streamRetryMs, jittered).
      await alice.expectTransport('sse', 30_000);
      await alice.threadNamed(bob.username).click();
      await sendMessage(proxy.url, bob, threadId, 'back on the stream');
      await alice.expectMessage('back on the stream');
    } finally {
      await alice.close();
      await proxy.stop();
    }
  });
});
