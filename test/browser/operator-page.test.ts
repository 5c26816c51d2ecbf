/**
 * The operator page (`/admin/ui` on the admin listener) in headless
 * Chromium, against a real gateway (embedded database, memory store) in
 * front of a recording upstream: the shell loads without a token, a wrong
 * token is refused, a created key is shown once and works, a revoked key
 * stops working (401 `key_revoked`), the operator views' panels, and the
 * page's security headers and origins.
 */
import type { Browser, Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_CONTENT_SECURITY_POLICY } from '../../src/http/ui/ui-page.js';
import { DOM_WAIT_MS, launchChromium, newContext, watchPage } from '../support/browser.js';
import { DASHBOARD_ADMIN_TOKEN, startDashboardGateway, type DashboardGateway } from '../support/dashboard-gateway.js';

let dash: DashboardGateway;
let browser: Browser;

beforeAll(async () => {
  [dash, browser] = await Promise.all([startDashboardGateway(), launchChromium()]);
  await dash.customer('acme', 'pro');
});

afterAll(async () => {
  await browser?.close();
  await dash?.close();
});

/** Opens the operator page in a fresh context and signs in with `token`. */
async function signIn(token: string): Promise<Page> {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(`${dash.gw.adminUrl}/admin/ui`);
  await page.fill('#admin-token', token);
  await page.click('#sign-in button[type=submit]');
  return page;
}

describe('the operator page', () => {
  it('loads without a token, asking for one, and refuses a wrong token', async () => {
    const res = await request(`${dash.gw.adminUrl}/admin/ui`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    await res.body.text();
    const page = await signIn('not-the-admin-token');
    const error = page.locator('#sign-in-error');
    await error.waitFor({ timeout: DOM_WAIT_MS });
    expect(await error.innerText()).toMatch(/\(admin_unauthorized\)$/);
    expect(await page.evaluate('JSON.stringify(sessionStorage)')).toBe('{}');
    await page.context().close();
  });

  it('creates a key and shows it once; the key works until the page revokes it, then gets 401 key_revoked', async () => {
    const page = await signIn(DASHBOARD_ADMIN_TOKEN);
    await page.locator('#subjects a.subject-link', { hasText: 'acme' }).click();
    await page.locator('#keys').waitFor({ timeout: DOM_WAIT_MS });
    await page.fill('#new-key-name', 'browser-test');
    await page.click('#create-key-button');
    const shown = page.locator('#new-key-value');
    await shown.waitFor({ timeout: DOM_WAIT_MS });
    const plain = await shown.innerText();
    expect(plain).toMatch(/^qg_[A-Za-z0-9]{22}_[A-Za-z0-9]{6}$/);
    expect(await page.locator('#new-key').innerText()).toContain('it will not be shown again');
    expect(await dash.send('/api/items', plain)).toEqual({ status: 200, code: undefined });

    // The key row, by the id the admin API gave it.
    const keys = await dash.admin<{ items: Array<{ id: string; name: string | null }> }>('GET', '/admin/subjects/acme/keys');
    const created = keys.body.items.find((item) => item.name === 'browser-test')!;
    const row = page.locator(`#keys tr[data-key-id="${created.id}"]`);
    await expect.poll(() => row.getAttribute('data-state'), { timeout: DOM_WAIT_MS }).toBe('active');

    // Reloading (still signed in: the token is in sessionStorage) shows the subject again, without the plain key.
    await page.reload();
    await page.locator(`#keys tr[data-key-id="${created.id}"]`).waitFor({ timeout: DOM_WAIT_MS });
    expect(await page.locator('#new-key').count()).toBe(0);
    expect(await page.content()).not.toContain(plain);
    // Away and back: still not shown.
    await page.click('#back');
    await page.locator('#subjects').waitFor({ timeout: DOM_WAIT_MS });
    await page.goBack();
    await page.locator(`#keys tr[data-key-id="${created.id}"]`).waitFor({ timeout: DOM_WAIT_MS });
    expect(await page.content()).not.toContain(plain);

    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator(`#keys tr[data-key-id="${created.id}"] button.revoke`).click();
    await expect.poll(() => page.locator(`#keys tr[data-key-id="${created.id}"]`).getAttribute('data-state'), { timeout: DOM_WAIT_MS }).toBe('revoked');
    expect(await dash.send('/api/items', plain)).toEqual({ status: 401, code: 'key_revoked' });
    await page.context().close();
  });

  it('rotates a key: the new plain key is shown once and works, the old one is refused', async () => {
    const old = await dash.admin<{ id: string; key: string }>('POST', '/admin/subjects/acme/keys', { name: 'to-rotate' });
    expect(old.status).toBe(201);
    const page = await signIn(DASHBOARD_ADMIN_TOKEN);
    await page.goto(`${dash.gw.adminUrl}/admin/ui#subject=acme`);
    const row = page.locator(`#keys tr[data-key-id="${old.body.id}"]`);
    await row.waitFor({ timeout: DOM_WAIT_MS });
    page.once('dialog', (dialog) => void dialog.accept());
    await row.locator('button.rotate').click();
    const shown = page.locator('#new-key-value');
    await shown.waitFor({ timeout: DOM_WAIT_MS });
    const plain = await shown.innerText();
    expect(plain).not.toBe(old.body.key);
    expect(await dash.send('/api/items', plain)).toEqual({ status: 200, code: undefined });
    expect(await dash.send('/api/items', old.body.key)).toEqual({ status: 401, code: 'key_expired' });
    await page.reload();
    await page.locator('#keys').waitFor({ timeout: DOM_WAIT_MS });
    expect(await page.content()).not.toContain(plain);
    await page.context().close();
  });

  it("grants credits, saves and removes overrides, and resets a subject's usage", async () => {
    const key = await dash.customer('initech', 'pro');
    for (let i = 0; i < 3; i++) expect((await dash.send('/search', key)).status).toBe(200);
    const page = await signIn(DASHBOARD_ADMIN_TOKEN);
    await page.goto(`${dash.gw.adminUrl}/admin/ui#subject=initech`);
    const hour = page.locator('#usage .usage-bar[data-policy="hour"]');
    await hour.waitFor({ timeout: DOM_WAIT_MS });
    expect(await hour.locator('.usage-used').innerText()).toBe('3');

    await page.fill('#credit-metric', 'search');
    await page.fill('#credit-amount', '25');
    await page.fill('#credit-reason', 'browser test');
    await page.click('#grant-credits button[type=submit]');
    await expect.poll(() => page.locator('#credits-card .outcome').innerText(), { timeout: DOM_WAIT_MS }).toBe('Granted 25 search credits.');
    await expect.poll(() => page.locator('#usage .credits li[data-metric="search"] .credit-balance').innerText(), { timeout: DOM_WAIT_MS }).toBe('25 credits left');

    await page.fill('#overrides', '{"limits": {"hour": 50');
    await page.click('#overrides-form button[type=submit]');
    await expect.poll(() => page.locator('#overrides-card .outcome').innerText(), { timeout: DOM_WAIT_MS }).toMatch(/^Not valid JSON/);
    await page.fill('#overrides', '{"limits": {"hour": 50}}');
    await page.click('#overrides-form button[type=submit]');
    await expect.poll(() => page.locator('#overrides-card .outcome').innerText(), { timeout: DOM_WAIT_MS }).toBe('Overrides saved.');
    expect((await dash.admin<{ overrides: unknown }>('GET', '/admin/subjects/initech')).body.overrides).toEqual({ limits: { hour: 50 } });
    await page.click('#refresh-usage');
    await expect.poll(() => hour.locator('.usage-limit').innerText(), { timeout: DOM_WAIT_MS }).toBe('50');
    await page.locator('#overrides-form button', { hasText: 'Remove' }).click();
    await expect.poll(() => page.locator('#overrides-card .outcome').innerText(), { timeout: DOM_WAIT_MS }).toBe('Overrides removed: the plan applies.');
    expect((await dash.admin<{ overrides: unknown }>('GET', '/admin/subjects/initech')).body.overrides).toBeNull();

    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('#reset-usage');
    await expect.poll(() => hour.locator('.usage-used').innerText(), { timeout: DOM_WAIT_MS }).toBe('0');
    expect(await page.locator('#usage .outcome').innerText()).toMatch(/^Reset: .*hour/);
    expect((await dash.admin<{ policies: Array<{ name: string; used: number }> }>('GET', '/admin/subjects/initech/usage')).body.policies.map((p) => p.used)).toEqual([0, 0, 0]);
    await page.context().close();
  });

  it("shows each operator view's items, or \"not available\" where the gateway has no such endpoint", async () => {
    const page = await signIn(DASHBOARD_ADMIN_TOKEN);
    const panels = {
      'near-limits': '/admin/views/near-limits?threshold=80',
      'top-consumers': '/admin/views/top-consumers?period=current',
      denials: '/admin/views/denials?window=1h',
      events: '/admin/events',
    };
    for (const [panel, path] of Object.entries(panels)) {
      const { status } = await dash.admin('GET', path);
      const section = page.locator(`#panel-${panel}`);
      await expect.poll(() => section.getAttribute('data-state'), { timeout: DOM_WAIT_MS }).toBe(status === 404 ? 'not-available' : 'ready');
      if (status === 404) expect(await section.locator('.not-available').innerText()).toBe('Not available on this gateway.');
    }
    // The rest of the page works: the subjects are listed.
    expect(await page.locator('#subjects tr[data-subject="acme"]').count()).toBe(1);
    await page.context().close();
  });

  it('serves every answer with the CSP and security headers, sends the token only as a header, and reaches no other origin', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    const watch = watchPage(page);
    const answers: Array<{ url: string; status: number; headers: Record<string, string> }> = [];
    page.on('response', (response) => answers.push({ url: response.url(), status: response.status(), headers: response.headers() }));
    await page.goto(`${dash.gw.adminUrl}/admin/ui#subject=acme`);
    await page.fill('#admin-token', DASHBOARD_ADMIN_TOKEN);
    await page.click('#sign-in button[type=submit]');
    await page.locator('#history .history-chart').waitFor({ timeout: DOM_WAIT_MS });
    await page.locator('#keys').waitFor({ timeout: DOM_WAIT_MS });

    const origin = new URL(dash.gw.adminUrl).origin;
    expect(watch.requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    expect(watch.requests.filter((url) => url.includes(DASHBOARD_ADMIN_TOKEN))).toEqual([]);
    // 404s of operator views the gateway lacks are logged by Chromium as failed loads, and are expected.
    expect(watch.problems.filter((problem) => !/status of 404/.test(problem))).toEqual([]);
    const pageAnswers = answers.filter((answer) => new URL(answer.url).pathname.startsWith('/admin/ui'));
    expect(pageAnswers.map((answer) => new URL(answer.url).pathname)).toEqual([
      '/admin/ui',
      expect.stringMatching(/^\/admin\/ui\/assets\/operator-\w+\.css$/),
      expect.stringMatching(/^\/admin\/ui\/assets\/operator-\w+\.js$/),
    ]);
    for (const answer of pageAnswers) {
      expect(answer.status).toBe(200);
      expect(answer.headers['content-security-policy']).toBe(UI_CONTENT_SECURITY_POLICY);
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['referrer-policy']).toBe('no-referrer');
    }
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });
});
