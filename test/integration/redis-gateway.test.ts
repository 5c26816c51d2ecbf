import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { counterKey } from '../../src/redis/keys.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { startTestGateway, testConfig, TEST_KEY } from '../support/test-gateway.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

/** The hour (epoch ms of its start) Redis's own clock is in: the clock consume.lua counts windows by. */
async function redisHour(redis: Redis): Promise<number> {
  const [seconds] = await redis.time();
  return Math.floor(Number(seconds) / 3_600) * 3_600_000;
}

function gatewayYaml(options: { upstreamOrigin: string; keyPrefix: string; keys: string[]; limits: string }): string {
  return `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store:
  type: redis
  redis: { url: "${REDIS_URL}", key_prefix: ${options.keyPrefix}, command_timeout_ms: 2000 }
upstreams:
  app: { url: ${options.upstreamOrigin} }
routes:
  - { name: api, path_prefix: /, upstream: app }
auth:
  api_keys:
    keys:
${options.keys.map((key, i) => `      - { id: k${i}, hash: ${hashApiKey(key)}, subject: subject-${i}, plan: metered }`).join('\n')}
plans:
  metered: { limits: ${options.limits} }
logging: { level: info }
`;
}

describe('Redis store shared by three gateway processes', () => {
  const keyPrefix = testKeyPrefix('overadmit');
  // One key per round, and a spare for each: a round that straddles an hour is run again on its spare.
  const keys = Array.from({ length: 6 }, () => generateApiKey('qg'));
  let upstream: RecordingUpstream;
  let gateways: GatewayProcess[] = [];
  let redis: Redis;
  const client = new Agent({ connections: null, pipelining: 0 });

  beforeAll(async () => {
    upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    redis = new Redis(REDIS_URL);
    const yaml = gatewayYaml({
      upstreamOrigin: upstream.origin,
      keyPrefix,
      keys,
      limits: '{ hour: 100, day: 1000, month: 10000 }',
    });
    // Started one by one, so a failure leaves only already-started gateways, which afterAll kills.
    for (let i = 0; i < 3; i++) gateways.push(await startGatewayProcess(yaml));
  }, 60_000);

  afterAll(async () => {
    for (const gateway of gateways) gateway.child.kill('SIGKILL');
    await upstream.close();
    await deleteKeysWithPrefix(redis, keyPrefix);
    redis.disconnect();
    await client.close();
  });

  /** 1,000 concurrent requests with key `index`, spread over the three gateways; the statuses tallied. */
  async function round(index: number): Promise<Record<number, number>> {
    const statuses = await Promise.all(
      Array.from({ length: 1_000 }, async (_, i) => {
        const res = await request(`${gateways[i % 3]!.proxyUrl}/work/${i}`, {
          headers: { 'x-api-key': keys[index]! },
          dispatcher: client,
        });
        await res.body.dump();
        return res.statusCode;
      }),
    );
    return statuses.reduce<Record<number, number>>((acc, status) => {
      acc[status] = (acc[status] ?? 0) + 1;
      return acc;
    }, {});
  }

  it.each([0, 1, 2])(
    'round %i: of 1,000 concurrent requests for a key limited to 100 an hour, exactly 100 reach the upstream',
    async (roundIndex) => {
      // The claim is about one hour of Redis's clock. A round that straddles an hour
      // boundary (Redis TIME before and after differ in hour) is run again, once, on a
      // spare key: the next one cannot straddle another (a round takes seconds).
      let index = roundIndex;
      const hourBefore = await redisHour(redis);
      let counts = await round(index);
      if ((await redisHour(redis)) !== hourBefore) {
        index = roundIndex + 3;
        counts = await round(index);
      }
      const subject = `subject-${index}`;
      expect(counts).toEqual({ 200: 100, 429: 900 });
      expect(upstream.requests.filter((r) => r.headers['x-quotagate-subject'] === subject)).toHaveLength(100);
      // Denials charged nothing: every window reads exactly the admitted count.
      for (const window of ['hour', 'day', 'month']) {
        expect(await redis.hget(counterKey(keyPrefix, subject, `w:${window}`), 'n')).toBe('100');
      }
    },
    60_000,
  );
});

describe('Redis store through the gateway', () => {
  it('is all or nothing: at 5 an hour and 8 a day, 7 requests admit 5 and the day counter reads 5', async () => {
    const keyPrefix = testKeyPrefix('aon');
    const upstream = await startRecordingUpstream({ reply: { body: 'ok' } });
    const redis = new Redis(REDIS_URL);
    const gw = await startTestGateway(
      testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: api, path_prefix: /, upstream: app }',
        plans: '  small: { limits: { hour: 5, day: 8 } }',
        extra: `store:\n  type: redis\n  redis: { url: "${REDIS_URL}", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\n`,
      }),
      // The store's windows on the test's clock (FIXED_NOW_MS, mid-hour): no real hour boundary can split the run.
      { redisOnTestClock: true },
    );
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) {
        const res = await request(`${gw.proxyUrl}/x`, { headers: { 'x-api-key': TEST_KEY } });
        await res.body.dump();
        statuses.push(res.statusCode);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      expect(await redis.hget(counterKey(keyPrefix, 'customer-1', 'w:day'), 'n')).toBe('5');
      expect(await redis.hget(counterKey(keyPrefix, 'customer-1', 'w:hour'), 'n')).toBe('5');
      expect(upstream.requests).toHaveLength(5);
    } finally {
      await gw.gateway.shutdown();
      await upstream.close();
      await deleteKeysWithPrefix(redis, keyPrefix);
      redis.disconnect();
    }
  });
});
