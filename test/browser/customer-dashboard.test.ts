/**
 * The customer dashboard (`/_quotagate/dashboard`) in headless Chromium,
 * against a real gateway (embedded database, memory store) in front of a
 * recording upstream: sign-in, the bars against `/_quotagate/usage`, a bar
 * moving after requests, the 80 % warning, a refused key, and the page's
 * security headers and origins.
 */
import type { Browser, Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_CONTENT_SECURITY_POLICY } from '../../src/http/ui/ui-page.js';
import { DOM_WAIT_MS, launchChromium, newContext, watchPage } from '../support/browser.js';
import { startDashboardGateway, type DashboardGateway } from '../support/dashboard-gateway.js';
import { UNKNOWN_KEY } from '../support/test-keys.js';

interface PolicyUsage {
  name: string;
  limit: number;
  used: number;
  percent: number;
}

let dash: DashboardGateway;
let browser: Browser;
let key: string;

beforeAll(async () => {
  [dash, browser] = await Promise.all([startDashboardGateway(), launchChromium()]);
  key = await dash.customer('acme', 'pro');
});

afterAll(async () => {
  await browser?.close();
  await dash?.close();
});

/** `/_quotagate/usage` as the key's owner reads it. */
async function usageOf(apiKey: string): Promise<{ plan: string; policies: PolicyUsage[] }> {
  const res = await request(`${dash.gw.proxyUrl}/_quotagate/usage`, { headers: { 'x-api-key': apiKey } });
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as { plan: string; policies: PolicyUsage[] };
}

/** Opens the dashboard in a fresh context and signs in with `apiKey`. */
async function signIn(apiKey: string): Promise<Page> {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${dash.gw.proxyUrl}/_quotagate/dashboard`);
  await page.fill('#api-key', apiKey);
  await page.click('#sign-in button[type=submit]');
  return page;
}

/** The numbers a bar shows: used, limit (thousands separators removed) and percent. */
async function barOf(page: Page, policy: string): Promise<{ used: number; limit: number; percent: number }> {
  const bar = page.locator(`.usage-bar[data-policy="${policy}"]`);
  const number = async (selector: string) => Number((await bar.locator(selector).innerText()).replace(/[^0-9.]/g, ''));
  return { used: await number('.usage-used'), limit: await number('.usage-limit'), percent: await number('.usage-percent') };
}

/** Sends `count` requests through the gateway with the key; each must be admitted. */
async function spend(count: number): Promise<void> {
  for (let i = 0; i < count; i++) expect((await dash.send('/api/items', key)).status).toBe(200);
}

describe('the customer dashboard', () => {
  it('signs in with a key and shows a bar per window and quota, matching /_quotagate/usage', async () => {
    await spend(2);
    const page = await signIn(key);
    await page.locator('#limits .usage-bar').first().waitFor({ timeout: DOM_WAIT_MS });
    const usage = await usageOf(key);
    expect(usage.policies.map((policy) => policy.name)).toEqual(['hour', 'day', 'search.month']);
    expect(await page.locator('#limits .usage-bar').count()).toBe(usage.policies.length);
    for (const policy of usage.policies) {
      const bar = await barOf(page, policy.name);
      expect(bar).toEqual({ used: policy.used, limit: policy.limit, percent: Math.round(policy.percent * 10) / 10 });
    }
    expect(await barOf(page, 'hour')).toEqual({ used: 2, limit: 10, percent: 20 });
    expect(await page.locator('#plan-name').innerText()).toBe('Pro');
    expect(await page.locator('#upgrade').getAttribute('href')).toBe('https://example.com/pricing?from=pro');
    // The key is in this tab's sessionStorage only: a reload stays signed in, Sign out forgets it.
    expect(await page.evaluate('JSON.stringify(sessionStorage)')).toBe(JSON.stringify({ 'quotagate.dashboard.api_key': key }));
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(page.url()).toBe(`${dash.gw.proxyUrl}/_quotagate/dashboard`);
    await page.reload();
    await page.locator('#limits .usage-bar').first().waitFor({ timeout: DOM_WAIT_MS });
    await page.click('#sign-out');
    await page.locator('#api-key').waitFor({ timeout: DOM_WAIT_MS });
    expect(await page.evaluate('JSON.stringify(sessionStorage)')).toBe('{}');
    await page.context().close();
  });

  it('moves a bar after requests through the gateway, on Refresh', async () => {
    const page = await signIn(key);
    await page.locator('.usage-bar[data-policy="hour"]').waitFor({ timeout: DOM_WAIT_MS });
    const before = (await barOf(page, 'hour')).used;
    await spend(3);
    await page.click('#refresh');
    await expect
      .poll(async () => (await barOf(page, 'hour')).used, { timeout: DOM_WAIT_MS, interval: 50 })
      .toBe(before + 3);
    expect((await usageOf(key)).policies.find((policy) => policy.name === 'hour')?.used).toBe(before + 3);
    await page.context().close();
  });

  it('warns once a window reaches 80 %', async () => {
    const page = await signIn(key);
    const hour = page.locator('.usage-bar[data-policy="hour"]');
    await hour.waitFor({ timeout: DOM_WAIT_MS });
    const used = (await barOf(page, 'hour')).used;
    expect(used).toBeLessThan(8);
    expect(await hour.getAttribute('class')).toContain('level-ok');
    expect(await hour.locator('.usage-warning').count()).toBe(0);
    await spend(8 - used);
    await page.click('#refresh');
    await expect.poll(async () => hour.getAttribute('class'), { timeout: DOM_WAIT_MS, interval: 50 }).toContain('level-warning');
    expect(await barOf(page, 'hour')).toEqual({ used: 8, limit: 10, percent: 80 });
    expect(await hour.locator('.usage-warning').innerText()).toBe('Over 80 % of this limit is used.');
    // The other windows are below 80 %: no warning there.
    expect(await page.locator('.usage-bar[data-policy="day"]').getAttribute('class')).toContain('level-ok');
    expect(await page.locator('#upgrade').innerText()).toBe('Running low? Upgrade your plan');
    await page.context().close();
  });

  it('warns more strongly at 95 %, and says so when the limit is reached', async () => {
    // A subject of its own, its hour window overridden to 20 so that 19 requests are 95 %.
    const other = await dash.customer('beta', 'pro');
    expect((await dash.admin('PUT', '/admin/subjects/beta/overrides', { overrides: { limits: { hour: 20 } } })).status).toBe(200);
    for (let i = 0; i < 19; i++) expect((await dash.send('/api/items', other)).status).toBe(200);
    const page = await signIn(other);
    const hour = page.locator('.usage-bar[data-policy="hour"]');
    await hour.waitFor({ timeout: DOM_WAIT_MS });
    expect(await barOf(page, 'hour')).toEqual({ used: 19, limit: 20, percent: 95 });
    expect(await hour.getAttribute('class')).toContain('level-critical');
    expect(await hour.locator('.usage-warning').innerText()).toBe('Over 95 % of this limit is used: requests will soon be refused.');
    expect((await dash.send('/api/items', other)).status).toBe(200);
    expect((await dash.send('/api/items', other)).code).toBe('rate_limited');
    await page.click('#refresh');
    await expect.poll(async () => hour.getAttribute('class'), { timeout: DOM_WAIT_MS, interval: 50 }).toContain('level-exhausted');
    expect(await barOf(page, 'hour')).toEqual({ used: 20, limit: 20, percent: 100 });
    expect(await hour.locator('.usage-warning').innerText()).toBe('This limit is reached: requests are refused until it resets.');
    await page.context().close();
  });

  it('refuses a wrong key with the reason, and keeps nothing', async () => {
    const page = await signIn(UNKNOWN_KEY);
    const error = page.locator('#sign-in-error');
    await error.waitFor({ timeout: DOM_WAIT_MS });
    expect(await error.innerText()).toMatch(/^This key was not accepted: .+ \(invalid_api_key\)$/);
    expect(await page.locator('#limits').count()).toBe(0);
    expect(await page.evaluate('JSON.stringify(sessionStorage)')).toBe('{}');
    await page.context().close();
  });

  it('serves every answer with the CSP and security headers, sends the key only as a header, and reaches no other origin', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    const watch = watchPage(page);
    const answers: Array<{ url: string; status: number; headers: Record<string, string> }> = [];
    page.on('response', (response) => answers.push({ url: response.url(), status: response.status(), headers: response.headers() }));
    const sentKeys: Array<string | undefined> = [];
    page.on('request', (req) => sentKeys.push(req.headers()['x-api-key']));
    await page.goto(`${dash.gw.proxyUrl}/_quotagate/dashboard`);
    await page.fill('#api-key', key);
    await page.click('#sign-in button[type=submit]');
    await page.locator('#history .history-chart').waitFor({ timeout: DOM_WAIT_MS });

    const origin = new URL(dash.gw.proxyUrl).origin;
    expect(watch.requests.length).toBeGreaterThanOrEqual(6);
    expect(watch.requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    expect(watch.requests.filter((url) => url.includes(key))).toEqual([]);
    expect(watch.problems).toEqual([]);
    const pageAnswers = answers.filter((answer) => new URL(answer.url).pathname.startsWith('/_quotagate/dashboard'));
    expect(pageAnswers.map((answer) => new URL(answer.url).pathname)).toEqual([
      '/_quotagate/dashboard',
      expect.stringMatching(/^\/_quotagate\/dashboard\/assets\/customer-\w+\.css$/),
      expect.stringMatching(/^\/_quotagate\/dashboard\/assets\/customer-\w+\.js$/),
    ]);
    for (const answer of pageAnswers) {
      expect(answer.status).toBe(200);
      expect(answer.headers['content-security-policy']).toBe(UI_CONTENT_SECURITY_POLICY);
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['referrer-policy']).toBe('no-referrer');
    }
    // The API calls carried the key as X-API-Key (the plan catalogue needs none); no cookie was set.
    const apiCalls = answers.filter((answer) => /^\/_quotagate\/usage/.test(new URL(answer.url).pathname));
    expect(apiCalls.map((answer) => [new URL(answer.url).pathname, answer.status])).toEqual([
      ['/_quotagate/usage', 200],
      ['/_quotagate/usage/history', 200],
    ]);
    expect(sentKeys.filter((sent) => sent !== undefined)).toEqual([key, key]);
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });
});
