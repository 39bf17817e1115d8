import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { PASSWORD, uniqueUsername } from '../support/api.js';
import { useInstances } from '../support/fixture.js';
import { startTestInstance } from '../support/instance.js';
import { newUserContext, useChromium } from './support/browser.js';
import { stepsOf } from './support/chat-scenario.js';
import { DemoUser } from './support/demo-page.js';
import { E2E_SERVER_ENV } from './support/server-env.js';

/** The demo page as people use it: what it says when things go wrong, times, the list, phones. */
const chromium = useChromium();
const t = useInstances({ env: E2E_SERVER_ENV });
const SCREENSHOTS = path.resolve(import.meta.dirname, '../../docs/screenshots');

/** The page must never block on alert() (or confirm() where not asked for): fail the test if it does. */
function refuseDialogs(page: Page, dialogs: string[]): void {
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
}

/** HH:MM of `iso` in `timeZone`, as the page should show it. */
const clock = (iso: string, timeZone: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));

describe('the demo page in Chromium', { skip: chromium.skip }, () => {
  test('sign-up: the rules are shown, errors sit next to their fields, a 429 says how long to wait; no alert()', async () => {
    const limited = await startTestInstance(t.db.url, { ...E2E_SERVER_ENV, POSTLINE_AUTH_RATE_LIMIT_PER_MIN: '3' });
    const context = await newUserContext(chromium.browser, 'native');
    const dialogs: string[] = [];
    try {
      const page = await context.newPage();
      refuseDialogs(page, dialogs);
      await page.goto(`${limited.url}/`);
      await page.locator('#username-rules', { hasText: '3–32 characters' }).waitFor();
      await page.locator('#password-rules', { hasText: '8–256 characters' }).waitFor();
      await page.fill('#username', 'Alice');
      await page.fill('#password', 'short');
      await page.click('#register');
      await page.locator('#username-error', { hasText: 'must be 3-32 characters of a-z' }).waitFor();
      await page.locator('#password-error', { hasText: 'must be 8-256 characters' }).waitFor();
      assert.equal(await page.locator('#signin-error').textContent(), '', 'nothing generic when every error has its field');
      // Wrong passwords until the sign-in limit (3 a minute here) answers 429.
      await page.fill('#username', uniqueUsername('nobody'));
      await page.fill('#password', PASSWORD);
      for (let attempt = 0, status = 0; status !== 429 && attempt < 5; attempt++) {
        const [answer] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/v1/sessions')), page.click('#login')]);
        status = answer.status();
      }
      await page.locator('#signin-error', { hasText: /^Too many attempts: try again in \d+ s\.$/ }).waitFor();
      assert.equal(await page.locator('#login').isDisabled(), true, 'signing in waits for the time the server asked');
      assert.deepEqual(dialogs, []);
    } finally {
      await context.close();
      await limited.stop();
    }
  });

  test('local times and dates, previews, the counter, Enter, the favicon; at 1000 and at 390 px', async (c) => {
    const dialogs: string[] = [];
    const alice = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Alice', 'alice', { timezoneId: 'America/New_York' });
    const bob = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Bob', 'bob', { timezoneId: 'Europe/Berlin' });
    refuseDialogs(alice.page, dialogs);
    const step = stepsOf(c);
    try {
      await step('times are local: New York and Berlin read the same message differently', async () => {
        await alice.startChatWith(bob);
        await bob.acceptRequestFrom(alice);
        await alice.send('What time is it there?');
        await bob.openChatWith(alice);
        await bob.expectMessage('What time is it there?');
        const [{ created }] = (await t.db.query<{ created: Date }>('SELECT created_at AS created FROM messages WHERE body = $1', ['What time is it there?'])) as [{ created: Date }];
        const iso = created.toISOString();
        assert.equal(await alice.message('What time is it there?').locator('.time').textContent(), clock(iso, 'America/New_York'));
        assert.equal(await bob.message('What time is it there?').locator('.time').textContent(), clock(iso, 'Europe/Berlin'));
      });

      await step('older messages show their date; the list previews the last message', async () => {
        await bob.send('Early morning here');
        await alice.expectMessage('Early morning here');
        await t.db.query("UPDATE messages SET created_at = created_at - interval '9 days' WHERE body = 'What time is it there?'");
        await alice.reload();
        await alice.openChatWith(bob);
        assert.match((await alice.message('What time is it there?').locator('.time').textContent())!, /^\d{1,2} [A-Z][a-z]{2}, \d\d:\d\d$/);
        assert.equal(await alice.threadButton(bob).locator('.preview').textContent(), 'Bob: Early morning here');
      });

      await step('a counter counts toward 4000; over it, no Send', async () => {
        await alice.page.fill('#message-input', 'x'.repeat(4001));
        await alice.page.locator('#counter.over', { hasText: '4001 / 4000' }).waitFor();
        assert.equal(await alice.page.locator('#send').isDisabled(), true);
        await alice.page.fill('#message-input', '');
        await alice.page.locator('#counter', { hasText: '0 / 4000' }).waitFor();
      });

      await step('Enter sends; Shift+Enter starts a new line', async () => {
        const input = alice.page.locator('#message-input');
        await input.pressSequentially('line one');
        await input.press('Shift+Enter');
        await input.pressSequentially('line two');
        await input.press('Enter');
        await bob.message('line one').waitFor();
        assert.equal(await bob.message('line one').locator('.body').textContent(), 'line one\nline two');
        assert.equal(await input.inputValue(), '');
      });

      await step('the favicon is there', async () => {
        assert.equal(await alice.page.evaluate(() => fetch('/favicon.ico').then((response) => response.status)), 200);
      });

      await step('1000 px: the screenshot', async () => {
        await alice.page.screenshot({ path: path.join(SCREENSHOTS, 'demo-1000.png') });
      });

      await step('390 px: one column, nothing cut off; the conversation, then the list', async () => {
        await alice.page.setViewportSize({ width: 390, height: 844 });
        const overflow = () => alice.page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
        assert.ok((await overflow()) <= 390, `no sideways scrolling (${await overflow()} px wide)`);
        await alice.page.screenshot({ path: path.join(SCREENSHOTS, 'demo-390-conversation.png') });
        await alice.page.click('#back');
        await alice.threadButton(bob).waitFor();
        assert.ok((await overflow()) <= 390, `no sideways scrolling in the list (${await overflow()} px wide)`);
        await alice.page.screenshot({ path: path.join(SCREENSHOTS, 'demo-390.png'), fullPage: true });
        await alice.threadButton(bob).click();
        await alice.page.locator('#conversation-title', { hasText: 'Bob' }).waitFor();
      });

      assert.deepEqual(dialogs, [], 'no alert()');
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });
});
