import type { Browser, BrowserContext, Locator, Page, Request } from 'playwright-core';
import { PASSWORD, uniqueUsername } from '../../support/api.js';
import { newUserContext, type EventSourceVariant } from './browser.js';

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

  /** Open the demo page at `baseUrl` in a new context and register as a new user called `displayName`. */
  static async register(browser: Browser, baseUrl: string, variant: EventSourceVariant, displayName: string): Promise<DemoUser> {
    const context = await newUserContext(browser, variant);
    const page = await context.newPage();
    const user = new DemoUser(context, page, uniqueUsername(displayName.toLowerCase()), displayName);
    await page.goto(`${baseUrl}/`);
    await page.fill('#username', user.username);
    await page.fill('#password', PASSWORD);
    await page.fill('#display-name', displayName);
    await page.click('#register');
    await page.locator('#chat').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    user.id = await page.evaluate(() => (globalThis as unknown as DemoWindow).postlineDemo.client.user!.id);
    // Record every envelope the client emits, to check that none arrives twice.
    await page.evaluate(() => {
      const demo = (globalThis as unknown as DemoWindow).postlineDemo;
      demo.received = [];
      demo.client.on('event', (envelope: { id?: string }) => envelope.id && demo.received!.push(envelope.id));
    });
    return user;
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

  threadButton(other: DemoUser): Locator {
    return this.page.locator('#threads button.thread', { hasText: other.displayName });
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

  message(text: string): Locator {
    return this.page.locator('#messages li.message', { hasText: text });
  }

  async expectMessage(text: string): Promise<void> {
    await this.message(text).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async expectUnread(other: DemoUser, count: number): Promise<void> {
    await this.threadButton(other).locator('.unread', { hasText: String(count) }).waitFor({ timeout: UI_TIMEOUT_MS });
  }

  async expectSeenTick(text: string): Promise<void> {
    await this.message(text).locator('.tick.seen').waitFor({ timeout: UI_TIMEOUT_MS });
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
