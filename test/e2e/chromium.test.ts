import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { useInstances } from '../support/fixture.js';
import { useChromium } from './support/browser.js';
import { runChatScenario } from './support/chat-scenario.js';
import { DemoUser } from './support/demo-page.js';
import { E2E_SERVER_ENV } from './support/server-env.js';

const chromium = useChromium();
const t = useInstances({ env: E2E_SERVER_ENV });
const SCREENSHOTS = path.resolve(import.meta.dirname, '../../docs/screenshots');

const cutConnections = () => t.app.realtime.hub.endAll('shutdown');

describe('two people chat on the demo page in Chromium', { skip: chromium.skip }, () => {
  test('with the native EventSource (SSE)', (c) =>
    runChatScenario(c, { browser: chromium.browser, baseUrl: t.app.url, variant: 'native', transport: 'sse', cutConnections, screenshot: path.join(SCREENSHOTS, 'demo-sse.png') }));

  test('without EventSource (long-poll)', (c) =>
    runChatScenario(c, { browser: chromium.browser, baseUrl: t.app.url, variant: 'none', transport: 'long-poll', cutConnections, screenshot: path.join(SCREENSHOTS, 'demo-long-poll.png') }));

  test('with event-source-polyfill in place of EventSource (SSE)', async (c) => {
    await runChatScenario(c, { browser: chromium.browser, baseUrl: t.app.url, variant: 'polyfill', transport: 'sse', cutConnections });
  });
});

describe('the client in Chromium', { skip: chromium.skip }, () => {
  test('a send that fails on the network is retried with the same clientId and stored once', async () => {
    const alice = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Alice');
    const bob = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Bob');
    try {
      await alice.startChatWith(bob);
      await bob.acceptRequestFrom(alice);
      let dropped = 0;
      await alice.page.route('**/messages', (route) => (route.request().method() === 'POST' && dropped++ === 0 ? route.abort('connectionreset') : route.continue()));
      await alice.send('Through a flaky network');
      await alice.expectMessage('Through a flaky network');
      await bob.openChatWith(alice);
      await bob.expectMessage('Through a flaky network');
      const posts = alice.requests.filter((request) => request.method() === 'POST' && request.url().endsWith('/messages'));
      assert.equal(posts.length, 2, 'one failed attempt, one retry');
      const clientIds = posts.map((request) => request.postDataJSON().clientId);
      assert.equal(clientIds[0], clientIds[1]);
      const rows = await t.db.query('SELECT id FROM messages WHERE body = $1', ['Through a flaky network']);
      assert.equal(rows.length, 1);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });

  for (const [variant, transport] of [['native', 'sse'], ['none', 'long-poll']] as const) {
    test(`after a reset (${transport}) the page refetches its threads and carries on with the new ids`, async () => {
      const alice = await DemoUser.register(chromium.browser, t.app.url, variant, 'Alice');
      const bob = await DemoUser.register(chromium.browser, t.app.url, variant, 'Bob');
      try {
        await alice.startChatWith(bob);
        await bob.acceptRequestFrom(alice);
        await bob.openChatWith(alice);
        await alice.expectTransport(transport);
        const reset = alice.page.evaluate(
          () =>
            new Promise((resolve) =>
              (globalThis as unknown as ResetWindow).postlineDemo.client.on('reset', (event) => resolve({ reason: event.reason, threads: event.threads.length })),
            ),
        );
        await alice.cutOff(cutConnections);
        // A resume point ahead of the log (say, the database was restored from a backup).
        await alice.page.evaluate(() => ((globalThis as unknown as ResetWindow).postlineDemo.client.lastEventId = '99999999999'));
        await alice.reconnect();
        assert.deepEqual(await reset, { reason: 'unknown-cursor', threads: 1 });
        await bob.send('After the reset');
        await alice.expectMessage('After the reset');
      } finally {
        await Promise.all([alice.close(), bob.close()]);
      }
    });
  }
});

interface ResetWindow {
  postlineDemo: { client: { lastEventId: string | null; on(type: 'reset', listener: (event: { reason: string; threads: unknown[] }) => void): void } };
}
