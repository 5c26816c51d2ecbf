import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';

/** `mode: shadow` on a route: would-be denials are forwarded, marked, charged nothing, and still counted. */
const ROUTES = `
  - { name: trial, path_prefix: /trial, upstream: app, mode: shadow }
  - { name: api, path_prefix: /, upstream: app }`;

describe('shadow mode', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  const get = async (path: string) => {
    const res = await request(`${gw.proxyUrl}${path}`, { headers: { 'x-api-key': TEST_KEY } });
    await res.body.text();
    return res;
  };
  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    // The test plan allows 3 a minute.
    gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES }));
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('forwards what the limit would deny, with X-Quotagate-Shadow, while an enforcing route still denies', async () => {
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await get('/trial'));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.map((a) => a.headers['x-quotagate-shadow'] ?? null)).toEqual([null, null, null, 'would-deny', 'would-deny']);
    expect(answers[4]!.headers['x-ratelimit-remaining-minute']).toBe('0');
    expect(upstream.requests.filter((r) => r.url === '/trial')).toHaveLength(5);
    // The would-be denials charged nothing: the minute still counts 3, so the enforcing route denies.
    const enforced = await get('/other');
    expect(enforced.statusCode).toBe(429);
    expect(enforced.headers['x-quotagate-shadow']).toBeUndefined();
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    // Every would-be denial is counted: the store's first, then the local deny cache's (the shadow one, and /other).
    expect(metrics).toMatch(/quotagate_decisions_total\{outcome="denied",reason="window"\} 1\n/);
    expect(metrics).toMatch(/quotagate_decisions_total\{outcome="denied",reason="local-deny"\} 2\n/);
  });
});
