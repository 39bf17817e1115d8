import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { register } from '../support/api.js';
import { useInstances } from '../support/fixture.js';
import { useChromium } from './support/browser.js';
import { DemoUser } from './support/demo-page.js';
import { E2E_SERVER_ENV } from './support/server-env.js';

const chromium = useChromium();
const t = useInstances({ env: E2E_SERVER_ENV });

describe('the outbox in Chromium', { skip: chromium.skip }, () => {
  test('offline, three messages are kept as pending, survive a reload, and are sent when the connection is back: once each, in order', async () => {
    const alice = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Alice');
    const bob = await register(t.app.url);
    try {
      const threadId = await alice.acceptThreadFrom(t.app.url, bob);
      await alice.threadNamed(bob.username).click({ timeout: 15_000 });
      const bodies = ['first, offline', 'second, offline', 'third, offline'];
      const pending = alice.page.locator('#messages li.message.pending');

      await alice.context.setOffline(true);
      for (const body of bodies) await alice.send(body);
      await pending.nth(2).waitFor({ timeout: 15_000 });
      assert.deepEqual(await pending.locator('.body').allTextContents(), bodies, 'shown as waiting, in order');

      // The page reloads while the server still cannot be reached (the network is back, the server is not).
      await alice.context.route('**/v1/**', (route) => route.abort('internetdisconnected'));
      await alice.context.setOffline(false);
      await alice.page.reload();
      await alice.page.locator('#restoring', { hasText: 'Waiting for the server' }).waitFor({ timeout: 15_000 });
      assert.equal((await t.db.query('SELECT 1 FROM messages WHERE thread_id = $1', [threadId])).length, 0, 'nothing got through yet');

      // The server is back: the page signs in by itself and sends what waited.
      await alice.context.unroute('**/v1/**');
      await alice.threadNamed(bob.username).click({ timeout: 15_000 });
      for (const body of bodies) await alice.message(body).and(alice.page.locator(':not(.pending)')).waitFor({ timeout: 15_000 });
      await pending.first().waitFor({ state: 'detached', timeout: 15_000 });
      const stored = await t.db.query<{ body: string; client_id: string }>('SELECT body, client_id FROM messages WHERE thread_id = $1 ORDER BY seq', [threadId]);
      assert.deepEqual(stored.map((row) => row.body), bodies, 'once each, in the order written');
      assert.equal(new Set(stored.map((row) => row.client_id)).size, 3);
      assert.equal(await alice.page.evaluate(() => Object.keys((globalThis as unknown as { localStorage: Record<string, string> }).localStorage).filter((key) => key.includes(':outbox:')).length), 0, 'the outbox is empty');
    } finally {
      await alice.close();
    }
  });
});
