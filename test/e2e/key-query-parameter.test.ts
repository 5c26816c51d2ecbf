import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';

/** A route's `key_query_param`: the key from `?api_key=`, cut before forwarding and never logged. */
const ROUTES = `
  - { name: tiles, path_prefix: /tiles, upstream: app, key_query_param: api_key }
  - { name: api, path_prefix: /, upstream: app }`;

describe('API key in a query parameter', () => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  const logLines: string[] = [];
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${gw.proxyUrl}${path}`, { headers });
    await res.body.text();
    return res;
  };
  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    gw = await startTestGateway(testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES }), { logLines });
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  it('authenticates with the parameter and forwards the query without it', async () => {
    const res = await get(`/tiles/3/4?z=9&api_key=${TEST_KEY}&fmt=png`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['ratelimit']).toMatch(/^"minute";r=2;/);
    expect(upstream.requests.at(-1)!.url).toBe('/tiles/3/4?z=9&fmt=png');
    const alone = await get(`/tiles/1?api_key=${TEST_KEY}`);
    expect(alone.statusCode).toBe(200);
    expect(upstream.requests.at(-1)!.url).toBe('/tiles/1');
  });

  it('refuses a missing or wrong key in the parameter with 401, forwarding nothing', async () => {
    const before = upstream.requests.length;
    expect((await get('/tiles/1?z=1')).statusCode).toBe(401);
    expect((await get('/tiles/1?api_key=qg_notakey')).statusCode).toBe(401);
    expect(upstream.requests.length).toBe(before);
  });

  it('is off on routes that do not ask for it', async () => {
    const before = upstream.requests.length;
    expect((await get(`/other?api_key=${TEST_KEY}`)).statusCode).toBe(401);
    expect(upstream.requests.length).toBe(before);
  });

  it('never writes the key to a log line', async () => {
    await get(`/tiles/9?api_key=${TEST_KEY}`);
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.some((line) => line.includes('/tiles/9'))).toBe(true);
    expect(logLines.filter((line) => line.includes(TEST_KEY))).toEqual([]);
  });
});
