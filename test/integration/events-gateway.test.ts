import { Cluster, Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import type { QuotaEvent } from '../../src/core/quota-events.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { readEventStream } from '../support/event-streams.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';

/**
 * The exactly-once figure, on the producer side: three gateway
 * processes sharing one Redis (and a 3-primary Redis Cluster), 1,000
 * concurrent requests taking a quota of 1,000 past 80 %, 95 % and 100 %
 * write exactly one event per threshold to the subject's event stream; then
 * 1,000 concurrent denials write exactly one `quota.exhausted`.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';
const SUBJECT = 'acme';

/** The Redis the three gateways share: its `store.redis` fields, a client to read it, and how to stop it. */
interface SharedRedis {
  readonly storeFields: string;
  readonly client: Redis | Cluster;
  readonly stop: () => Promise<void>;
}

async function singleRedis(): Promise<SharedRedis> {
  const client = new Redis(REDIS_URL);
  return { storeFields: `url: "${REDIS_URL}"`, client, stop: async () => client.disconnect() };
}

async function redisCluster(): Promise<SharedRedis> {
  const cluster: RedisCluster = await startRedisCluster(3);
  const client = new Cluster(cluster.nodes.map((node) => ({ host: node.split(':')[0]!, port: Number(node.split(':')[1]) })));
  return {
    storeFields: `cluster: { nodes: [${cluster.nodes.join(', ')}] }`,
    client,
    stop: async () => {
      client.disconnect();
      await cluster.stop();
    },
  };
}

for (const [name, startRedis] of [
  ['Redis 127.0.0.1:6379', singleRedis],
  ['a 3-primary Redis Cluster', redisCluster],
] as const) {
  describe(`quota events written by three gateway processes (${name})`, () => {
    const keyPrefix = testKeyPrefix('events');
    const key = generateApiKey('qg');
    let upstream: RecordingUpstream;
    let database: TestDatabase;
    let shared: SharedRedis;
    let redis: Redis | Cluster;
    const gateways: GatewayProcess[] = [];
    const client = new Agent({ connections: null, pipelining: 0 });

    beforeAll(async () => {
      [upstream, database] = await Promise.all([startRecordingUpstream({ reply: { body: 'ok' } }), createTestDatabase()]);
      shared = await startRedis();
      redis = shared.client;
      const yaml = `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store:
  type: redis
  redis: { ${shared.storeFields}, key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }
postgres:
  url: "${database.url}"
upstreams:
  # All 1,000 are forwarded: on a loaded machine they may wait for one of the 128 connections longer than the default 2 s.
  app: { url: ${upstream.origin}, queue_timeout_ms: 60000 }
routes:
  - { name: search, path_prefix: /, upstream: app, quota: search }
auth:
  api_keys:
    keys:
      - { id: k0, hash: ${hashApiKey(key)}, subject: ${SUBJECT}, plan: metered }
plans:
  metered:
    limits: { hour: 100000 }
    quotas: { search: { month: 1000 } }
    thresholds: [80, 95, 100]
logging: { level: info }
`;
      // One by one: the first migrates the database; a failure leaves only started gateways, which afterAll kills.
      for (let i = 0; i < 3; i++) gateways.push(await startGatewayProcess(yaml));
    }, 120_000);

    afterAll(async () => {
      for (const gateway of gateways) gateway.child.kill('SIGKILL');
      await upstream?.close();
      if (redis instanceof Redis) await deleteKeysWithPrefix(redis, keyPrefix);
      await shared?.stop();
      await client.close();
      await database?.drop();
    }, 60_000);

    /** The status, and the problem code of an error (so a failure says what failed). */
    async function send(gateway: GatewayProcess, path: string): Promise<number | string> {
      const res = await request(`${gateway.proxyUrl}${path}`, { headers: { 'x-api-key': key }, dispatcher: client });
      const body = await res.body.text();
      if (res.statusCode < 500) return res.statusCode;
      return `${res.statusCode} ${(JSON.parse(body) as { code?: string }).code}`;
    }

    const tally = (statuses: ReadonlyArray<number | string>) => statuses.reduce<Record<string, number>>((acc, status) => ({ ...acc, [status]: (acc[status] ?? 0) + 1 }), {});
    const summary = (events: readonly QuotaEvent[]) => events.map((event) => `${event.type}:${event.data['threshold'] ?? ''}`);

    it('of 1,000 concurrent requests crossing 80 %, 95 % and 100 %, exactly one event per threshold reaches the stream', async () => {
      const statuses = await Promise.all(Array.from({ length: 1_000 }, (_, i) => send(gateways[i % 3]!, `/q/${i}`)));
      expect(tally(statuses)).toEqual({ 200: 1_000 });
      const events = await readEventStream(redis, keyPrefix, SUBJECT);
      expect(summary(events)).toEqual(['quota.threshold:80', 'quota.threshold:95', 'quota.threshold:100']);
      // Each written by the request that reached it: the count it reached, whichever instance served it.
      expect(events.map((event) => event.data['used'])).toEqual([800, 950, 1_000]);
      expect(events.every((event) => event.data['plan'] === 'metered' && event.data['policy'] === 'search.month' && event.data['limit'] === 1_000)).toBe(true);
      expect(new Set(events.map((event) => event.id)).size).toBe(3);
    }, 90_000);

    it('of 1,000 concurrent requests against the exhausted quota, none admitted, exactly one quota.exhausted', async () => {
      const statuses = await Promise.all(Array.from({ length: 1_000 }, (_, i) => send(gateways[i % 3]!, `/d/${i}`)));
      expect(tally(statuses)).toEqual({ 429: 1_000 });
      const events = await readEventStream(redis, keyPrefix, SUBJECT);
      expect(summary(events)).toEqual(['quota.threshold:80', 'quota.threshold:95', 'quota.threshold:100', 'quota.exhausted:']);
      expect(events[3]!.data).toMatchObject({ subject: SUBJECT, plan: 'metered', policy: 'search.month', used: 1_000, limit: 1_000 });
      expect(upstream.requests.filter((r) => r.headers['x-quotagate-subject'] === SUBJECT)).toHaveLength(1_000);
    }, 90_000);
  });
}
