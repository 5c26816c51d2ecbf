import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapiDocumentPath } from '../../src/http/routes/admin-api/admin-api.js';
import { counterKey } from '../../src/redis/keys.js';
import { OpenapiResponses } from '../support/openapi-responses.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../support/test-gateway.js';
import { eventuallyAsync } from '../support/within.js';
import { ADMIN_TOKEN } from './admin-api.suite.js';

/**
 * `limit_by: key`: each API key of a subject gets the plan's full windows
 * (exact counts under concurrency), where `limit_by: subject` shares them;
 * the caller's and the admin's usage views, reset and history follow.
 * On the memory store and on Redis (each key's counters under its own hash tag).
 */
const PLANS = `  perkey: { limits: { minute: 3, hour: 100 }, limit_by: key }
  shared: { limits: { minute: 3, hour: 100 } }
  small: { limits: { hour: 1000 } }
  anonymous: { limits: { minute: 2 } }`;

const REDIS_URL = 'redis://127.0.0.1:6379';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

describe.each(['memory', 'redis'] as const)('limit_by on the %s store', (storeType) => {
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  const keyPrefix = testKeyPrefix('limitby');
  const keys: Record<string, { id: string; key: string }> = {};
  const client = new Agent({ connections: 50 });

  const admin = async (path: string, method = 'GET', body?: unknown): Promise<Json> => {
    const res = await fetch(gw.adminUrl + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return res.json();
  };
  const send = async (key: string, path = '/x'): Promise<number> => {
    const res = await request(`${gw.proxyUrl}${path}`, { headers: { 'x-api-key': key }, dispatcher: client });
    await res.body.dump();
    return res.statusCode;
  };
  const tally = (statuses: number[]) => statuses.reduce<Record<number, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {});

  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    const store = storeType === 'redis' ? `store:\n  type: redis\n  redis: { url: "${REDIS_URL}", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\n` : '';
    gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /, upstream: app }',
        plans: PLANS,
        extra: `${store}usage:\n  flush_interval_ms: 100\n`,
      }),
      { database: true, adminToken: ADMIN_TOKEN, redisOnTestClock: true },
    );
    await admin('/admin/subjects', 'POST', { id: 'multi', plan: 'perkey' });
    await admin('/admin/subjects', 'POST', { id: 'single', plan: 'shared' });
    for (const [name, subject] of [['a', 'multi'], ['b', 'multi'], ['c', 'single'], ['d', 'single']] as const) {
      const created = await admin(`/admin/subjects/${subject}/keys`, 'POST', { name });
      keys[name] = { id: created.id, key: created.key };
    }
  }, 60_000);

  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.close();
    await client.close();
    if (storeType === 'redis') {
      const redis = new Redis(REDIS_URL);
      await deleteKeysWithPrefix(redis, keyPrefix);
      redis.disconnect();
    }
  });

  it('gives each key of a limit_by: key subject the full limit, and the keys of a limit_by: subject subject one between them (concurrent, exact)', async () => {
    const run = (name: string) => Promise.all(Array.from({ length: 10 }, () => send(keys[name]!.key)));
    const [a, b, c, d] = await Promise.all([run('a'), run('b'), run('c'), run('d')]);
    expect(tally(a)).toEqual({ 200: 3, 429: 7 });
    expect(tally(b)).toEqual({ 200: 3, 429: 7 });
    expect(tally([...c, ...d])).toEqual({ 200: 3, 429: 17 });
    expect(upstream.requests.filter((r) => r.headers['x-quotagate-subject'] === 'multi')).toHaveLength(6);
    expect(upstream.requests.filter((r) => r.headers['x-quotagate-subject'] === 'single')).toHaveLength(3);
    if (storeType === 'redis') {
      const redis = new Redis(REDIS_URL);
      try {
        expect(await redis.hget(counterKey(keyPrefix, `multi/key:${keys.a!.id}`, 'w:minute'), 'n')).toBe('3');
        expect(await redis.hget(counterKey(keyPrefix, `multi/key:${keys.b!.id}`, 'w:minute'), 'n')).toBe('3');
        expect(await redis.hget(counterKey(keyPrefix, 'multi', 'w:minute'), 'n')).toBeNull();
        expect(await redis.hget(counterKey(keyPrefix, 'single', 'w:minute'), 'n')).toBe('3');
      } finally {
        redis.disconnect();
      }
    }
  });

  it("shows a key's caller that key's counters on /_quotagate/usage, and the subject's on a shared plan", async () => {
    const own = await request(`${gw.proxyUrl}/_quotagate/usage`, { headers: { 'x-api-key': keys.a!.key } });
    const body = (await own.body.json()) as Json;
    expect(body).toMatchObject({ plan: 'perkey', key_id: keys.a!.id });
    expect(body.policies.map((p: { name: string; used: number }) => [p.name, p.used])).toEqual([['minute', 3], ['hour', 3]]);
    const shared = (await (await request(`${gw.proxyUrl}/_quotagate/usage`, { headers: { 'x-api-key': keys.c!.key } })).body.json()) as Json;
    expect(shared.key_id).toBeUndefined();
    expect(shared.policies.map((p: { name: string; used: number }) => [p.name, p.used])).toEqual([['minute', 3], ['hour', 3]]);
  });

  it("shows the subject's own counters and each key's on the admin usage view, as the OpenAPI document describes", async () => {
    const spec = new OpenapiResponses(openapiDocumentPath());
    for (const [operationId, path] of [
      ['getSubjectUsage', '/admin/subjects/multi/usage'],
      ['getSubjectUsageHistory', `/admin/subjects/multi/usage/history?key=${keys.a!.id}`],
    ] as const) {
      const res = await fetch(gw.adminUrl + path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(spec.problems(operationId, { status: res.status, headers: res.headers, text: await res.text() })).toEqual([]);
    }
    const usage = await admin('/admin/subjects/multi/usage');
    expect(usage.policies.map((p: { name: string; used: number }) => [p.name, p.used])).toEqual([['minute', 0], ['hour', 0]]);
    expect(
      usage.keys.map((k: { key_id: string; name: string; policies: { name: string; used: number }[] }) => [k.key_id, k.name, k.policies.map((p) => p.used)]),
    ).toEqual([
      [keys.a!.id, 'a', [3, 3]],
      [keys.b!.id, 'b', [3, 3]],
    ]);
    expect((await admin('/admin/subjects/single/usage')).keys).toBeUndefined();
  });

  it("keeps each key's history in the ledger, read by the admin with ?key= and by the key's caller", async () => {
    await eventuallyAsync(
      async () => (await admin(`/admin/subjects/multi/usage/history?granularity=hour&key=${keys.a!.id}`)).items.length === 1,
      10_000,
      "key a's hour in the ledger",
    );
    const history = await admin(`/admin/subjects/multi/usage/history?granularity=hour&key=${keys.a!.id}`);
    expect(history).toMatchObject({ subject: 'multi', key_id: keys.a!.id, items: [{ period_start: '2026-06-15T10:00:00.000Z', name: 'requests', used: 3 }] });
    expect((await admin('/admin/subjects/multi/usage/history?granularity=hour')).items).toEqual([]);
    const own = await request(`${gw.proxyUrl}/_quotagate/usage/history?granularity=hour`, { headers: { 'x-api-key': keys.a!.key } });
    expect(await own.body.json()).toEqual(history);
    // A caller reads its own credentials' history, never another key's.
    const other = await request(`${gw.proxyUrl}/_quotagate/usage/history?key=${keys.b!.id}`, { headers: { 'x-api-key': keys.a!.key } });
    expect(other.statusCode).toBe(400);
    await other.body.dump();
    const top = await admin('/admin/views/top-consumers?policy=hour');
    expect(top.items).toEqual(
      expect.arrayContaining([
        { subject: 'multi', key_id: keys.a!.id, used: 3 },
        { subject: 'multi', key_id: keys.b!.id, used: 3 },
        { subject: 'single', key_id: null, used: 3 },
      ]),
    );
  });

  it("resets every key's counters with the subject", async () => {
    expect(await send(keys.a!.key)).toBe(429);
    expect((await admin('/admin/subjects/multi/reset', 'POST')).reset).toEqual(['minute', 'hour']);
    const usage = await admin('/admin/subjects/multi/usage');
    expect(usage.keys.map((k: { policies: { used: number }[] }) => k.policies.map((p) => p.used))).toEqual([[0, 0], [0, 0]]);
    expect(await send(keys.a!.key)).toBe(200);
    expect(await send(keys.b!.key)).toBe(200);
  });
});
