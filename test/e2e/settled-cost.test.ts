import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectTestDatabase, createTestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream, type UpstreamHandler } from '../support/recording-upstream.js';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';
import { usageTotalsOf } from '../support/usage-totals.js';

/**
 * A route whose cost is settled from the upstream's response
 * (`cost: { reserve, from_response }`), through the whole gateway in front of
 * a recording upstream, on the memory store and on Redis (127.0.0.1:6379):
 * the reserve decides admission and the response's headers, the reported
 * units are what the counters (the usage endpoint) and the ledger keep.
 */

const ROUTES = `
  - name: completions
    path_prefix: /v1/completions
    upstream: app
    cost: { reserve: 500, from_response: { header: X-Usage-Units } }
  - name: streamed
    path_prefix: /v1/stream
    upstream: app
    cost: { reserve: 500, from_response: { trailer: X-Usage-Units } }
  - { name: api, path_prefix: /, upstream: app, cost: 3 }`;

const PLANS = `  small: { limits: { hour: 1000 } }
  anonymous: { limits: { minute: 2 } }`;

const STORES = [
  { name: 'memory', store: () => '' },
  { name: 'Redis', store: (keyPrefix: string) => `store:\n  type: redis\n  redis: { url: "redis://127.0.0.1:6379", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\n` },
] as const;

const withKey = { 'x-api-key': TEST_KEY };

async function get(gw: TestGateway, path: string) {
  const res = await request(`${gw.proxyUrl}${path}`, { headers: withKey });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

/** The caller's hour as GET /_quotagate/usage reports it (charging nothing). */
async function hourUsed(gw: TestGateway): Promise<number> {
  const res = await request(`${gw.proxyUrl}/_quotagate/usage`, { headers: withKey });
  const usage = (await res.body.json()) as { policies: Array<{ name: string; used: number }> };
  return usage.policies.find((policy) => policy.name === 'hour')!.used;
}

/** A chunked response ending with the trailer `X-Usage-Units: <units>`. */
function answerWithTrailer(units: string): UpstreamHandler {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { trailer: 'X-Usage-Units' });
      res.write('tokens, ');
      res.write('more tokens');
      res.addTrailers({ 'X-Usage-Units': units });
      res.end();
    });
  };
}

describe.each(STORES)('a cost settled from the response ($name store)', ({ store }) => {
  const keyPrefixes: string[] = [];
  let upstream: RecordingUpstream;

  beforeAll(async () => {
    upstream = await startRecordingUpstream();
  });
  beforeEach(() => {
    upstream.configure({ reply: { body: 'ok' } });
  });
  afterAll(async () => {
    await upstream.close();
    const redis = await connectTestRedis('redis://127.0.0.1:6379');
    for (const keyPrefix of keyPrefixes) await deleteKeysWithPrefix(redis, keyPrefix);
    redis.disconnect();
  });

  function config(plans = PLANS, postgres?: string): string {
    const keyPrefix = testKeyPrefix('settle');
    keyPrefixes.push(keyPrefix);
    return testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans, extra: store(keyPrefix), ...(postgres === undefined ? {} : { postgres }) });
  }

  async function withGateway(body: (gw: TestGateway) => Promise<void>, plans?: string): Promise<void> {
    const gw = await startTestGateway(config(plans));
    try {
      await body(gw);
    } finally {
      await gw.gateway.shutdown();
    }
  }

  it('settles below the reserve: the response shows the reserve charged, the counter keeps the reported units', async () => {
    await withGateway(async (gw) => {
      upstream.configure({ reply: { headers: [['X-Usage-Units', '120']], body: 'done' } });
      const answer = await get(gw, '/v1/completions');
      expect(answer.status).toBe(200);
      expect(answer.headers['x-ratelimit-remaining-hour']).toBe('500');
      // The upstream's header reaches the client unchanged.
      expect(answer.headers['x-usage-units']).toBe('120');
      expect(await hourUsed(gw)).toBe(120);
      upstream.configure({ reply: { body: 'ok' } });
      // The next request sees the settled state: 1000 − 120 − 3.
      expect((await get(gw, '/x')).headers['x-ratelimit-remaining-hour']).toBe('877');
    });
  });

  it('settles above the reserve past the limit, and the next request is denied without reaching the upstream', async () => {
    await withGateway(async (gw) => {
      upstream.configure({ reply: { headers: [['X-Usage-Units', '1200']], body: 'done' } });
      const answer = await get(gw, '/v1/completions');
      expect(answer.status).toBe(200);
      expect(answer.headers['x-ratelimit-remaining-hour']).toBe('500');
      // The usage view shows the whole count, past the limit (remaining stops at 0).
      expect(await hourUsed(gw)).toBe(1200);
      const forwarded = upstream.requests.length;
      const denied = await get(gw, '/x');
      expect(denied.status).toBe(429);
      expect(JSON.parse(denied.body)).toMatchObject({ code: 'rate_limited', 'violated-policies': ['hour'] });
      expect(upstream.requests.length).toBe(forwarded);
    });
  });

  it('settles at the reserve when the header is missing, and when it is malformed', async () => {
    await withGateway(async (gw) => {
      expect((await get(gw, '/v1/completions')).status).toBe(200);
      expect(await hourUsed(gw)).toBe(500);
      upstream.configure({ reply: { headers: [['X-Usage-Units', '12.5']], body: 'done' } });
      expect((await get(gw, '/v1/completions')).status).toBe(200);
      expect(await hourUsed(gw)).toBe(1000);
    });
  });

  it('settles from a trailer at the end of a chunked response', async () => {
    await withGateway(async (gw) => {
      upstream.configure({ handler: answerWithTrailer('42') });
      const answer = await get(gw, '/v1/stream');
      expect(answer.status).toBe(200);
      expect(answer.body).toBe('tokens, more tokens');
      expect(answer.headers['x-ratelimit-remaining-hour']).toBe('500');
      expect(await hourUsed(gw)).toBe(42);
    });
  });

  it('answers 429 and forwards nothing when the reserve does not fit, whatever the upstream would report', async () => {
    await withGateway(
      async (gw) => {
        const forwarded = upstream.requests.length;
        upstream.configure({ reply: { headers: [['X-Usage-Units', '1']], body: 'done' } });
        const denied = await get(gw, '/v1/completions');
        expect(denied.status).toBe(429);
        expect(denied.headers['x-ratelimit-remaining-hour']).toBe('400');
        expect(upstream.requests.length).toBe(forwarded);
        expect(await hourUsed(gw)).toBe(0);
      },
      `  small: { limits: { hour: 400 } }\n  anonymous: { limits: { minute: 2 } }`,
    );
  });
});

describe('a settled cost in the access log, the metrics and the ledger (memory store, PostgreSQL)', () => {
  it('logs and counts reserve and settled units, and the shutdown flush writes the settled counts, past the limit too', async () => {
    const upstream = await startRecordingUpstream({ reply: { headers: [['X-Usage-Units', 'lots']], body: 'done' } });
    const database = await createTestDatabase();
    const logLines: string[] = [];
    try {
      const gw = await startTestGateway(
        testConfig({ upstreamOrigin: upstream.origin, routes: ROUTES, plans: PLANS, postgres: `  url: "${database.url}"` }),
        { database: true, logLines },
      );
      try {
        expect((await get(gw, '/v1/completions')).status).toBe(200);
        // 500 used: the reserve still fits (1000), and the report takes the hour to 1200.
        upstream.configure({ reply: { headers: [['X-Usage-Units', '700']], body: 'done' } });
        expect((await get(gw, '/v1/completions')).status).toBe(200);
        upstream.configure({ reply: { body: 'ok' } });
        expect((await get(gw, '/x')).status).toBe(429);
        const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
        expect(metrics).toContain('quotagate_cost_settlements_total{route="completions",source="reported"} 1');
        expect(metrics).toContain('quotagate_cost_settlements_total{route="completions",source="malformed"} 1');
        expect(metrics).toContain('quotagate_cost_settlement_units_total{route="completions",stage="reserved"} 1000');
        expect(metrics).toContain('quotagate_cost_settlement_units_total{route="completions",stage="settled"} 1200');
        expect(metrics).toContain('quotagate_charge_adjustments_total{result="ok"} 1');
      } finally {
        await gw.gateway.shutdown();
      }
      const access = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'access');
      expect(access.map((line) => [line.route, line.status, line.cost_reserved, line.cost_settled, line.cost_source])).toEqual([
        ['completions', 200, 500, 500, 'malformed'],
        ['completions', 200, 500, 700, 'reported'],
        ['api', 429, undefined, undefined, undefined],
      ]);
      const db = connectTestDatabase(database.url);
      try {
        expect(await usageTotalsOf(db, 'customer-1')).toEqual({ 'w:hour': 1200, 'w:day': 1200, 'w:month': 1200 });
      } finally {
        await db.close();
      }
    } finally {
      await upstream.close();
      await database.drop();
    }
  }, 60_000);
});
