import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { unusedPort } from '../support/ports.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';

const PLANS = `  small:
    limits: { minute: 3, hour: 100 }
    quotas: { search: { month: 2 } }
    quota_status: 402
    upgrade_url: https://example.com/pricing
  anonymous: { limits: { minute: 2 } }`;

const ROUTES = `
  - { name: search, path_prefix: /search, upstream: app, quota: search }
  - { name: refunding, path_prefix: /fragile, upstream: app, refund_on: [error, timeout, 5xx] }
  - { name: api, path_prefix: /, upstream: app }`;

const withKey = { 'x-api-key': TEST_KEY };

async function get(gw: TestGateway, path: string, headers: Record<string, string> = withKey) {
  const res = await request(`${gw.proxyUrl}${path}`, { headers });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

describe('charging end to end (memory store)', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
  });
  afterAll(async () => {
    await upstream.close();
  });
  beforeEach(async () => {
    upstream.configure({ reply: { body: 'ok' } });
    gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans: PLANS }));
  });
  afterEach(async () => {
    await gw.gateway.shutdown();
  });

  it('charges a metered quota and answers its exhaustion with the plan quota status and quota_exceeded', async () => {
    expect((await get(gw, '/search?q=a')).status).toBe(200);
    const second = await get(gw, '/search?q=b');
    expect(second.headers['ratelimit']).toBe('"minute";r=1;t=60, "hour";r=98;t=1800, "search.month";r=0;t=1344600');
    // The next minute has room, but the month's search quota does not.
    gw.clock.advance(60_000);
    const denied = await get(gw, '/search?q=c');
    expect(denied.status).toBe(402);
    expect(denied.headers['retry-after']).toBe('1344540');
    expect(JSON.parse(denied.body)).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
      status: 402,
      code: 'quota_exceeded',
      'violated-policies': ['search.month'],
      limit: 2,
      remaining: 0,
      plan: 'small',
      upgrade_url: 'https://example.com/pricing',
    });
    // Routes without the metric still pass, charged on the windows only.
    const plain = await get(gw, '/other');
    expect(plain.status).toBe(200);
    expect(plain.headers['ratelimit']).toBe('"minute";r=2;t=60, "hour";r=97;t=1740');
  });

  it('refunds the exact charge when the upstream answers 5xx on a refund_on route', async () => {
    upstream.configure({ reply: { status: 503, body: 'down' } });
    const failed = await get(gw, '/fragile');
    expect(failed.status).toBe(503);
    expect(failed.headers['x-ratelimit-remaining-minute']).toBe('2');
    upstream.configure({ reply: { body: 'ok' } });
    expect((await get(gw, '/x')).headers['x-ratelimit-remaining-minute']).toBe('2');
  });

  it('does not refund a 5xx on a route without refund_on', async () => {
    upstream.configure({ reply: { status: 500, body: 'oops' } });
    await get(gw, '/x');
    upstream.configure({ reply: { body: 'ok' } });
    expect((await get(gw, '/x')).headers['x-ratelimit-remaining-minute']).toBe('1');
  });
});

describe('refund on a connection failure', () => {
  it('returns the charge when the upstream cannot be reached', async () => {
    const port = await unusedPort();
    const gw = await startTestGateway(
      testConfig({ upstreamOrigin: `http://127.0.0.1:${port}`, routes: ROUTES, plans: PLANS }),
    );
    try {
      const failed = await get(gw, '/fragile');
      expect(failed.status).toBe(502);
      const again = await get(gw, '/fragile');
      expect(again.status).toBe(502);
      // Both charges were given back: a third request still sees the full minute.
      expect(again.headers['x-ratelimit-remaining-minute']).toBe('2');
      const unrefunded = await get(gw, '/x');
      expect(unrefunded.status).toBe(502);
      expect((await get(gw, '/x')).headers['x-ratelimit-remaining-minute']).toBe('1');
    } finally {
      await gw.gateway.shutdown();
    }
  });
});
