import type { Browser, BrowserContext, Locator, Page, Request } from 'playwright-core';
import request from 'supertest';
import { bearer, PASSWORD, uniqueUsername, type TestUser } from '../../support/api.js';
import { newUserContext, type ContextOptions, type EventSourceVariant } from './browser.js';

/** How long a UI expectation may take before the test fails. */
const UI_TIMEOUT_MS = 15_000;

export type TransportName = 'sse' | 'long-poll';

/** The two delivery endpoints, as a route pattern. */
const DELIVERY = /\/v1\/(events|poll)(\?|$)/;

/** A URL of one of the two delivery endpoints. */
export const isDeliveryUrl = (url: string) => DELIVERY.test(url);

/**
 * One person on the demo page, in their own browser context. Its methods act as a user would
 * (filling forms, clicking) and its expectations wait for what the page shows.
 */
export class DemoUser {
  /** Every request the page sent, in order (to check resume points and clientIds). */
  readonly requests: Request[] = [];
  id = '';

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    readonly username: string,
    readonly displayName: string,
  ) {
    page.on('request', (request) => this.requests.push(request));
    page.on('pageerror', (error) => process.stderr.write(`[${displayName}'s page] ${error.message}\n`));
  }

  /**
   * Open the demo page at `baseUrl` in a new context and register as a new user called
   * `displayName` (its username: `usernamePrefix`, default the display name, and a random tail).
   */
  static async register(
    browser: Browser,
    baseUrl: string,
    variant: EventSourceVariant,
    displayName: string,
    usernamePrefix = displayName.toLowerCase(),
    options: ContextOptions = {},
  ): Promise<DemoUser> {
    const context = await newUserContext(browser, variant, options);
    const page = await context.newPage();
    const user = new DemoUser(context, page, uniqueUsername(usernamePrefix), displayName);
    await page.goto(`${baseUrl}/`);
    await page.fill('#username', user.username);
    await page.fill('#password', PASSWORD);
    await page.fill('#display-name', displayName);
    await page.click('#register');
    await user.signedIn();
    return user;
  }

  /** Reload the page (the session cookie signs it in again, no form) and wait for the thread list. */
  async reload(): Promise<void> {
    await this.page.reload();
    await this.signedIn();
    await this.page.locator('#threads button.thread').first().waitFor({ timeout: UI_TIMEOUT_MS });
  }

  /** Another tab of this user's browser, signed in by the session cookie. */
  async newTab(): Promise<Page> {
    const page = await this.context.newPage();
    page.on('pageerror', (error) => process.stderr.write(`[${this.displayName}'s tab] ${error.message}\n`));
    await page.goto(this.page.url());
    await page.locator('#chat').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    return page;
  }

  async signedIn(): Promise<void> {
    await this.page.locator('#chat').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    this.id = await this.page.evaluate(() => (globalThis as unknown as DemoWindow).postlineDemo.client.user!.id);
    // Record every envelope the client emits, to check that none arrives twice.
    await this.page.evaluate(() => {
      const demo = (globalThis as unknown as DemoWindow).postlineDemo;
      demo.received = [];
      demo.client.on('event', (envelope: { id?: string }) => envelope.id && demo.received!.push(envelope.id));
    });
  }

  /** Wait until the transport badge shows `transport` and an open connection. */
  async expectTransport(transport: TransportName, timeoutMs = UI_TIMEOUT_MS): Promise<void> {
    await this.page.locator(`#transport[data-transport="${transport}"][data-state="open"]`).waitFor({ timeout: timeoutMs });
  }

  async startChatWith(other: DemoUser): Promise<void> {
    await this.page.fill('#new-chat-username', other.username);
    await this.page.click('#new-chat button[type="submit"]');
    await this.page.locator('#conversation-title', { hasText: other.displayName }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  /** The conversation named `name` in the list (by its name, not its last message's preview). */
  threadNamed(name: string): Locator {
    return this.page.locator('#threads button.thread', { has: this.page.locator('.name', { hasText: name }) });
  }

  threadButton(other: DemoUser): Locator {
    return this.threadNamed(other.displayName);
  }

  /** The request from `other` (their new chat with us, listed apart until we accept it). */
  requestButton(other: DemoUser): Locator {
    return this.page.locator('#requests button.thread', { hasText: other.displayName });
  }

  /**
   * A direct thread that `owner` (an API user) starts with us, accepted from our page with its
   * cookie session (we are strangers, so it is a request until then). Returns its id.
   */
  async acceptThreadFrom(baseUrl: string, owner: TestUser): Promise<string> {
    const res = await request(baseUrl).post('/v1/threads').set(bearer(owner)).send({ members: [this.id] }).expect(201);
    const threadId = res.body.thread.id as string;
    const status = await this.page.evaluate(
      async (path) => (await fetch(path, { method: 'POST', headers: { 'Postline-Session': 'cookie' } })).status,
      `${baseUrl}/v1/threads/${threadId}/accept`,
    );
    if (status !== 200) throw new Error(`accept thread ${threadId}: ${status}`);
    return threadId;
  }

  /** Accept `other`'s request: their chat moves to the conversations. */
  async acceptRequestFrom(other: DemoUser): Promise<void> {
    await this.requestButton(other).waitFor({ timeout: UI_TIMEOUT_MS });
    const request = this.page.locator('#requests li', { has: this.page.locator('button.thread', { hasText: other.displayName }) });
    await request.getByRole('button', { name: 'Accept' }).click();
    await this.threadButton(other).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async openChatWith(other: DemoUser): Promise<void> {
    await this.threadButton(other).click();
    await this.page.locator('#conversation-title', { hasText: other.displayName }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async send(text: string): Promise<void> {
    await this.page.fill('#message-input', text);
    await this.page.click('#composer button[type="submit"]');
  }

  /** Type into the message box without sending (the page reports typing). */
  async typeSome(text: string): Promise<void> {
    await this.page.locator('#message-input').pressSequentially(text);
  }

  /** The message whose own text (not a quote of another) holds `text`. */
  message(text: string): Locator {
    return this.page.locator('#messages li.message', { has: this.page.locator(':scope > .body', { hasText: text }) });
  }

  async expectMessage(text: string): Promise<void> {
    await this.message(text).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async expectUnread(other: DemoUser, count: number): Promise<void> {
    await this.threadButton(other).locator('.unread', { hasText: String(count) }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async expectSeenTick(text: string): Promise<void> {
    await this.expectTick(text, 'seen');
  }

  /** Wait until our message `text` shows ✓ sent, ✓✓ delivered or ✓✓ read (`seen`). */
  async expectTick(text: string, state: 'sent' | 'delivered' | 'seen'): Promise<void> {
    await this.message(text).locator(`.tick.${state}`).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  /** Find `other` by a name in "Start a chat" and pick them from the people found. */
  async startChatByName(name: string, other: DemoUser): Promise<void> {
    await this.page.fill('#new-chat-username', name);
    await this.page.locator(`#people button[data-user-id="${other.id}"]`).click({ timeout: UI_TIMEOUT_MS });
    await this.page.locator('#conversation-title', { hasText: other.displayName }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async createGroup(title: string, members: string[]): Promise<void> {
    await this.page.fill('#group-title', title);
    await this.page.fill('#group-members', members.join(', '));
    await this.page.click('#new-group button[type="submit"]');
    await this.page.locator('#conversation-title', { hasText: title }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async openThread(name: string): Promise<void> {
    await this.threadNamed(name).click();
    await this.page.locator('#conversation-title', { hasText: name }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  /** Open the menu of message `text`. */
  async menu(text: string): Promise<Locator> {
    const message = this.message(text);
    await message.locator('.menu-toggle').click();
    return message.locator('.menu');
  }

  /** Click `action` (Reply, Edit or Delete) in the menu of message `text`. */
  async fromMenu(text: string, action: 'Reply' | 'Edit' | 'Delete'): Promise<void> {
    await (await this.menu(text)).getByRole('button', { name: action, exact: true }).click();
  }

  /** React with `emoji` from the menu of message `text`. */
  async react(text: string, emoji: string): Promise<void> {
    await (await this.menu(text)).locator(`button[data-emoji="${emoji}"]`).click();
  }

  async reply(text: string, body: string): Promise<void> {
    await this.fromMenu(text, 'Reply');
    await this.page.locator('#composer-context', { hasText: 'Replying to' }).waitFor({ timeout: UI_TIMEOUT_MS });
    await this.send(body);
  }

  async edit(text: string, body: string): Promise<void> {
    await this.fromMenu(text, 'Edit');
    await this.send(body);
  }

  async deleteMessage(text: string): Promise<void> {
    this.page.once('dialog', (dialog) => void dialog.accept());
    await this.fromMenu(text, 'Delete');
  }

  /** Our reaction chip `emoji` on message `text` (clicking it takes ours back or adds it). */
  reaction(text: string, emoji: string): Locator {
    return this.message(text).locator(`.reactions button[data-emoji="${emoji}"]`);
  }

  async expectReaction(text: string, emoji: string, count: number, mine: boolean): Promise<void> {
    await this.message(text).locator(`.reactions button[data-emoji="${emoji}"][aria-pressed="${mine}"]`, { hasText: `${emoji} ${count}` }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async expectQuote(text: string, quoted: string): Promise<void> {
    await this.message(text).locator('.quote .quote-text', { hasText: quoted }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async expectDeleted(): Promise<Locator> {
    const tombstone = this.page.locator('#messages li.message.deleted');
    await tombstone.first().waitFor({ timeout: UI_TIMEOUT_MS });
    return tombstone;
  }

  /** Search the messages; the results list. */
  async search(query: string): Promise<Locator> {
    await this.page.fill('#search-input', query);
    await this.page.click('#search button[type="submit"]');
    const results = this.page.locator('#search-results button.search-result');
    await results.first().waitFor({ timeout: UI_TIMEOUT_MS });
    return results;
  }

  async expectPresence(other: DemoUser, online: boolean, timeoutMs = UI_TIMEOUT_MS): Promise<void> {
    await this.page.locator(`#threads .presence[data-user-id="${other.id}"][data-online="${online}"]`).waitFor({ timeout: timeoutMs });
  }

  async expectTyping(other: DemoUser): Promise<void> {
    await this.page.locator('#typing', { hasText: `${other.displayName} is typing` }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async expectNoTyping(timeoutMs = UI_TIMEOUT_MS): Promise<void> {
    await this.page.locator('#typing:empty').waitFor({ state: 'attached', timeout: timeoutMs });
  }

  /**
   * Disconnect the page: hold back its delivery requests, run `cut` (which must end its stream or
   * poll on the server), and wait until a reconnect has failed. {@link reconnect} ends it.
   */
  async cutOff(cut: () => unknown): Promise<void> {
    await this.page.route(DELIVERY, (route) => route.abort());
    const reconnectFailed = this.page.waitForEvent('requestfailed', { predicate: (request) => isDeliveryUrl(request.url()) });
    await cut();
    await reconnectFailed;
  }

  async reconnect(): Promise<void> {
    await this.page.unroute(DELIVERY);
  }

  /** The client's resume point right now. */
  lastEventId(): Promise<string | null> {
    return this.page.evaluate(() => (globalThis as unknown as DemoWindow).postlineDemo.client.lastEventId);
  }

  /** Ids of the durable events the client emitted, in order. */
  receivedIds(): Promise<string[]> {
    return this.page.evaluate(() => (globalThis as unknown as DemoWindow).postlineDemo.received!);
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

/** What the demo page exposes on window (and what the tests add to it). */
interface DemoWindow {
  postlineDemo: {
    client: { user: { id: string } | null; lastEventId: string | null; on(type: string, listener: (envelope: { id?: string }) => void): void };
    received?: string[];
  };
}
