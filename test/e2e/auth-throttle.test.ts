import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { storeTestKey } from '../support/database-keys.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';

/**
 * Failed authentication is throttled per client address (issue 10 §4): with
 * keys in the database (embedded PGlite), a flood of random well-formed keys
 * from one address costs at most `unknown_per_second` queries a second; the
 * rest are refused with 429 `auth_throttled` before any query, while other
 * addresses and cached keys are served as before. The manual clock keeps the
 * whole test inside one second.
 */
describe('unknown-key lookup throttle (database key store)', () => {
  const BUDGET = 3;
  const ATTACKER = '203.0.113.7';
  const OTHER = '198.51.100.2';
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /, upstream: app }',
        plans: '  small: { limits: { minute: 100 } }\n  anonymous: { limits: { minute: 2 } }',
        extra: `proxy:\n  trusted_proxies: [127.0.0.1]\n`,
      }).replace('  api_keys:\n', `  api_keys:\n    lookup_throttle: { unknown_per_second: ${BUDGET}, max_clients: 1000 }\n`),
      { database: true },
    );
  }, 60_000);
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
  });

  const call = async (key: string, clientIp: string) => {
    const res = await request(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': key, 'x-forwarded-for': clientIp } });
    const text = await res.body.text();
    return { status: res.statusCode, retryAfter: res.headers['retry-after'], code: text.startsWith('{') ? (JSON.parse(text) as { code: string }).code : text };
  };

  /** Database queries of key lookups so far: one duration observation per query. */
  const keyQueries = async (): Promise<number> => {
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    return metrics
      .split('\n')
      .filter((line) => line.startsWith('quotagate_key_lookup_duration_seconds_count'))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  };

  it('refuses a flood of unknown keys past the budget with 429 auth_throttled and no query, and serves everyone else', async () => {
    const stored = await storeTestKey(gw.gateway.databases!.primary, { subject: 'legit' });
    const before = await keyQueries();

    const flood = await Promise.all(Array.from({ length: 20 }, () => call(generateApiKey('qg'), ATTACKER)));
    expect(flood.filter((r) => r.code === 'invalid_api_key')).toHaveLength(BUDGET);
    const throttled = flood.filter((r) => r.code === 'auth_throttled');
    expect(throttled).toHaveLength(20 - BUDGET);
    expect(throttled.every((r) => r.status === 429 && r.retryAfter === '1')).toBe(true);
    expect(await keyQueries()).toBe(before + BUDGET);

    // Another address is not slowed: its uncached key is looked up and served.
    expect(await call(stored.key, OTHER)).toMatchObject({ status: 200 });
    expect(await keyQueries()).toBe(before + BUDGET + 1);
    // The flooding address gets no query for a new key, but a cached key still works for it.
    expect(await call(generateApiKey('qg'), ATTACKER)).toMatchObject({ status: 429, code: 'auth_throttled' });
    expect(await call(stored.key, ATTACKER)).toMatchObject({ status: 200 });
    expect(await keyQueries()).toBe(before + BUDGET + 1);
    expect(upstream.requests).toHaveLength(2);

    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain(`quotagate_key_lookups_total{result="throttled"} ${20 - BUDGET + 1}`);
    expect(metrics).toContain(`quotagate_auth_failures_total{reason="throttled"} ${20 - BUDGET + 1}`);
  });
});
