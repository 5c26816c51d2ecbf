/**
 * The pages as the listeners serve them, over plain HTTP (no browser): the
 * built bundle (this project's global setup builds dist/ui), revalidation,
 * HEAD, files that are not the page's, and `dashboard.enabled: false` /
 * `dashboard.operator_page: false`, with which the paths are not the
 * gateway's own any more.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_CONTENT_SECURITY_POLICY } from '../../src/http/ui/ui-page.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';

const ROUTES = '  - { name: api, path_prefix: /, upstream: app }';
let upstream: RecordingUpstream;
let on: TestGateway;
let off: TestGateway;

beforeAll(async () => {
  upstream = await startRecordingUpstream({ reply: { body: 'from upstream' } });
  on = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES }), { adminToken: 'page-serving-token' });
  off = await startTestGateway(
    testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, extra: 'dashboard:\n  enabled: false\n  operator_page: false\n' }),
    { adminToken: 'page-serving-token' },
  );
});

afterAll(async () => {
  await Promise.allSettled([on?.gateway.shutdown(), off?.gateway.shutdown()]);
  await upstream?.close();
});

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, headers });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

describe('the customer page on the proxy listener', () => {
  it('is answered by the gateway before the route table, with no credential, and never forwarded', async () => {
    const before = upstream.requests.length;
    const page = await get(`${on.proxyUrl}/_quotagate/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toBe(UI_CONTENT_SECURITY_POLICY);
    expect(page.headers['x-request-id']).toBeDefined();
    const script = /src="(\/_quotagate\/dashboard\/assets\/customer-\w+\.js)"/.exec(page.body)?.[1];
    const style = /href="(\/_quotagate\/dashboard\/assets\/customer-\w+\.css)"/.exec(page.body)?.[1];
    expect(script).toBeDefined();
    expect(style).toBeDefined();
    const js = await get(on.proxyUrl + script!);
    expect([js.status, js.headers['content-type'], js.headers['cache-control']]).toEqual([200, 'text/javascript; charset=utf-8', 'public, max-age=31536000, immutable']);
    expect(js.body.length).toBeGreaterThan(1000);
    expect((await get(on.proxyUrl + style!)).headers['content-type']).toBe('text/css; charset=utf-8');
    expect(upstream.requests.length).toBe(before);
  });

  it('answers 304 to its ETag and no body to HEAD', async () => {
    const page = await get(`${on.proxyUrl}/_quotagate/dashboard`);
    const etag = page.headers.etag as string;
    expect((await get(`${on.proxyUrl}/_quotagate/dashboard`, { 'if-none-match': etag })).status).toBe(304);
    const head = await get(`${on.proxyUrl}/_quotagate/dashboard`, {}, 'HEAD');
    expect([head.status, head.body, head.headers['content-length']]).toEqual([200, '', String(Buffer.byteLength(page.body))]);
  });

  it('answers 404 route_not_found for a file that is not its own', async () => {
    const missing = await get(`${on.proxyUrl}/_quotagate/dashboard/assets/customer-NOPE1234.js`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ code: 'route_not_found' });
  });

  it('with dashboard.enabled false, is not the gateway\'s: the path goes to the route table (here: needs a key, then forwarded)', async () => {
    expect((await get(`${off.proxyUrl}/_quotagate/dashboard`)).status).toBe(401);
    const before = upstream.requests.length;
    const forwarded = await get(`${off.proxyUrl}/_quotagate/dashboard`, { 'x-api-key': TEST_KEY });
    expect([forwarded.status, forwarded.body]).toEqual([200, 'from upstream']);
    expect(upstream.requests.slice(before).map((r) => r.url)).toEqual(['/_quotagate/dashboard']);
  });
});

describe('the operator page on the admin listener', () => {
  it('loads without a token (and without a database), with the same headers; other /admin/ui paths are the admin API\'s', async () => {
    const page = await get(`${on.adminUrl}/admin/ui`);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toBe(UI_CONTENT_SECURITY_POLICY);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    const script = /src="(\/admin\/ui\/assets\/operator-\w+\.js)"/.exec(page.body)?.[1];
    expect((await get(on.adminUrl + script!)).status).toBe(200);
    // A file that is not the page's falls through to the admin API, here off for want of a database.
    const missing = await get(`${on.adminUrl}/admin/ui/assets/operator-NOPE1234.js`);
    expect([missing.status, JSON.parse(missing.body).code]).toEqual([404, 'admin_disabled']);
    const api = await get(`${on.adminUrl}/admin/subjects`);
    expect([api.status, JSON.parse(api.body).code]).toEqual([404, 'admin_disabled']);
  });

  it('with dashboard.operator_page false, is an unknown admin path', async () => {
    const page = await get(`${off.adminUrl}/admin/ui`, { authorization: 'Bearer page-serving-token' });
    expect(page.status).toBe(404);
    expect(page.headers['content-type']).toBe('application/problem+json');
  });
});

describe('a gateway started without the built pages', () => {
  const empty = mkdtempSync(`${tmpdir()}/quotagate-no-ui-`);
  const logLines: string[] = [];
  let bare: TestGateway;

  beforeAll(async () => {
    bare = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES }), { uiDirectory: empty, logLines, adminToken: 'page-serving-token' });
  });
  afterAll(async () => {
    await bare?.gateway.shutdown();
    rmSync(empty, { recursive: true, force: true });
  });

  it('starts, warns once naming the command, and answers both pages with a 503 page; the rest serves', async () => {
    const warnings = logLines.filter((line) => line.includes('the dashboard pages are not built'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('npm run build:ui');
    for (const url of [`${bare.proxyUrl}/_quotagate/dashboard`, `${bare.adminUrl}/admin/ui`]) {
      const page = await get(url);
      expect(page.status).toBe(503);
      expect(page.body).toContain('npm run build:ui');
      expect(page.headers['content-security-policy']).toBe(UI_CONTENT_SECURITY_POLICY);
    }
    expect((await get(`${bare.proxyUrl}/anything`, { 'x-api-key': TEST_KEY })).status).toBe(200);
  });
});
