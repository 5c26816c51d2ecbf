/**
 * Webhook delivery through the gateway: events written to the Redis event
 * stream in the contract's format (XADD, as lua/consume.lua writes them)
 * reach a recording receiver on loopback, signed as the npm
 * `standardwebhooks` package verifies. A receiver that is down gets the
 * event dead-lettered after max_attempts, the admin API lists and
 * redelivers it, and the metrics count it; a deliverer process killed with
 * `kill -9` while events are pending leaves them to two other processes,
 * which between them deliver every one exactly once (the killed process's
 * unanswered attempts aside, every request carries the event's webhook-id).
 * A memory-store gateway delivers the events of its in-process outbox; on
 * both stores, real threshold crossings, the exhaustion and a denial spike
 * (the gateway's own events) arrive as one signed webhook each.
 */
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeStreamFields, type QuotaEvent } from '../../src/core/quota-events.js';
import { closeRedisClient, type RedisClient } from '../../src/redis/client.js';
import { eventStreamKey } from '../../src/redis/keys.js';
import { thresholdEvents } from '../contract/event-outbox.contract.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { type RecordedRequest, type RecordingUpstream, startRecordingUpstream } from '../support/recording-upstream.js';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { startTestGateway, TEST_KEY, testConfig, type TestGateway } from '../support/test-gateway.js';
import { eventually, eventuallyAsync, within } from '../support/within.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const SECRET = `whsec_${Buffer.alloc(32, 0x42).toString('base64')}`;
const TOKEN = 'webhooks-test-admin-token-7d1e';
const WAIT_MS = 30_000;

/** The webhook-id of a request the receiver got, after verifying its signature with the standardwebhooks package. */
function verifiedId(request: RecordedRequest): string {
  const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
  new Webhook(SECRET).verify(request.body.toString('utf8'), headers);
  return headers['webhook-id']!;
}

async function xadd(redis: RedisClient, keyPrefix: string, events: readonly QuotaEvent[]): Promise<void> {
  for (const event of events) await redis.xadd(eventStreamKey(keyPrefix), '*', ...encodeStreamFields(event));
}

let redis: RedisClient;
const prefixes: string[] = [];
beforeAll(async () => {
  redis = await connectTestRedis(REDIS_URL);
});
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeysWithPrefix(redis, prefix);
  await closeRedisClient(redis);
});

describe('webhooks from a gateway: dead letter, admin API, redelivery, metrics', () => {
  const keyPrefix = testKeyPrefix('hooks');
  let receiver: RecordingUpstream;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let failing = true;
  beforeAll(async () => {
    prefixes.push(keyPrefix);
    receiver = await startRecordingUpstream({ reply: () => ({ status: failing ? 500 : 204 }) });
    upstream = await startRecordingUpstream();
    const yaml = testConfig({
      upstreamOrigin: upstream.origin,
      routes: '  - { name: api, path_prefix: /, upstream: app }',
      extra: `store:
  type: redis
  redis: { url: "${REDIS_URL}", key_prefix: ${keyPrefix} }
events:
  webhooks:
    - { name: billing, url: "${receiver.origin}/hooks", secret_env: QG_TEST_WEBHOOK_SECRET, timeout_ms: 2000 }
  delivery: { max_attempts: 2, backoff_base_ms: 5, backoff_max_ms: 10, poll_interval_ms: 20 }
`,
    });
    gw = await startTestGateway(yaml, { database: true, adminToken: TOKEN, env: { QG_TEST_WEBHOOK_SECRET: SECRET } });
  }, 60_000);
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await Promise.allSettled([receiver?.close(), upstream?.close()]);
  });

  const admin = async (path: string, method = 'GET') => {
    const res = await fetch(`${gw.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, body: (await res.json()) as { items?: Array<Record<string, unknown>>; [key: string]: unknown } };
  };

  it('dead-letters an event after max_attempts, lists it, redelivers it with the same webhook-id, and counts it all', async () => {
    const [event] = thresholdEvents(1, 1, 'dl');
    await xadd(redis, keyPrefix, [event!]);
    await eventuallyAsync(async () => ((await admin('/admin/events?status=dead_lettered')).body.items ?? []).length === 1, WAIT_MS, 'a dead letter');
    expect(receiver.requests.map(verifiedId)).toEqual(['dl_0', 'dl_0']);
    const listed = (await admin('/admin/events?status=dead_lettered')).body.items![0]!;
    expect(listed).toMatchObject({ id: 'dl_0', type: 'quota.threshold', subject: 's0', status: 'dead_lettered' });
    expect(listed.deliveries).toEqual([
      { endpoint: 'billing', status: 'dead_lettered', attempts: 2, next_attempt_at: null, last_status: 500, last_error: 'http_500', delivered_at: null },
    ]);
    let metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain('quotagate_webhook_deliveries_total{endpoint="billing",outcome="failed_attempt"} 1');
    expect(metrics).toContain('quotagate_webhook_deliveries_total{endpoint="billing",outcome="dead_lettered"} 1');
    expect(metrics).toContain('quotagate_webhook_dead_letters 1');
    expect(metrics).not.toContain(receiver.origin);

    failing = false;
    const redelivered = await admin('/admin/events/dl_0/redeliver', 'POST');
    expect(redelivered.status).toBe(202);
    await eventuallyAsync(async () => ((await admin('/admin/events?status=delivered')).body.items ?? []).length === 1, WAIT_MS, 'the redelivery');
    expect(receiver.requests.map(verifiedId)).toEqual(['dl_0', 'dl_0', 'dl_0']);
    expect(new Set(receiver.requests.map((request) => request.body.toString('utf8'))).size).toBe(1);
    metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain('quotagate_webhook_deliveries_total{endpoint="billing",outcome="delivered"} 1');
    expect(metrics).toContain('quotagate_webhook_dead_letters 0');
    expect(metrics).toContain('quotagate_event_outbox_depth 0');
    expect((await admin('/admin/audit?target=event:dl_0')).body.items![0]).toMatchObject({ action: 'event.redeliver', subject: 's0' });
  });
});

describe('webhooks from a gateway on the memory store and the embedded database', () => {
  let receiver: RecordingUpstream;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  beforeAll(async () => {
    receiver = await startRecordingUpstream({ reply: { status: 200 } });
    upstream = await startRecordingUpstream();
    const yaml = testConfig({
      upstreamOrigin: upstream.origin,
      routes: '  - { name: api, path_prefix: /, upstream: app }',
      extra: `events:
  webhooks:
    - { url: "${receiver.origin}/hooks", secret_env: QG_TEST_WEBHOOK_SECRET, types: [quota.exhausted] }
  delivery: { poll_interval_ms: 20 }
`,
    });
    gw = await startTestGateway(yaml, { database: true, adminToken: TOKEN, env: { QG_TEST_WEBHOOK_SECRET: SECRET } });
  }, 60_000);
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await Promise.allSettled([receiver?.close(), upstream?.close()]);
  });

  it('delivers the events of its in-process outbox to the subscribed endpoint (named by its index), and records the others', async () => {
    const exhausted: QuotaEvent = { id: 'mem_ex_1', type: 'quota.exhausted', timestampMs: Date.now(), data: { subject: 'acme', policy: 'hour' } };
    await gw.gateway.eventOutbox.append([...thresholdEvents(2, 1, 'mem'), exhausted]);
    await eventually(() => receiver.requests.length === 1, WAIT_MS, 'the quota.exhausted delivery');
    expect(verifiedId(receiver.requests[0]!)).toBe('mem_ex_1');
    const listed = async () => {
      const res = await fetch(`${gw.adminUrl}/admin/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return ((await res.json()) as { items: Array<{ id: string; status: string; deliveries: Array<{ endpoint: string }> }> }).items;
    };
    await eventuallyAsync(async () => (await listed()).find((item) => item.id === 'mem_ex_1')?.status === 'delivered', WAIT_MS, 'the delivery recorded');
    const items = await listed();
    expect(items.map((item) => [item.id, item.status])).toEqual([
      ['mem_ex_1', 'delivered'],
      ['mem_1', 'recorded'],
      ['mem_0', 'recorded'],
    ]);
    expect(items[0]!.deliveries.map((delivery) => delivery.endpoint)).toEqual(['0']);
    expect(await gw.gateway.eventOutbox.depth()).toBe(0);
  });
});

for (const store of ['memory', 'redis'] as const) {
  describe(`threshold crossings through the gateway to signed webhooks (${store} store)`, () => {
    const keyPrefix = testKeyPrefix('hooks-e2e');
    let receiver: RecordingUpstream;
    let upstream: RecordingUpstream;
    let gw: TestGateway;
    beforeAll(async () => {
      prefixes.push(keyPrefix);
      receiver = await startRecordingUpstream({ reply: { status: 204 } });
      upstream = await startRecordingUpstream();
      const redisStore = `store:\n  type: redis\n  redis: { url: "${REDIS_URL}", key_prefix: ${keyPrefix}, command_timeout_ms: 2000 }\n`;
      const yaml = testConfig({
        upstreamOrigin: upstream.origin,
        routes: '  - { name: search, path_prefix: /search, upstream: app, quota: search }',
        plans: `  small:\n    quotas:\n      search: { month: 10 }\n    thresholds: [50, 100]\n    abuse: { denials_per_minute: 3 }\n  anonymous: { limits: { minute: 2 } }`,
        extra: `${store === 'redis' ? redisStore : ''}events:
  webhooks:
    - { name: billing, url: "${receiver.origin}/hooks", secret_env: QG_TEST_WEBHOOK_SECRET }
  delivery: { poll_interval_ms: 20 }
`,
      });
      gw = await startTestGateway(yaml, { database: true, adminToken: TOKEN, env: { QG_TEST_WEBHOOK_SECRET: SECRET } });
    }, 60_000);
    afterAll(async () => {
      await gw?.gateway.shutdown();
      await Promise.allSettled([receiver?.close(), upstream?.close()]);
    });

    it('delivers one signed event per threshold crossed, the exhaustion, and the denial spike', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 14; i++) {
        const res = await fetch(`${gw.proxyUrl}/search`, { headers: { 'x-api-key': TEST_KEY } });
        await res.arrayBuffer();
        statuses.push(res.status);
      }
      expect(statuses).toEqual([...Array(10).fill(200), 429, 429, 429, 429]);
      // Four denials in the minute: past denials_per_minute (3), one spike.
      await eventually(() => receiver.requests.length === 4, WAIT_MS, 'four webhooks');
      const payloads = receiver.requests.map((request) => {
        verifiedId(request);
        return JSON.parse(request.body.toString('utf8')) as { type: string; data: Record<string, unknown> };
      });
      expect(payloads.map((payload) => `${payload.type}:${payload.data.policy ?? ''}:${payload.data.threshold ?? ''}`).sort()).toEqual([
        'quota.exhausted:search.month:',
        'quota.threshold:search.month:100',
        'quota.threshold:search.month:50',
        'subject.denial_spike::3',
      ]);
      expect(payloads.every((payload) => payload.data.subject === 'customer-1' && payload.data.plan === 'small')).toBe(true);
      expect(new Set(receiver.requests.map((request) => request.headers['webhook-id'])).size).toBe(4);
    });
  });
}

describe('a deliverer process killed with kill -9 while events are pending', () => {
  const keyPrefix = testKeyPrefix('hooks-kill');
  let database: TestDatabase;
  let receiver: RecordingUpstream;
  const processes: GatewayProcess[] = [];
  beforeAll(async () => {
    prefixes.push(keyPrefix);
    database = await createTestDatabase();
    // Hangs at first: the first deliverer's attempts are in flight (or waiting to retry) when it dies.
    receiver = await startRecordingUpstream({ handler: () => {} });
  });
  afterAll(async () => {
    for (const gateway of processes) if (gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill('SIGKILL');
    await Promise.allSettled(processes.map((gateway) => within(gateway.exited, 10_000, 'a gateway process to exit')));
    await receiver?.close();
    await database?.drop();
  });

  const yaml = () => `
listeners:
  proxy: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
store:
  type: redis
  redis: { url: "${REDIS_URL}", key_prefix: ${keyPrefix} }
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - { name: api, path_prefix: /, upstream: app }
plans:
  small: { limits: { minute: 10 } }
postgres:
  url: "${database.url}"
events:
  webhooks:
    - { name: billing, url: "${receiver.origin}/hooks", secret_env: QG_TEST_WEBHOOK_SECRET, timeout_ms: 500 }
  delivery: { max_attempts: 100, backoff_base_ms: 50, backoff_max_ms: 200, poll_interval_ms: 20, concurrency: 3, reclaim_after_ms: 1000 }
`;

  it('leaves its pending deliveries to the other processes, which deliver every event once', async () => {
    const env = { QG_TEST_WEBHOOK_SECRET: SECRET };
    const first = await startGatewayProcess(yaml(), { env });
    processes.push(first);
    const events = thresholdEvents(8, 4, 'k');
    await xadd(redis, keyPrefix, events);
    // The first process took events in and is attempting them (the receiver holds every attempt).
    await eventually(() => receiver.requests.length >= 3, WAIT_MS, 'the first deliverer attempting');
    first.child.kill('SIGKILL');
    await within(first.exited, 10_000, 'the killed process to exit');
    const attemptsBefore = receiver.requests.length;

    // Two processes take over together: each event is answered 2xx exactly once between them.
    const delivered = new Map<string, number>();
    receiver.configure({
      reply: (record) => {
        const id = String(record.headers['webhook-id']);
        delivered.set(id, (delivered.get(id) ?? 0) + 1);
        return { status: 200 };
      },
    });
    processes.push(...(await Promise.all([startGatewayProcess(yaml(), { env }), startGatewayProcess(yaml(), { env })])));
    await eventually(() => delivered.size === events.length, WAIT_MS, 'every event delivered by the other processes');
    expect([...delivered.keys()].sort()).toEqual(events.map((event) => event.id).sort());
    expect([...delivered.values()]).toEqual(events.map(() => 1));
    // Every attempt, before and after the kill, carried a valid signature and one of the events' ids.
    const ids = new Set(events.map((event) => event.id));
    expect(receiver.requests.every((request) => ids.has(verifiedId(request)))).toBe(true);
    expect(receiver.requests.length).toBeGreaterThan(attemptsBefore);
  }, 120_000);
});
