import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useInstances } from '../support/fixture.js';
import { BodyHoldingProxy } from '../support/body-holding-proxy.js';
import { useChromium } from './support/browser.js';
import { DemoUser } from './support/demo-page.js';
import { E2E_SERVER_ENV } from './support/server-env.js';

/**
 * Behind a gateway that passes every answer's head at once and holds an event stream's body until
 * it has 64 KiB (antivirus, some corporate proxies), EventSource opens and then nothing comes.
 */
const chromium = useChromium();
const t = useInstances({ env: E2E_SERVER_ENV });

interface FallbackWindow {
  postlineDemo: { client: { on(type: 'fallback', listener: (reason: string) => void): void }; fallbacks?: string[] };
}

describe('a proxy that holds the body of event streams', { skip: chromium.skip }, () => {
  test('the pages see their streams open without a first event, fall back to long-poll by themselves, and chat', async () => {
    const proxy = await BodyHoldingProxy.start(t.app.url);
    const alice = await DemoUser.register(chromium.browser, proxy.url, 'native', 'Alice');
    const bob = await DemoUser.register(chromium.browser, proxy.url, 'native', 'Bob');
    try {
      const reason = alice.page.evaluate(
        () =>
          new Promise<string>((resolve, reject) => {
            (globalThis as unknown as FallbackWindow).postlineDemo.client.on('fallback', resolve);
            setTimeout(() => reject(new Error('no fallback within 15 s')), 15_000);
          }),
      );
      assert.equal(await reason, 'the stream opened but its first event did not arrive within 5000 ms');
      const stream = alice.requests.find((request) => request.url().includes('/v1/events'))!;
      const head = await stream.response();
      assert.equal(head?.status(), 200, 'the head came through');
      assert.match(head?.headers()['content-type'] ?? '', /^text\/event-stream/);
      await alice.expectTransport('long-poll');
      await bob.expectTransport('long-poll');
      await alice.startChatWith(bob);
      await bob.acceptRequestFrom(alice);
      await alice.send('Through the gateway');
      await bob.openChatWith(alice);
      await bob.expectMessage('Through the gateway');
      await bob.send('And back');
      await alice.expectMessage('And back');
    } finally {
      await Promise.all([alice.close(), bob.close()]);
      await proxy.close();
    }
  });
});
