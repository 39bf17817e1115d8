import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createThread, PASSWORD, register, sendMessage } from '../support/api.js';
import { useInstances } from '../support/fixture.js';
import { useChromium } from './support/browser.js';
import { DemoUser } from './support/demo-page.js';
import { E2E_SERVER_ENV } from './support/server-env.js';

/**
 * Sessions in the browser: the HttpOnly cookie keeps a page signed in across reloads and tabs,
 * and other sites can neither act with it (CSRF) nor plant one (login CSRF). The attacker's pages
 * come from a server of their own: on another port of 127.0.0.1 (same site: the SameSite=Lax cookie
 * still goes along, so only the server's own check stops the forgery) and at localhost (another site).
 */
const chromium = useChromium();
const t = useInstances({ env: E2E_SERVER_ENV });

/** An attacker's site: GET /?form=<urlencoded HTML of a form> serves a page that submits it at once. */
let attacker: http.Server;
let attackerPort = 0;
before(async () => {
  attacker = http.createServer((req, res) => {
    const form = new URL(req.url!, 'http://attacker').searchParams.get('form') ?? '';
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!DOCTYPE html><html><body>${form}<script>document.forms[0].submit();</script></body></html>`);
  });
  attacker.listen(0, '127.0.0.1');
  await once(attacker, 'listening');
  attackerPort = (attacker.address() as AddressInfo).port;
});
after(() => attacker?.close());

/** The URL of an attacker page (at `host`) that submits `form` to the API as soon as it loads. */
const forgery = (host: '127.0.0.1' | 'localhost', form: string) => `http://${host}:${attackerPort}/?form=${encodeURIComponent(form)}`;

interface SessionWindow {
  postlineDemo: { client: { token: string | null; session: string } };
}

describe('sessions in the browser', { skip: chromium.skip }, () => {
  test('a reload and a new tab stay signed in by the HttpOnly cookie; no script can read a token', async () => {
    const alice = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Alice');
    try {
      const [cookie] = (await alice.context.cookies(t.app.url + '/v1/')).filter((c) => c.name === 'postline_session');
      assert.ok(cookie?.httpOnly, 'the session is an HttpOnly cookie');
      const readable = await alice.page.evaluate(() => {
        const page = globalThis as unknown as SessionWindow & { document: { cookie: string }; localStorage: Record<string, string> };
        return { cookies: page.document.cookie, token: page.postlineDemo.client.token, session: page.postlineDemo.client.session, stored: JSON.stringify(page.localStorage) };
      });
      assert.deepEqual({ ...readable, stored: readable.stored.includes('pl_') }, { cookies: '', token: null, session: 'cookie', stored: false });
      await alice.page.reload();
      await alice.signedIn();
      assert.equal(await alice.page.locator('#signin').isVisible(), false, 'no sign-in form after a reload');
      await alice.page.locator('#me', { hasText: 'Alice' }).waitFor();
      const tab = await alice.newTab();
      await tab.locator('#me', { hasText: 'Alice' }).waitFor();
      assert.equal(await tab.locator('#signin').isVisible(), false);
    } finally {
      await alice.close();
    }
  });

  test('a form of another origin that posts with the cookie is refused: it cannot send Postline-Session', async () => {
    const alice = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Alice');
    const bob = await register(t.app.url);
    try {
      const threadId = await alice.acceptThreadFrom(t.app.url, bob);
      const action = `${t.app.url}/v1/threads/${threadId}/messages`;
      for (const form of [
        `<form method="post" action="${action}"><input name="body" value="forged by a form"></form>`,
        `<form method="post" enctype="text/plain" action="${action}"><input name='{"body":"forged as JSON","x":"' value='"}'></form>`,
      ]) {
        const answered = alice.page.waitForResponse((response) => response.url() === action);
        await alice.page.goto(forgery('127.0.0.1', form));
        const answer = await answered;
        assert.match((await answer.request().allHeaders()).cookie ?? '', /postline_session=pl_/, 'the browser sent the cookie (same site)');
        assert.equal(answer.status(), 401);
      }
      assert.deepEqual(await t.db.query('SELECT body FROM messages WHERE thread_id = $1', [threadId]), [], 'nothing was sent');
    } finally {
      await alice.close();
    }
  });

  test('a sign-in form of another site is refused (login CSRF): the victim keeps their own session', async () => {
    const alice = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Alice');
    const mallory = await register(t.app.url);
    try {
      const cookieOf = async () => (await alice.context.cookies(t.app.url + '/v1/')).find((c) => c.name === 'postline_session')?.value;
      const before = await cookieOf();
      const action = `${t.app.url}/v1/sessions`;
      const form = `<form method="post" action="${action}"><input name="username" value="${mallory.username}"><input name="password" value="${PASSWORD}"></form>`;
      const answered = alice.page.waitForResponse((response) => response.url() === action);
      await alice.page.goto(forgery('localhost', form));
      const answer = await answered;
      const sent = await answer.request().allHeaders();
      assert.equal(sent.origin, `http://localhost:${attackerPort}`);
      assert.equal(answer.status(), 403);
      assert.equal(await cookieOf(), before, 'the cookie is still Alice’s');
      assert.deepEqual(await t.db.query('SELECT id FROM sessions WHERE user_id = $1', [mallory.id]).then((rows) => rows.length), 1, 'no session for the attacker');
    } finally {
      await alice.close();
    }
  });

  test('a stream that turns out to be another user’s (its ready event says so) is dropped: the page signs out', async () => {
    const alice = await DemoUser.register(chromium.browser, t.app.url, 'native', 'Alice');
    const mallory = await register(t.app.url);
    const carol = await register(t.app.url);
    try {
      await alice.expectTransport('sse');
      const threadId = await createThread(t.app.url, mallory, [carol]);
      // The cookie swapped, as a login CSRF on an unprotected server would leave it; then the stream reconnects.
      await alice.context.addCookies([{ name: 'postline_session', value: mallory.token, url: `${t.app.url}/v1/`, httpOnly: true, sameSite: 'Lax' }]);
      t.app.realtime.hub.endAll('shutdown');
      await alice.page.locator('#signin').waitFor({ state: 'visible', timeout: 15_000 });
      await sendMessage(t.app.url, carol, threadId, 'for mallory only');
      assert.equal(await alice.page.getByText('for mallory only').count(), 0);
    } finally {
      await alice.close();
    }
  });
});
