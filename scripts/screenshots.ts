/**
 * Regenerates the pages' screenshots in docs/ (docs/images/dashboard.png,
 * operator.png, operator-overview.png) with the browser tests' harness: a
 * gateway on the embedded database in front of a recording upstream, a
 * customer on the `pro` plan with 30 days of ledger history, credits and a
 * window at 80 %, and headless Chromium. `npm run screenshots` runs it.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { upsertUsage } from '../src/db/usage.js';
import { launchChromium, newContext } from '../test/support/browser.js';
import { DASHBOARD_ADMIN_TOKEN, startDashboardGateway } from '../test/support/dashboard-gateway.js';
import { FIXED_NOW_MS } from '../test/support/test-gateway.js';
import { eventuallyAsync } from '../test/support/within.js';
import { buildUi } from './build-ui.js';

const OUT = resolve(import.meta.dirname, '../docs/images');
const DAY_MS = 86_400_000;

async function main(): Promise<void> {
  await buildUi();
  mkdirSync(OUT, { recursive: true });
  const dash = await startDashboardGateway();
  const browser = await launchChromium();
  try {
    const key = await dash.customer('acme', 'pro');
    await dash.customer('globex', 'scale');
    await dash.customer('initech', 'pro');
    await dash.admin('POST', '/admin/subjects/acme/credits', { metric: 'search', amount: 250, reason: 'launch offer' });
    // The 30 days before today, as the flusher would have left them: a weekly rhythm.
    const today = Math.floor(FIXED_NOW_MS / DAY_MS) * DAY_MS;
    const days = Array.from({ length: 30 }, (_, at) => {
      const start = today - (30 - at) * DAY_MS;
      const weekday = new Date(start).getUTCDay();
      const base = weekday === 0 || weekday === 6 ? 60 : 150;
      return { subjectId: 'acme', counterId: 'w:day', periodStart: new Date(start), count: base + ((at * 37) % 70) };
    });
    await upsertUsage(dash.gw.gateway.databases!.primary, days);
    // Today: 8 of the hour's 10 requests (80 %), 6 of them searches.
    for (let i = 0; i < 2; i++) await dash.send('/api/items', key);
    for (let i = 0; i < 6; i++) await dash.send('/search?q=x', key);
    await eventuallyAsync(
      async () => {
        const history = await dash.admin<{ items: Array<{ period_start: string; used: number }> }>('GET', '/admin/subjects/acme/usage/history?granularity=day');
        return history.body.items.some((item) => Date.parse(item.period_start) === today && item.used === 8);
      },
      10_000,
      "today's usage in the ledger",
    );

    const customer = await newContext(browser, { width: 1000, height: 1180 });
    const page = await customer.newPage();
    await page.goto(`${dash.gw.proxyUrl}/_quotagate/dashboard`);
    await page.fill('#api-key', key);
    await page.click('#sign-in button[type=submit]');
    await page.waitForSelector('.history-chart canvas');
    await page.waitForTimeout(300);
    await page.screenshot({ path: resolve(OUT, 'dashboard.png'), fullPage: true });

    const operator = await newContext(browser, { width: 1200, height: 1000 });
    const admin = await operator.newPage();
    await admin.goto(`${dash.gw.adminUrl}/admin/ui`);
    await admin.fill('#admin-token', DASHBOARD_ADMIN_TOKEN);
    await admin.click('#sign-in button[type=submit]');
    await admin.waitForSelector('#subjects');
    await admin.waitForSelector('#panel-events[data-state]');
    await admin.screenshot({ path: resolve(OUT, 'operator-overview.png'), fullPage: true });
    await admin.click('a.subject-link:text("acme")');
    await admin.waitForSelector('#keys');
    await admin.fill('#new-key-name', 'ci');
    await admin.click('#create-key-button');
    await admin.waitForSelector('#new-key-value');
    await admin.waitForSelector('.history-chart canvas');
    await admin.waitForTimeout(300);
    await admin.screenshot({ path: resolve(OUT, 'operator.png'), fullPage: true });
    process.stdout.write(`screenshots: ${OUT}/dashboard.png, operator.png, operator-overview.png\n`);
  } finally {
    await browser.close();
    await dash.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`screenshots: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
