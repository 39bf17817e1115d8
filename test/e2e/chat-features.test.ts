import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import request from 'supertest';
import { bearer, PASSWORD, register, uniqueUsername, type TestUser } from '../support/api.js';
import { useInstances } from '../support/fixture.js';
import { useChromium, type EventSourceVariant } from './support/browser.js';
import { stepsOf } from './support/chat-scenario.js';
import { DemoUser, type TransportName } from './support/demo-page.js';
import { E2E_SERVER_ENV } from './support/server-env.js';

const chromium = useChromium();
const t = useInstances({ env: E2E_SERVER_ENV });
const SCREENSHOT = path.resolve(import.meta.dirname, '../../docs/screenshots/demo-features.png');

const THUMBS = '\u{1F44D}';

/** A user registered over the API with `displayName`. */
async function registerWith(baseUrl: string, displayName: string): Promise<TestUser> {
  const username = uniqueUsername('impostor');
  const res = await request(baseUrl).post('/v1/users').send({ username, password: PASSWORD, displayName }).expect(201);
  return { id: res.body.user.id, username, token: res.body.token };
}

/**
 * Two people on the demo page: find each other by name, exchange messages, see ✓✓ delivered and
 * read, reply, react, edit, delete, search, make a group; then both reload and everything still
 * shows as it was. One step per subtest; after a failed step the rest are skipped.
 */
async function runFeatures(c: TestContext, variant: EventSourceVariant, transport: TransportName, screenshot?: string): Promise<void> {
  // Display names with accents, found without them; the variant keeps them apart between runs.
  const alice = await DemoUser.register(chromium.browser, t.app.url, variant, `Alice Trần ${variant}`, 'alice');
  const bob = await DemoUser.register(chromium.browser, t.app.url, variant, `Bích Ngọc ${variant}`, 'bich');
  const carol = await register(t.app.url);
  const step = stepsOf(c);
  const hello = 'Xin chào! Tiếng Việt có dấu nhé';
  const helloEdited = 'Xin chào Bích! Tiếng Việt có dấu nhé';
  const lunch = 'Lunch at noon?';
  const answer = 'Yes, see you there';
  const oops = `Oops, wrong chat (${variant})`;
  const puzzled = `Which chat? (${variant})`;
  const away = 'Are you there?';

  try {
    await step(`both pages deliver over ${transport}`, async () => {
      await alice.expectTransport(transport);
      await bob.expectTransport(transport);
    });

    await step('start a chat by name: "bich ngoc" finds Bích Ngọc, who sees a request and accepts it', async () => {
      await alice.startChatByName(`bich ngoc ${variant}`, bob);
      await bob.acceptRequestFrom(alice);
    });

    await step('look-alikes: a stranger calling themselves Alice (with a Cyrillic А) shows with a username, and so does Alice', async () => {
      assert.equal(await bob.threadButton(alice).locator('.name').textContent(), alice.displayName, 'a name like no other shows alone');
      const impostor = await registerWith(t.app.url, `\u0410lice Trần ${variant}`);
      await request(t.app.url).post('/v1/threads').set(bearer(impostor)).send({ members: [bob.id] }).expect(201);
      await bob.page.locator('#requests button.thread', { hasText: `(@${impostor.username})` }).waitFor();
      await bob.threadButton(alice).locator('.name', { hasText: `${alice.displayName} (@${alice.username})` }).waitFor();
      // The real one's name, as a display name of someone else, is no more convincing.
      const copycat = await registerWith(t.app.url, alice.username);
      await request(t.app.url).post('/v1/threads').set(bearer(copycat)).send({ members: [bob.id] }).expect(201);
      await bob.page.locator('#requests button.thread', { hasText: `${alice.username} (@${copycat.username})` }).waitFor();
      if (screenshot) await bob.page.screenshot({ path: path.join(path.dirname(screenshot), 'demo-requests.png') });
    });

    await step('delivered: Bob’s page acknowledges what it got while the chat is closed: ✓✓', async () => {
      await alice.send(hello);
      await alice.send(lunch);
      await alice.expectTick(hello, 'sent');
      await alice.expectTick(lunch, 'delivered');
      await alice.expectTick(hello, 'delivered');
      await bob.expectUnread(alice, 2);
    });

    await step('read: Bob opens the chat, Alice’s ticks turn to read', async () => {
      await bob.openChatWith(alice);
      await bob.expectMessage(lunch);
      await alice.expectTick(lunch, 'seen');
      await alice.expectTick(hello, 'seen');
    });

    await step('reply: Bob answers from the message menu; both see the quote', async () => {
      await bob.reply(lunch, answer);
      await bob.expectQuote(answer, lunch);
      await alice.expectQuote(answer, lunch);
    });

    await step('reactions: Bob reacts, Alice adds hers by clicking the chip', async () => {
      await bob.react(lunch, THUMBS);
      await alice.expectReaction(lunch, THUMBS, 1, false);
      await alice.reaction(lunch, THUMBS).click();
      await alice.expectReaction(lunch, THUMBS, 2, true);
      await bob.expectReaction(lunch, THUMBS, 2, true);
    });

    await step('edit: Alice corrects her message; Bob sees the new text, marked edited', async () => {
      await alice.edit(hello, helloEdited);
      await bob.expectMessage(helloEdited);
      await bob.message(helloEdited).locator('.edited').waitFor();
      assert.equal(await bob.message(hello).count(), 0, 'the old text is gone');
    });

    await step('delete: Alice takes a message back; Bob sees a tombstone and his quote of it says deleted', async () => {
      await alice.send(oops);
      await bob.expectMessage(oops);
      await bob.reply(oops, puzzled);
      await alice.expectQuote(puzzled, oops);
      await alice.deleteMessage(oops);
      await bob.expectDeleted();
      await bob.expectQuote(puzzled, 'deleted message');
      assert.equal(await bob.message(oops).count(), 0);
      const rows = await t.db.query('SELECT body FROM messages WHERE id = (SELECT reply_to_id FROM messages WHERE body = $1)', [puzzled]);
      assert.deepEqual(rows, [{ body: null }], 'the reply points at a tombstone');
      assert.deepEqual(await t.db.query('SELECT 1 FROM messages WHERE body = $1', [oops]), [], 'its text is gone from the database');
    });

    await step('search: "tieng viet" finds the message with its words marked, and opens it', async () => {
      const results = await bob.search('tieng viet');
      assert.equal(await results.count(), 1);
      assert.deepEqual(await results.first().locator('mark').allTextContents(), ['Tiếng', 'Việt']);
      await results.first().click();
      await bob.page.locator('#messages li.message.found', { hasText: helloEdited }).waitFor();
    });

    await step('groups: Alice makes one with Bob and Carol; read by 1 of 2', async () => {
      await alice.createGroup(`Lunch club ${variant}`, [bob.username, carol.username]);
      await bob.page.locator('#threads button.thread', { hasText: `Lunch club ${variant}` }).waitFor();
      await alice.send('Noon works for everyone?');
      await bob.openThread(`Lunch club ${variant}`);
      await alice.message('Noon works for everyone?').locator('.read-by', { hasText: 'read by 1 of 2' }).waitFor();
      await alice.expectTick('Noon works for everyone?', 'sent');
    });

    await step('delivered, not read: Bob is in the group when Alice writes in the direct chat', async () => {
      await alice.openChatWith(bob);
      await alice.send(away);
      await alice.expectTick(away, 'delivered');
    });

    await step('after both reload, every tick, quote, reaction, edit and tombstone is as it was', async () => {
      await bob.reload();
      await alice.reload();
      await alice.openChatWith(bob);
      await alice.expectTick(helloEdited, 'seen');
      await alice.expectTick(lunch, 'seen');
      await alice.expectTick(away, 'delivered');
      await alice.message(helloEdited).locator('.edited').waitFor();
      await alice.expectReaction(lunch, THUMBS, 2, true);
      await alice.expectQuote(answer, lunch);
      await alice.expectQuote(puzzled, 'deleted message');
      assert.equal(await (await alice.expectDeleted()).count(), 1);
      if (screenshot) {
        await alice.search('tieng viet');
        await alice.menu(away);
        await alice.page.screenshot({ path: screenshot });
      }
      // Bob opens the chat only now: Alice's last message turns read, live.
      await bob.openChatWith(alice);
      await bob.expectTick(answer, 'seen');
      await bob.expectReaction(lunch, THUMBS, 2, true);
      await bob.message(helloEdited).locator('.edited').waitFor();
      await alice.expectTick(away, 'seen');
    });
  } finally {
    await Promise.all([alice.close(), bob.close()]);
  }
}

describe('receipts, replies, reactions, edits, deletions, search and groups on the demo page in Chromium', { skip: chromium.skip }, () => {
  test('over SSE', (c) => runFeatures(c, 'native', 'sse', SCREENSHOT));
  test('over long-poll', (c) => runFeatures(c, 'none', 'long-poll'));
});
