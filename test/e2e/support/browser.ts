import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before } from 'node:test';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { requireProgram } from './programs.js';

/** Flags that let Debian's Chromium run headless in a container, without talking to Google. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launch the system Chromium (playwright gives it a fresh temporary --user-data-dir). */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS });
}

/**
 * Register hooks that launch the system Chromium before the file's tests and close it after.
 * `skip` is node:test's skip reason when Chromium is missing (and skipping is allowed).
 */
export function useChromium(): { skip: string | false; browser: Browser } {
  const program = requireProgram('chromium', 'chromium');
  const handle = { skip: program.skip, browser: undefined as unknown as Browser };
  before(async () => {
    if (!program.skip) handle.browser = await launchChromium(program.path);
  });
  after(async () => {
    await handle.browser?.close();
  });
  return handle;
}

/**
 * How a page gets its EventSource: the browser's own, none at all (the client long-polls), or
 * event-source-polyfill installed in its place before any page script runs.
 */
export type EventSourceVariant = 'native' | 'none' | 'polyfill';

const polyfillSource = () => readFileSync(createRequire(import.meta.url).resolve('event-source-polyfill'), 'utf8');

/** Page settings for a context: its viewport, time zone, scripts run before the page's own. */
export interface ContextOptions {
  viewport?: { width: number; height: number };
  timezoneId?: string;
  /** Run before any page script (say, `delete window.BroadcastChannel` for an old browser's tabs). */
  initScript?: string;
}

/** A fresh browser context (its own cookies: one user) whose pages get `variant`'s EventSource. */
export async function newUserContext(browser: Browser, variant: EventSourceVariant, options: ContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1000, height: 640 }, ...(options.timezoneId && { timezoneId: options.timezoneId }) });
  if (options.initScript) await context.addInitScript({ content: options.initScript });
  // Init scripts run before the page's own scripts, and CSP does not apply to them.
  if (variant === 'none') await context.addInitScript({ content: 'delete window.EventSource;' });
  if (variant === 'polyfill') await context.addInitScript({ content: `delete window.EventSource;\n${polyfillSource()}` });
  return context;
}
