import { Client, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type RecordingUpstream, startRecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, TEST_KEY, type TestGateway, testConfig, UNKNOWN_KEY } from '../support/test-gateway.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ROUTES = '  - { name: api, path_prefix: /api, upstream: app }';

interface AccessLine {
  msg: string;
  level: number;
  request_id: string;
  method: string;
  path?: string;
  route?: string;
  plan?: string;
  subject?: string;
  status: number;
  outcome: string;
  decision?: string;
  duration_ms: number;
  upstream_ms?: number;
}

describe('access log and request ids', () => {
  let upstream: RecordingUpstream | undefined;
  let served: TestGateway | undefined;
  let logLines: string[] = [];

  afterEach(async () => {
    await served?.gateway.shutdown();
    await upstream?.close();
    served = upstream = undefined;
    logLines = [];
  });

  async function start(extra = '', plans?: string): Promise<TestGateway> {
    upstream = await startRecordingUpstream();
    const yaml = testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, extra, ...(plans === undefined ? {} : { plans }) });
    served = await startTestGateway(yaml, { logLines });
    return served;
  }

  function accessLines(): AccessLine[] {
    return logLines.map((line) => JSON.parse(line) as AccessLine).filter((line) => line.msg === 'access');
  }

  it('writes one line per forwarded request with its fields, and passes a well-formed X-Request-Id through', async () => {
    const gw = await start();
    const res = await request(`${gw.proxyUrl}/api/items?token=secret-in-query`, {
      headers: { 'x-api-key': TEST_KEY, 'x-request-id': 'client-id_42.a:b' },
    });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(res.headers['x-request-id']).toBe('client-id_42.a:b');
    expect(upstream!.requests[0]!.headers['x-request-id']).toBe('client-id_42.a:b');

    const lines = accessLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      request_id: 'client-id_42.a:b',
      method: 'GET',
      path: '/api/items',
      route: 'api',
      plan: 'small',
      status: 200,
      outcome: 'forwarded',
      decision: 'allowed',
    });
    expect(lines[0]!.duration_ms).toBeGreaterThan(0);
    expect(lines[0]!.upstream_ms).toBeGreaterThan(0);
    expect(lines[0]!.duration_ms).toBeGreaterThanOrEqual(lines[0]!.upstream_ms!);
    expect(lines[0]).not.toHaveProperty('subject');
    expect(logLines.join('\n')).not.toContain('secret-in-query');
  });

  it('generates a UUID when no id or a malformed one comes, sends that one upstream and returns it', async () => {
    const gw = await start('', '  small: { limits: { minute: 100 } }');
    const offered = [undefined, 'has space', 'x'.repeat(129), 'semi;colon', ''];
    for (const id of offered) {
      const res = await request(`${gw.proxyUrl}/api/x`, {
        headers: { 'x-api-key': TEST_KEY, ...(id === undefined ? {} : { 'x-request-id': id }) },
      });
      await res.body.text();
      expect(res.headers['x-request-id']).toMatch(UUID);
      const received = upstream!.requests.at(-1)!;
      expect(received.headers['x-request-id']).toBe(res.headers['x-request-id']);
      expect(received.rawHeaders.filter((name) => name.toLowerCase() === 'x-request-id')).toHaveLength(1);
      expect(accessLines().at(-1)!.request_id).toBe(res.headers['x-request-id']);
    }
    expect(upstream!.requests).toHaveLength(5);
  });

  it('puts the id on problem responses and logs denials, refusals and unmatched paths', async () => {
    const gw = await start();
    for (let i = 0; i < 3; i++) await (await request(`${gw.proxyUrl}/api/x`, { headers: { 'x-api-key': TEST_KEY } })).body.text();
    const denied = await request(`${gw.proxyUrl}/api/x`, { headers: { 'x-api-key': TEST_KEY, 'x-request-id': 'denied-1' } });
    expect(denied.statusCode).toBe(429);
    expect(denied.headers['x-request-id']).toBe('denied-1');
    await denied.body.text();
    const refused = await request(`${gw.proxyUrl}/api/x`, { headers: { authorization: `Bearer ${UNKNOWN_KEY}` } });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['x-request-id']).toMatch(UUID);
    await refused.body.text();
    const unmatched = await request(`${gw.proxyUrl}/elsewhere`);
    expect(unmatched.statusCode).toBe(404);
    expect(unmatched.headers['x-request-id']).toMatch(UUID);
    await unmatched.body.text();

    const lines = accessLines();
    expect(lines).toHaveLength(6);
    expect(lines[3]).toMatchObject({ request_id: 'denied-1', status: 429, outcome: 'rate_limited', decision: 'denied', plan: 'small' });
    expect(lines[3]).not.toHaveProperty('upstream_ms');
    expect(lines[4]).toMatchObject({ status: 401, outcome: 'invalid_api_key', route: 'api' });
    expect(lines[4]).not.toHaveProperty('plan');
    expect(lines[5]).toMatchObject({ status: 404, outcome: 'route_not_found', path: '/elsewhere' });
  });

  it('logs the path received, without its query, for requests refused before a route matched (it logged none)', async () => {
    const gw = await start();
    for (const [target, status] of [
      ['/elsewhere/deep?token=secret-in-query', 404],
      ['/api/../admin?token=secret-in-query', 400],
      ['/api/%2e%2e/x', 400],
    ] as const) {
      // A Client sends the path as given; request(url) would resolve the dot segments first.
      const client = new Client(gw.proxyUrl);
      const res = await client.request({ method: 'GET', path: target, headers: { 'x-api-key': TEST_KEY } });
      expect(res.statusCode).toBe(status);
      await res.body.text();
      await client.close();
    }
    expect(accessLines().map(({ path, status, outcome }) => ({ path, status, outcome }))).toEqual([
      { path: '/elsewhere/deep', status: 404, outcome: 'route_not_found' },
      { path: '/api/../admin', status: 400, outcome: 'bad_request' },
      { path: '/api/%2e%2e/x', status: 400, outcome: 'bad_request' },
    ]);
    expect(logLines.join('\n')).not.toContain('secret-in-query');
    expect(upstream!.requests).toEqual([]);
  });

  it('never logs a key, a token or the Authorization header, even at trace level', async () => {
    const gw = await start();
    await (await request(`${gw.proxyUrl}/api/a`, { headers: { 'x-api-key': TEST_KEY } })).body.text();
    await (await request(`${gw.proxyUrl}/api/b`, { headers: { authorization: `Bearer ${TEST_KEY}` } })).body.text();
    await (await request(`${gw.proxyUrl}/api/c`, { headers: { authorization: `Bearer ${UNKNOWN_KEY}` } })).body.text();
    await (await request(`${gw.proxyUrl}/api/d`, { headers: { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln' } })).body.text();
    expect(accessLines()).toHaveLength(4);
    const all = logLines.join('\n');
    expect(all).not.toContain(TEST_KEY);
    expect(all).not.toContain(UNKNOWN_KEY);
    expect(all).not.toContain('eyJhbGciOiJSUzI1NiJ9');
    expect(all.toLowerCase()).not.toContain('authorization');
    expect(all.toLowerCase()).not.toContain('x-api-key');
  });

  it('logs the subject only when include_subject is set, and nothing when the access log is off', async () => {
    let gw = await start('logging:\n  access_log: { include_subject: true }\n');
    await (await request(`${gw.proxyUrl}/api/x`, { headers: { 'x-api-key': TEST_KEY } })).body.text();
    expect(accessLines()[0]).toMatchObject({ subject: 'customer-1', plan: 'small' });
    await gw.gateway.shutdown();
    await upstream!.close();
    served = undefined;

    logLines = [];
    gw = await start('logging:\n  access_log: { enabled: false }\n');
    const res = await request(`${gw.proxyUrl}/api/x`, { headers: { 'x-api-key': TEST_KEY } });
    await res.body.text();
    expect(res.headers['x-request-id']).toMatch(UUID);
    expect(accessLines()).toEqual([]);
  });
});
