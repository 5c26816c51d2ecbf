import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { testKeyPrefix } from '../support/redis-test-data.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';

/**
 * Lifetime quotas with release, and overage, through the gateway in front of
 * a recording upstream, on the memory store and on Redis (127.0.0.1:6379).
 */

const PLANS = `  small:
    limits: { hour: 100 }
    quotas:
      repos:
        lifetime: 2
      search:
        month: 3
        overage:
          max: 2
  anonymous: { limits: { minute: 2 } }`;

const ROUTES = `
  - { name: create-repo, methods: [POST], path_prefix: /repos, upstream: app, quota: repos }
  - { name: delete-repo, methods: [DELETE], path_prefix: /repos, upstream: app, quota: repos, release: 1 }
  - { name: search, path_prefix: /search, upstream: app, quota: search }`;

async function send(gw: TestGateway, method: string, path: string) {
  const res = await request(`${gw.proxyUrl}${path}`, { method, headers: { 'x-api-key': TEST_KEY } });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

const STORES = [
  { name: 'memory store', extra: () => '' },
  {
    name: 'Redis store',
    extra: () => `store:\n  type: redis\n  redis: { url: "redis://127.0.0.1:6379", key_prefix: ${testKeyPrefix('kinds')}, command_timeout_ms: 2000 }\n`,
  },
];

for (const store of STORES) {
  describe(`lifetime quotas and overage end to end (${store.name})`, () => {
    let upstream: RecordingUpstream;
    let gw: TestGateway;
    beforeAll(async () => {
      upstream = await startRecordingUpstream();
    });
    afterAll(async () => {
      await upstream.close();
    });
    beforeEach(async () => {
      upstream.requests.length = 0;
      upstream.configure({ reply: { body: 'ok' } });
      gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans: PLANS, extra: store.extra() }));
    });
    afterEach(async () => {
      await gw.gateway.shutdown();
    });

    it('counts creations for ever, denies past the limit without Retry-After, and a 2xx DELETE releases one', async () => {
      expect((await send(gw, 'POST', '/repos')).status).toBe(200);
      const second = await send(gw, 'POST', '/repos');
      expect(second.status).toBe(200);
      // Redis decides on its own clock: `t` is checked for shape, the lifetime item for having none.
      expect(second.headers['ratelimit']).toMatch(/^"hour";r=98;t=\d+, "repos.lifetime";r=0$/);
      expect(second.headers['ratelimit-policy']).toBe('"hour";q=100;w=3600, "repos.lifetime";q=2');
      expect(second.headers['x-ratelimit-reset']).toBeUndefined();
      const denied = await send(gw, 'POST', '/repos');
      expect(denied.status).toBe(429);
      expect(denied.headers['retry-after']).toBeUndefined();
      const problem = JSON.parse(denied.body) as Record<string, unknown>;
      expect(problem).toMatchObject({ code: 'quota_exceeded', 'violated-policies': ['repos.lifetime'], limit: 2, remaining: 0 });
      expect(problem).not.toHaveProperty('reset');
      expect(upstream.requests.filter((r) => r.method === 'POST')).toHaveLength(2);

      // A DELETE the upstream refuses releases nothing; a 2xx one releases one unit.
      upstream.configure({ reply: { status: 404, body: 'no such repo' } });
      expect((await send(gw, 'DELETE', '/repos/7')).status).toBe(404);
      upstream.configure({ reply: { body: 'ok' } });
      expect((await send(gw, 'POST', '/repos')).status).toBe(429);
      const deleted = await send(gw, 'DELETE', '/repos/1');
      expect(deleted.status).toBe(200);
      // The DELETE itself charged the hour, never the quota.
      // Two POSTs and two DELETEs charged the hour (denials charge nothing).
      expect(deleted.headers['ratelimit']).toMatch(/^"hour";r=96;t=\d+$/);
      expect((await send(gw, 'POST', '/repos')).status).toBe(200);
      expect((await send(gw, 'POST', '/repos')).status).toBe(429);
      const usage = await request(`${gw.proxyUrl}/_quotagate/usage`, { headers: { 'x-api-key': TEST_KEY } });
      const view = (await usage.body.json()) as { policies: Array<Record<string, unknown>> };
      expect(view.policies.find((p) => p.name === 'repos.lifetime')).toMatchObject({
        window: 'lifetime',
        used: 2,
        remaining: 0,
        reset_seconds: 0,
        reset_at: null,
      });
    });

    it('releasing more than was counted never goes below zero', async () => {
      for (let i = 0; i < 3; i++) expect((await send(gw, 'DELETE', '/repos/1')).status).toBe(200);
      expect((await send(gw, 'POST', '/repos')).status).toBe(200);
      expect((await send(gw, 'POST', '/repos')).status).toBe(200);
      expect((await send(gw, 'POST', '/repos')).status).toBe(429);
    });

    it('overage: forwards past the limit with X-Quotagate-Overage up to the cap, then denies; usage shows included and overage apart', async () => {
      const answers = [];
      for (let i = 0; i < 6; i++) answers.push(await send(gw, 'GET', '/search'));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 429]);
      expect(answers.map((a) => a.headers['x-quotagate-overage'] ?? null)).toEqual([null, null, null, '1', '2', null]);
      expect(answers[4]!.headers['ratelimit']).toMatch(/^"hour";r=95;t=\d+, "search.month";r=0;t=\d+$/);
      expect(upstream.requests).toHaveLength(5);
      const usage = await request(`${gw.proxyUrl}/_quotagate/usage`, { headers: { 'x-api-key': TEST_KEY } });
      const view = (await usage.body.json()) as { policies: Array<Record<string, unknown>> };
      expect(view.policies.find((p) => p.name === 'search.month')).toMatchObject({
        limit: 3,
        used: 5,
        included: 3,
        overage: 2,
        remaining: 0,
        percent: 166.67,
      });
    });
  });
}
