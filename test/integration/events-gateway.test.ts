import { type Cluster, Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/core/api-key.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-process.js';
import { readEventStream } from '../support/event-streams.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { type RecordedRequest, startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { SHARED_REDIS_KINDS, type SharedRedis } from '../support/shared-redis.js';
import { eventually, eventuallyAsync } from '../support/within.js';

/**
 * The exactly-once figure, end to end: three gateway processes
 * sharing one Redis (and a 3-primary Redis Cluster), 1,000 concurrent
 * requests taking a quota of 1,000 past 80 %, 95 % and 100 % write exactly
 * one event per threshold to the subject's event stream, and the same three
 * processes (one consumer group) deliver them: a recording receiver gets
 * exactly one webhook per threshold, each signed as the npm
 * `standardwebhooks` package (an implementation independent of ours)
 * verifies; then 1,000 concurrent denials yield exactly one
 * `quota.exhausted`.
 */

const SUBJECT = 'acme';
const WEBHOOK_SECRET = `whsec_${Buffer.alloc(32, 0x5a).toString('base64')}`;

/** One event as a webhook delivered it: its `webhook-id` and payload. */
interface Delivered {
  readonly webhookId: string;
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** The event a webhook request carries, after verifying its signature with the standardwebhooks package (throws on a bad one). */
function verifiedDelivery(record: RecordedRequest): Delivered {
  const headers = Object.fromEntries(Object.entries(record.headers).map(([name, value]) => [name, String(value)]));
  const payload = new Webhook(WEBHOOK_SECRET).verify(record.body.toString('utf8'), headers) as { type: string; data: Record<string, unknown> };
  return { webhookId: headers['webhook-id']!, type: payload.type, data: payload.data };
}

for (const [name, startRedis] of SHARED_REDIS_KINDS) {
  describe(`quota events written by three gateway processes (${name})`, () => {
    const keyPrefix = testKeyPrefix('events');
    const key = generateApiKey('qg');
    let upstream: RecordingUpstream;
    let receiver: RecordingUpstream;
    let database: TestDatabase;
    let shared: SharedRedis;
    let redis: Redis | Cluster;
    const gateways: GatewayProcess[] = [];
    const client = new Agent({ connections: null, pipelining: 0 });

    beforeAll(async () => {
      [upstream, receiver, database] = await Promise.all([
        startRecordingUpstream({ reply: { body: 'ok' } }),
        startRecordingUpstream({ reply: { status: 204 } }),
        createTestDatabase(),
      ]);
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
events:
  webhooks:
    - { name: billing, url: "${receiver.origin}/hooks", secret_env: QG_TEST_WEBHOOK_SECRET }
  delivery: { poll_interval_ms: 50 }
logging: { level: info }
`;
      // One by one: the first migrates the database; a failure leaves only started gateways, which afterAll kills.
      for (let i = 0; i < 3; i++) gateways.push(await startGatewayProcess(yaml, { env: { QG_TEST_WEBHOOK_SECRET: WEBHOOK_SECRET } }));
    }, 120_000);

    afterAll(async () => {
      for (const gateway of gateways) gateway.child.kill('SIGKILL');
      await upstream?.close();
      await receiver?.close();
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
    const summary = (events: readonly Delivered[]) => events.map((event) => `${event.type}:${event.data['threshold'] ?? ''}`);

    /**
     * Every webhook the receiver got so far, once at least `count` arrived (and
     * a moment more, in which a second delivery of any of them would arrive),
     * each verified, in threshold order with `quota.exhausted` last.
     */
    async function deliveredEvents(count: number): Promise<Delivered[]> {
      await eventually(() => receiver.requests.filter((r) => r.complete).length >= count, 30_000, `${count} webhooks at the receiver`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const rank = (event: Delivered) => (event.type === 'quota.exhausted' ? 1_000 : Number(event.data['threshold']));
      return receiver.requests.map(verifiedDelivery).sort((a, b) => rank(a) - rank(b));
    }

    it('of 1,000 concurrent requests crossing 80 %, 95 % and 100 %, exactly one event per threshold reaches the receiver', async () => {
      const statuses = await Promise.all(Array.from({ length: 1_000 }, (_, i) => send(gateways[i % 3]!, `/q/${i}`)));
      expect(tally(statuses)).toEqual({ 200: 1_000 });
      const events = await deliveredEvents(3);
      expect(summary(events)).toEqual(['quota.threshold:80', 'quota.threshold:95', 'quota.threshold:100']);
      // Each written by the request that reached it: the count it reached, whichever instance served it.
      expect(events.map((event) => event.data['used'])).toEqual([800, 950, 1_000]);
      expect(events.every((event) => event.data['subject'] === SUBJECT && event.data['plan'] === 'metered' && event.data['policy'] === 'search.month' && event.data['limit'] === 1_000)).toBe(true);
      expect(new Set(events.map((event) => event.webhookId)).size).toBe(3);
      expect(receiver.requests.every((r) => r.url === '/hooks' && r.method === 'POST')).toBe(true);
    }, 90_000);

    it('of 1,000 concurrent requests against the exhausted quota, none admitted, exactly one quota.exhausted reaches the receiver', async () => {
      const statuses = await Promise.all(Array.from({ length: 1_000 }, (_, i) => send(gateways[i % 3]!, `/d/${i}`)));
      expect(tally(statuses)).toEqual({ 429: 1_000 });
      const events = await deliveredEvents(4);
      expect(summary(events)).toEqual(['quota.threshold:80', 'quota.threshold:95', 'quota.threshold:100', 'quota.exhausted:']);
      expect(events[3]!.data).toMatchObject({ subject: SUBJECT, plan: 'metered', policy: 'search.month', used: 1_000, limit: 1_000 });
      expect(new Set(events.map((event) => event.webhookId)).size).toBe(4);
      expect(upstream.requests.filter((r) => r.headers['x-quotagate-subject'] === SUBJECT)).toHaveLength(1_000);
    }, 90_000);

    it('leaves nothing undelivered in the stream: each delivered entry is acknowledged and deleted', async () => {
      // Acknowledged once the delivery is recorded in PostgreSQL, a moment after the receiver answered.
      await eventuallyAsync(async () => (await readEventStream(redis, keyPrefix, SUBJECT)).length === 0, 10_000, 'the stream to empty');
      expect(await readEventStream(redis, keyPrefix, SUBJECT)).toEqual([]);
    });
  });
}
