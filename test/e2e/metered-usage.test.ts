import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, connectTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { startTestGateway, TEST_KEY, testConfig } from '../support/test-gateway.js';
import { usageTotalsOf } from '../support/usage-totals.js';

/**
 * What the usage ledger holds after real traffic through the gateway, on the
 * memory store and on Redis (127.0.0.1:6379), with a PostgreSQL database of
 * this file: the final flush at shutdown writes it, and the test reads it.
 *
 * Regressions (issue 11): "A 413 after authentication is charged" (a chunked
 * body over max_body_bytes kept its charge, in the counters and the ledger,
 * logged as allowed) and "Unlimited plans meter nothing" (the ledger had rows
 * only for the windows a plan limits).
 */

const ROUTES = `
  - { name: upload, path_prefix: /upload, upstream: app, max_body_bytes: 1000 }
  - { name: api, path_prefix: /, upstream: app }`;

const STORES = [
  { name: 'memory', store: () => '' },
  { name: 'Redis', store: (keyPrefix: string) => `store:\n  type: redis\n  redis: { url: "redis://127.0.0.1:6379", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\n` },
] as const;

async function ledgerOf(url: string, subject: string): Promise<Record<string, number>> {
  const db = connectTestDatabase(url);
  try {
    return await usageTotalsOf(db, subject);
  } finally {
    await db.close();
  }
}

async function get(proxyUrl: string, path = '/x') {
  const res = await request(`${proxyUrl}${path}`, { headers: { 'x-api-key': TEST_KEY } });
  await res.body.dump();
  return res;
}

describe.each(STORES)('usage in the ledger ($name store)', ({ store }) => {
  /** One key prefix per gateway: each test starts from empty counters. */
  const keyPrefixes: string[] = [];
  let upstream: RecordingUpstream;
  let database: TestDatabase | undefined;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
  });
  afterAll(async () => {
    await upstream.close();
    await database?.drop();
    const redis = await connectTestRedis('redis://127.0.0.1:6379');
    for (const keyPrefix of keyPrefixes) await deleteKeysWithPrefix(redis, keyPrefix);
    redis.disconnect();
  });

  async function start(plan: string, logLines?: string[]) {
    await database?.drop();
    database = await createTestDatabase();
    const keyPrefix = testKeyPrefix('metered');
    keyPrefixes.push(keyPrefix);
    return startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: ROUTES,
        plans: `  small: ${plan}\n  anonymous: { limits: { minute: 2 } }`,
        postgres: `  url: "${database.url}"`,
        extra: store(keyPrefix),
      }),
      { database: true, ...(logLines === undefined ? {} : { logLines }) },
    );
  }

  it('gives back the charge of a chunked body refused with 413: counters, ledger and access log', async () => {
    const logLines: string[] = [];
    const gw = await start('{ limits: { hour: 100 } }', logLines);
    try {
      expect((await get(gw.proxyUrl)).statusCode).toBe(200);
      // The upstream reads the body and never answers: the body outgrows the limit first.
      upstream.configure({ handler: (req) => req.resume() });
      const refused = await request(`${gw.proxyUrl}/upload`, {
        method: 'POST',
        headers: { 'x-api-key': TEST_KEY },
        body: Readable.from([Buffer.alloc(800), Buffer.alloc(800)]),
      });
      expect(refused.statusCode).toBe(413);
      expect(await refused.body.json()).toMatchObject({ code: 'payload_too_large' });
      upstream.configure({ reply: { body: 'ok' } });
      // The counter holds the admitted request only (read without charging: the refund is the last change before the flush).
      const usage = await request(`${gw.proxyUrl}/_quotagate/usage`, { headers: { 'x-api-key': TEST_KEY } });
      expect(((await usage.body.json()) as { policies: unknown[] }).policies).toMatchObject([{ name: 'hour', used: 1 }]);
    } finally {
      await gw.gateway.shutdown();
    }
    const access = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'access');
    expect(access.filter((line) => line.route !== undefined).map((line) => [line.route, line.status, line.decision])).toEqual([
      ['api', 200, 'allowed'],
      ['upload', 413, 'refunded'],
    ]);
    // The shutdown's flush copied the refunded counts: the refused request is in no ledger row.
    expect(await ledgerOf(database!.url, 'customer-1')).toEqual({ 'w:hour': 1, 'w:day': 1, 'w:month': 1 });
  }, 60_000);

  it('records hour, day and month usage for a plan with no limits', async () => {
    const gw = await start('{ limits: {} }');
    try {
      for (let i = 0; i < 3; i++) {
        const res = await get(gw.proxyUrl);
        expect(res.statusCode).toBe(200);
        // Meters limit nothing and show in no header.
        expect(res.headers['ratelimit']).toBeUndefined();
        expect(res.headers['ratelimit-policy']).toBeUndefined();
        expect(res.headers['x-ratelimit-limit']).toBeUndefined();
      }
    } finally {
      await gw.gateway.shutdown();
    }
    expect(await ledgerOf(database!.url, 'customer-1')).toEqual({ 'w:hour': 3, 'w:day': 3, 'w:month': 3 });
  }, 60_000);

  it('records day and month usage for a plan with only an hour limit, showing only the hour', async () => {
    const gw = await start('{ limits: { hour: 2 } }');
    try {
      const statuses: number[] = [];
      let policyHeader: string | undefined;
      for (let i = 0; i < 3; i++) {
        const res = await get(gw.proxyUrl);
        statuses.push(res.statusCode);
        policyHeader ??= res.headers['ratelimit-policy'] as string | undefined;
      }
      expect(statuses).toEqual([200, 200, 429]);
      expect(policyHeader).toBe('"hour";q=2;w=3600');
    } finally {
      await gw.gateway.shutdown();
    }
    // The denial charged nothing, the meters included.
    expect(await ledgerOf(database!.url, 'customer-1')).toEqual({ 'w:hour': 2, 'w:day': 2, 'w:month': 2 });
  }, 60_000);
});
