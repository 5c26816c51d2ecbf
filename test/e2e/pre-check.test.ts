import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';

/** `POST /_quotagate/check`: would the caller be admitted now? Charges nothing, forwards nothing. */
const PLANS = `  small:
    limits: { minute: 5, hour: 100 }
    quotas:
      repos:
        lifetime: 2
    quota_status: 402
    upgrade_url: https://example.com/pricing
  anonymous: { limits: { minute: 2 } }`;

const ROUTES = `
  - { name: create-repo, methods: [POST], path_prefix: /repos, upstream: app, quota: repos }
  - { name: heavy, path_prefix: /heavy, upstream: app, cost: 6 }
  - { name: api, path_prefix: /, upstream: app }`;

describe('POST /_quotagate/check', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  const check = async (body: unknown, key: string | null = TEST_KEY) => {
    const res = await request(`${gw.proxyUrl}/_quotagate/check`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'x-api-key': key }) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans: PLANS }));
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('says yes while there is room, charging nothing, and no with the real denial code once the lifetime quota is full', async () => {
    const first = await check({ method: 'POST', path: '/repos' });
    expect(first).toMatchObject({ status: 200, body: { allowed: true, route: 'create-repo', plan: 'small', cost: 1 } });
    // The check charged nothing: two creations still fit.
    const again = await check({ route: 'create-repo' });
    expect((again.body.policies as Array<{ name: string; remaining: number }>).map((p) => [p.name, p.remaining])).toEqual([
      ['minute', 5],
      ['hour', 100],
      ['repos.lifetime', 2],
    ]);
    for (let i = 0; i < 2; i++) {
      const res = await request(`${gw.proxyUrl}/repos`, { method: 'POST', headers: { 'x-api-key': TEST_KEY } });
      await res.body.text();
      expect(res.statusCode).toBe(200);
    }
    const full = await check({ method: 'POST', path: '/repos' });
    expect(full.body).toMatchObject({
      allowed: false,
      code: 'quota_exceeded',
      status: 402,
      'violated-policies': ['repos.lifetime'],
      retry_after: null,
      upgrade_url: 'https://example.com/pricing',
    });
    // The same gateway really denies it, with the code the check announced.
    const real = await request(`${gw.proxyUrl}/repos`, { method: 'POST', headers: { 'x-api-key': TEST_KEY } });
    expect(real.statusCode).toBe(402);
    expect(((await real.body.json()) as { code: string }).code).toBe('quota_exceeded');
    expect(upstream.requests).toHaveLength(2);
  });

  it('counts the route cost against the windows: a cost larger than what is left is a rate_limited no', async () => {
    const heavy = await check({ method: 'GET', path: '/heavy/report' });
    expect(heavy.body).toMatchObject({ allowed: false, route: 'heavy', cost: 6, code: 'rate_limited', status: 429, 'violated-policies': ['minute'] });
    expect(typeof heavy.body.retry_after).toBe('number');
  });

  it('refuses a bad body with 400, an unknown route with 404, and a missing key with 401', async () => {
    expect((await check('not json')).body).toMatchObject({ status: 400, code: 'bad_request' });
    expect((await check({ method: 'get', path: '/x' })).status).toBe(400);
    expect((await check({ route: 'nope' })).body).toMatchObject({ status: 404, code: 'route_not_found' });
    expect((await check({ route: 'api' }, null)).status).toBe(401);
  });
});
