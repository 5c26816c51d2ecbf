import { request as httpRequest } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, TEST_KEY, type TestGateway } from '../support/test-gateway.js';
import { within } from '../support/within.js';
import type { RedisClient } from '../../src/redis/client.js';

/**
 * One path for everyone (issue 10 §2), through the real server in front of a
 * recording upstream, on both stores: each request target either reaches the
 * upstream as the path it was routed and charged on, or is refused with 400
 * and reaches nothing.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';

const ROUTES = `
  - { name: costly, path_prefix: /api/costly/search, upstream: app, cost: 3 }
  - { name: secret, path_prefix: /api/secret, upstream: app }
  - { name: readonly, path_prefix: /api/items, methods: [GET], upstream: app, auth: none }
  - { name: delete-things, path_prefix: /api/things, methods: [DELETE], upstream: app, cost: 5 }
  - { name: things, path_prefix: /api/things, upstream: app }
  - { name: api, path_prefix: /api, upstream: app }
  - { name: public, path_prefix: /public, upstream: app, auth: none }
  - { name: site, path_prefix: /, upstream: app, auth: none }`;

const PLANS = `  small: { limits: { minute: 100, hour: 1000 } }
  anonymous: { limits: { minute: 100 } }`;

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A request whose target is sent byte for byte (a URL-parsing client would resolve dots and escapes first). */
function send(origin: string, method: string, target: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return within(
    new Promise((resolve, reject) => {
      const req = httpRequest(`${origin}/`, { method, path: target, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end();
    }),
    5_000,
    `${method} ${target}`,
  );
}

const withKey = { 'x-api-key': TEST_KEY };

/** Targets that could name another path on some server: 400, nothing forwarded, nothing charged. */
const REFUSED: ReadonlyArray<readonly [string, string]> = [
  ['/public/..;/api/secret', 'dot segment with ;parameters (Tomcat, Jetty, Spring)'],
  ['/public/%2e%2e;/api/secret', 'encoded dot segment with ;parameters'],
  ['/public/..%3B/api/secret', 'dot segment with an encoded ;'],
  ['/public/../api/secret', 'dot segment'],
  ['/public/%2e%2e/api/secret', 'encoded dot segment'],
  ['/public/%2e%2e%2fapi/secret', 'encoded dots and slash'],
  ['/public/..%5Capi/secret', 'encoded backslash (IIS, ASP.NET)'],
  ['/api/costly%2Fsearch', 'encoded slash (Go ServeMux decodes it)'],
  ['/public/%252e%252e/api/secret', 'double encoding'],
  ['/public/%c0%ae%c0%ae/api/secret', 'overlong UTF-8 dots'],
  ['/public/..%00/api/secret', 'encoded NUL'],
  ['/public/..%20/api/secret', 'dot segment with a trailing space (Windows)'],
  ['/api/secret./x', 'segment ending in a dot (IIS drops it)'],
  ['/public/%zz', 'malformed escape'],
  ['/public/%u002e%u002e/api/secret', "IIS's %u escapes"],
  ['/API/Secret', 'another route when case is ignored (Express, ASP.NET)'],
  ['/Api/costly/search', 'another route when case is ignored'],
];

describe.each(['memory', 'redis'] as const)('one path for everyone, end to end (%s store)', (store) => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let redis: RedisClient | undefined;
  let keyPrefix: string;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    if (store === 'redis') redis = await connectTestRedis(REDIS_URL);
  });
  afterAll(async () => {
    await upstream.close();
    await redis?.quit();
  });
  beforeEach(async () => {
    upstream.requests.length = 0;
    keyPrefix = testKeyPrefix('path');
    const extra = store === 'redis' ? `store:\n  type: redis\n  redis: { url: "${REDIS_URL}", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\n` : '';
    gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans: PLANS, extra }));
  });
  afterEach(async () => {
    await gw.gateway.shutdown();
    if (redis !== undefined) await deleteKeysWithPrefix(redis, keyPrefix);
  });

  it.each(REFUSED)('refuses %s (%s) with 400 bad_request and forwards nothing', async (target) => {
    const res = await send(gw.proxyUrl, 'GET', target, withKey);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(res.body)).toMatchObject({ status: 400, code: 'bad_request' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('refuses a raw backslash with 400 and forwards nothing', async () => {
    // @hono/node-server answers this one itself (a bare 400) before the app
    // sees it; the path rule refuses it too (test/unit/request-path.test.ts).
    const res = await send(gw.proxyUrl, 'GET', '/public/..\\api/secret', withKey);
    expect(res.status).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it('charges /api/costly;v=1/search as /api/costly/search, which the upstream is sent', async () => {
    const res = await send(gw.proxyUrl, 'GET', '/api/costly;v=1/search?q=a;b', withKey);
    expect(res.status).toBe(200);
    expect(res.headers['x-ratelimit-remaining-minute']).toBe('97');
    const again = await send(gw.proxyUrl, 'GET', '/api/costly;/search;jsessionid=x', withKey);
    expect(again.headers['x-ratelimit-remaining-minute']).toBe('94');
    expect(upstream.requests.map((r) => r.url)).toEqual(['/api/costly/search?q=a;b', '/api/costly/search']);
  });

  it('keeps /public/..;/api/secret away from the auth: none route: the secret route asks for a key, and gets it', async () => {
    const refused = await send(gw.proxyUrl, 'GET', '/public/..;/api/secret');
    expect(refused.status).toBe(400);
    const direct = await send(gw.proxyUrl, 'GET', '/api/secret;x=1');
    expect(direct.status).toBe(401);
    expect(JSON.parse(direct.body)).toMatchObject({ code: 'missing_credentials' });
    expect(upstream.requests).toHaveLength(0);
  });

  it.each([
    ['/%61pi/secret', '/api/secret', 'secret'],
    ['/api//secret', '/api//secret', 'secret'],
    ['/public/caf%c3%a9', '/public/caf%C3%A9', 'public'],
    ['/public/100%25?x=%2e%2e', '/public/100%25?x=%2e%2e', 'public'],
    ['/Docs/Intro', '/Docs/Intro', 'site'],
    ['/api/items/AbC', '/api/items/AbC', 'readonly'],
  ])('forwards %s as %s', async (target, forwarded) => {
    const res = await send(gw.proxyUrl, 'GET', target, withKey);
    expect(res.status).toBe(200);
    expect(upstream.requests.map((r) => r.url)).toEqual([forwarded]);
  });

  describe('method overrides', () => {
    const overrides = {
      'x-http-method-override': 'DELETE',
      'x-http-method': 'DELETE',
      'x-method-override': 'DELETE',
      'x_http_method_override': 'DELETE',
    };

    it('withholds every override header on a route that restricts methods', async () => {
      const res = await send(gw.proxyUrl, 'GET', '/api/items/1', { ...overrides, 'x-kept': '1' });
      expect(res.status).toBe(200);
      const seen = upstream.requests[0]!;
      expect(seen.method).toBe('GET');
      expect(seen.headers['x-kept']).toBe('1');
      expect(Object.keys(seen.headers).filter((name) => /method/i.test(name))).toEqual([]);
    });

    it('refuses a _method query parameter on a route that restricts methods', async () => {
      for (const target of ['/api/items/1?_method=DELETE', '/api/items/1?a=1&%5Fmethod=DELETE']) {
        const res = await send(gw.proxyUrl, 'GET', target);
        expect(res.status).toBe(400);
        expect(JSON.parse(res.body)).toMatchObject({ code: 'bad_request', detail: 'Route "readonly" does not take a _method query parameter (method override).' });
      }
      expect(upstream.requests).toHaveLength(0);
    });

    it('withholds an override on an open route when the overriding method would match another route', async () => {
      const res = await send(gw.proxyUrl, 'POST', '/api/things/1', { ...withKey, 'x-http-method-override': 'DELETE' });
      expect(res.status).toBe(200);
      // Charged as "things" (1), not "delete-things" (5): the upstream must not delete.
      expect(res.headers['x-ratelimit-remaining-minute']).toBe('99');
      expect(upstream.requests[0]!.headers['x-http-method-override']).toBeUndefined();
      const query = await send(gw.proxyUrl, 'POST', '/api/things/1?_method=DELETE', withKey);
      expect(query.status).toBe(400);
      expect(upstream.requests).toHaveLength(1);
    });

    it('passes an override on when it would match the same open route', async () => {
      const res = await send(gw.proxyUrl, 'POST', '/api/other', { ...withKey, 'x-http-method-override': 'PUT' });
      expect(res.status).toBe(200);
      const query = await send(gw.proxyUrl, 'POST', '/api/other?_method=PATCH', withKey);
      expect(query.status).toBe(200);
      expect(upstream.requests.map((r) => [r.url, r.headers['x-http-method-override']])).toEqual([
        ['/api/other', 'PUT'],
        ['/api/other?_method=PATCH', undefined],
      ]);
    });
  });
});
