import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { register, sendMessage, type TestUser } from '../support/api.js';
import { useInstances } from '../support/fixture.js';
import { waitFor } from '../support/sse.js';
import { useChromium } from './support/browser.js';
import { DemoUser } from './support/demo-page.js';
import { E2E_SERVER_ENV } from './support/server-env.js';

/**
 * Many tabs of one browser on one HTTP/1.1 origin (the test instance speaks plain HTTP/1.1, where
 * Chromium opens at most 6 connections per host): they share one stream, held by an elected tab.
 */
const chromium = useChromium();
const t = useInstances({ env: E2E_SERVER_ENV });

interface TabWindow {
  postlineDemo: { client: { role: string | null; on(type: string, listener: (envelope: { id?: string }) => void): void }; tabIds?: string[] };
}

/** Start recording, in `page`, the ids of the durable events its client emits. */
const recordIds = (page: Page) =>
  page.evaluate(() => {
    const demo = (globalThis as unknown as TabWindow).postlineDemo;
    demo.tabIds = [];
    demo.client.on('event', (envelope) => envelope.id && demo.tabIds!.push(envelope.id));
  });
const idsOf = (page: Page) => page.evaluate(() => (globalThis as unknown as TabWindow).postlineDemo.tabIds!);
const roleOf = (page: Page) => page.evaluate(() => (globalThis as unknown as TabWindow).postlineDemo.client.role);
const leaders = async (tabs: Page[]) => (await Promise.all(tabs.map(roleOf))).filter((role) => role === 'leader').length;
const bodiesIn = (page: Page) => page.locator('#messages li.message:not(.pending) > .body').allTextContents();

/** `count` tabs of Alice's browser, each with her thread with Bob open and delivering over SSE. */
async function tabsOpenOn(alice: DemoUser, bob: TestUser, count: number): Promise<{ tabs: Page[]; threadId: string }> {
  const threadId = await alice.acceptThreadFrom(t.app.url, bob);
  await alice.threadNamed(bob.username).waitFor({ timeout: 15_000 });
  const tabs = [alice.page];
  while (tabs.length < count) tabs.push(await alice.newTab());
  for (const tab of tabs) {
    await tab.locator('#threads button.thread').first().click();
    await tab.locator('#transport[data-transport="sse"][data-state="open"]').waitFor({ timeout: 15_000 });
    await recordIds(tab);
  }
  return { tabs, threadId };
}

describe('tabs of one browser share one connection', { skip: chromium.skip }, () => {
  for (const [name, initScript] of [
    ['eight tabs, relayed over BroadcastChannel', undefined],
    ['four tabs of a browser without BroadcastChannel, relayed by storage events', 'delete window.BroadcastChannel;'],
  ] as const) {
    const count = initScript ? 4 : 8;
    test(`${name}: every tab gets every message once, a send from the last answers in under a second, closing the leader loses nothing`, async (c) => {
      const alice = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Alice', 'alice', initScript ? { initScript } : {});
      const bob = await register(t.app.url);
      try {
        const { tabs, threadId } = await tabsOpenOn(alice, bob, count);
        await waitFor(() => t.app.realtime.hub.count(alice.id, 'stream') === 1, 10_000, 'one stream for all the tabs');
        // Two tabs that claimed the lease at the same moment both lead until the next renewal.
        await waitFor(async () => (await leaders(tabs)) === 1, 5000, 'one leader');
        const roles = await Promise.all(tabs.map(roleOf));

        const expected = ['from bob 1'];
        await sendMessage(t.app.url, bob, threadId, 'from bob 1');
        for (const tab of tabs) await waitFor(async () => (await bodiesIn(tab)).length === 1, 15_000, 'the message in every tab');

        // The last tab sends: with a stream per tab it would queue behind them for a free connection.
        const last = tabs.at(-1)!;
        await last.fill('#message-input', 'from the last tab');
        const startedAt = Date.now();
        const [answer] = await Promise.all([
          last.waitForResponse((response) => response.url().endsWith('/messages') && response.request().method() === 'POST'),
          last.click('#send'),
        ]);
        const tookMs = Date.now() - startedAt;
        assert.equal(answer.status(), 201);
        assert.ok(tookMs < 1000, `the send answered in ${tookMs} ms`);
        c.diagnostic(`a send from tab ${count} answered in ${tookMs} ms`);
        expected.push('from the last tab');

        // The leader goes; bob writes meanwhile; another tab takes over and resumes from its last id.
        const leader = tabs[roles.indexOf('leader')]!;
        await leader.close();
        const closedAt = Date.now();
        const rest = tabs.filter((tab) => tab !== leader);
        for (let i = 2; i <= 4; i++) {
          await sendMessage(t.app.url, bob, threadId, `from bob ${i}`);
          expected.push(`from bob ${i}`);
        }
        for (const tab of rest) await waitFor(async () => (await bodiesIn(tab)).length >= expected.length, 15_000, 'every message in every tab left');
        c.diagnostic(`after the leader closed, every other tab had the 3 new messages within ${Date.now() - closedAt} ms`);
        for (const tab of rest) {
          assert.deepEqual(await bodiesIn(tab), expected, 'in order, once each');
          const ids = await idsOf(tab);
          assert.equal(new Set(ids).size, ids.length, `no event emitted twice: ${ids.join(',')}`);
        }
        await waitFor(async () => (await leaders(rest)) === 1, 5000, 'a new leader');
        await waitFor(() => t.app.realtime.hub.count(alice.id, 'stream') === 1, 10_000, 'again one stream');
      } finally {
        await alice.close();
      }
    });
  }
});
