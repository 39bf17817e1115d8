import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { Browser, Request } from 'playwright-core';
import type { EventSourceVariant } from './browser.js';
import { DemoUser, isDeliveryUrl, type TransportName } from './demo-page.js';

export interface ChatScenario {
  browser: Browser;
  /** Where the pages load the demo from: an instance, or a proxy in front of instances. */
  baseUrl: string;
  variant: EventSourceVariant;
  /** The transport both pages must settle on. */
  transport: TransportName;
  /** Cut every open stream and waiting poll on the server side; the pages must resume. */
  cutConnections: () => unknown;
  /** Save a screenshot of Alice's page (with Bob typing) here. */
  screenshot?: string;
}

/** Run subtests one step after another: after a failed step, the rest are skipped. */
export function stepsOf(t: TestContext): (name: string, body: () => Promise<void>) => Promise<void> {
  let failed = false;
  return async (name, body) => {
    await t.test(name, failed ? { skip: 'an earlier step failed' } : {}, async () => {
      try {
        await body();
      } catch (error) {
        failed = true;
        throw error;
      }
    });
  };
}

/**
 * Two people chat on the demo page, in two browser contexts, one step per subtest: connect,
 * a request accepted and presence on, send and receive, seen tick, typing (cleared by a send, and expiring without
 * renewal), resume after disconnect, presence off. After a failed step the rest are skipped.
 */
export async function runChatScenario(t: TestContext, scenario: ChatScenario): Promise<void> {
  const { browser, baseUrl, variant, transport } = scenario;
  const alice = await DemoUser.register(browser, baseUrl, variant, 'Alice');
  const bob = await DemoUser.register(browser, baseUrl, variant, 'Bob');
  const step = stepsOf(t);

  try {
    await step(`both pages deliver over ${transport}`, async () => {
      await alice.expectTransport(transport);
      await bob.expectTransport(transport);
      if (variant !== 'none' && transport === 'long-poll') {
        assert.ok(alice.requests.some((request) => request.url().includes('/v1/events')), 'the page tried a stream first and fell back by itself');
      }
    });

    await step('a request: Bob accepts Alice’s new chat (strangers until then), and each shows online to the other', async () => {
      await alice.startChatWith(bob);
      await bob.acceptRequestFrom(alice);
      await alice.expectPresence(bob, true);
      await bob.expectPresence(alice, true);
    });

    await step('send and receive: the message shows on both sides, unread until opened', async () => {
      await alice.send('Hello Bob');
      await alice.expectMessage('Hello Bob');
      await bob.expectUnread(alice, 1);
      await bob.openChatWith(alice);
      await bob.expectMessage('Hello Bob');
    });

    await step('seen: the sender gets the seen tick', async () => {
      await alice.expectSeenTick('Hello Bob');
    });

    await step('typing: the indicator shows, and goes when the message arrives', async () => {
      await bob.typeSome('Hi Alice');
      await alice.expectTyping(bob);
      await bob.page.click('#composer button[type="submit"]');
      await alice.expectMessage('Hi Alice');
      await alice.expectNoTyping(2000);
    });

    await step('typing: without renewal the indicator expires after about 6 s', async () => {
      // Bob's typing:false never leaves his page, so only the receiver's expiry can clear it.
      const blocked: Request[] = [];
      await bob.page.route('**/typing', (route) => {
        if (route.request().postDataJSON()?.typing === false) {
          blocked.push(route.request());
          return route.abort();
        }
        return route.continue();
      });
      const typedAt = Date.now();
      await bob.typeSome('…');
      await alice.expectTyping(bob);
      if (scenario.screenshot) {
        mkdirSync(path.dirname(scenario.screenshot), { recursive: true });
        await alice.page.screenshot({ path: scenario.screenshot });
      }
      await alice.expectNoTyping(10_000);
      const shownMs = Date.now() - typedAt;
      assert.ok(shownMs >= 5000, `the indicator went after ${shownMs} ms, before the 6 s expiry`);
      assert.equal(blocked.length, 1, 'Bob’s page said typing:false once (after 3 s idle), and it was held back');
      await bob.page.unroute('**/typing');
      await bob.page.fill('#message-input', '');
    });

    await step('resume after disconnect: missed messages arrive once, after the last id', async () => {
      await alice.cutOff(scenario.cutConnections);
      const resumeFrom = await alice.lastEventId();
      const seenRequests = alice.requests.length;
      await bob.send('While you were away');
      await bob.expectMessage('While you were away');
      await alice.reconnect();
      await alice.expectMessage('While you were away');

      const resumed = alice.requests.slice(seenRequests).filter((request) => isDeliveryUrl(request.url()));
      const resumePoint = new RegExp(`[?&](since|cursor)=${resumeFrom}(&|$)`);
      assert.ok(resumed.some((request) => resumePoint.test(request.url())), `a reconnect resumed after ${resumeFrom}: ${resumed.map((r) => r.url()).join(' ')}`);
      // Anything duplicated would have arrived before a later message.
      await bob.send('And one more');
      await alice.expectMessage('And one more');
      assert.equal(await alice.message('While you were away').count(), 1);
      const ids = await alice.receivedIds();
      assert.equal(new Set(ids).size, ids.length, `no event emitted twice: ${ids.join(',')}`);
      await alice.expectTransport(transport);
    });

    await step('presence: the dot turns off when the other leaves', async () => {
      await bob.close();
      await alice.expectPresence(bob, false);
    });
  } finally {
    await Promise.all([alice.close(), bob.close()]);
  }
}
