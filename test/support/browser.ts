import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { requireTool } from './required-tool.js';

/**
 * Debian's Chromium, headless, driven by playwright-core (no browser
 * download): the browser tests' and the screenshot script's one way to a
 * page. `npm test` (scripts/prepare-test-env.sh) installs the package.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launches Chromium; throws naming the package when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  requireTool(CHROMIUM_PATH, ['--version'], 'chromium');
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** A fresh context (no storage shared with other tests): UTC, en-US, a desktop viewport. */
export function newContext(browser: Browser, viewport = { width: 1100, height: 900 }): Promise<BrowserContext> {
  return browser.newContext({ timezoneId: 'UTC', locale: 'en-US', viewport, serviceWorkers: 'block' });
}

/** What a page did while watched: every request URL, and the console's CSP reports and errors. */
export interface PageWatch {
  readonly requests: string[];
  readonly problems: string[];
}

/**
 * Records every request `page` makes (and its frames: any origin) and every
 * console error or Content-Security-Policy report, so a test can assert
 * that nothing left the origin and nothing was refused.
 */
export function watchPage(page: Page): PageWatch {
  const watch: PageWatch = { requests: [], problems: [] };
  page.on('request', (request) => watch.requests.push(request.url()));
  page.on('console', (message) => {
    if (message.type() === 'error' || /Content Security Policy/i.test(message.text())) watch.problems.push(message.text());
  });
  page.on('pageerror', (error) => watch.problems.push(`page error: ${error.message}`));
  return watch;
}

/** Default bound of every wait on the DOM in these tests, in ms. */
export const DOM_WAIT_MS = 10_000;
