import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';

const PLANS = `  small:
    display_name: Small team
    limits: { minute: 3, hour: 100 }
    quotas:
      search:
        month: 500
        overage:
          max: 100
      repos:
        lifetime: 3
    upgrade_url: https://example.com/pricing
  internal:
    public: false
    limits: { hour: 1000000 }
  anonymous: { limits: { minute: 2 }, public: false }
  enterprise: {}`;

describe('GET /_quotagate/plans', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: '  - { name: api, path_prefix: /, upstream: app }', plans: PLANS }));
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('lists the public plans in config order, with limits, quotas and upgrade URLs, without a credential', async () => {
    const res = await request(`${gw.proxyUrl}/_quotagate/plans`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=60');
    expect(await res.body.json()).toEqual({
      plans: [
        {
          name: 'small',
          display_name: 'Small team',
          limits: { minute: 3, hour: 100 },
          quotas: { search: { month: 500, overage: { max: 100 } }, repos: { lifetime: 3 } },
          quota_status: 429,
          upgrade_url: 'https://example.com/pricing',
        },
        { name: 'enterprise', display_name: 'enterprise', limits: {}, quotas: {}, quota_status: 429, upgrade_url: null },
      ],
    });
    // Never forwarded, never charged.
    expect(upstream.requests).toHaveLength(0);
  });

  it('is only the exact path: a longer one goes to the route table', async () => {
    const res = await request(`${gw.proxyUrl}/_quotagate/plansx`);
    await res.body.text();
    expect(res.statusCode).toBe(401);
  });
});
