/**
 * The webhook deliverer against real databases (PGlite and PostgreSQL), a
 * real outbox (the memory one; one Redis for two deliverers sharing it) and
 * recording receivers on loopback: signatures verified with the npm
 * `standardwebhooks` package, retries to success, a receiver that hangs,
 * dead letters and their redelivery, and two deliverers delivering each
 * event once. Backoffs are a few ms (config); every wait is a bounded poll.
 */
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_DELIVERY_DEFAULTS, type EventsConfig } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import { encodeStreamFields, type EventOutbox, type QuotaEvent } from '../../src/core/quota-events.js';
import { webhookSigningKey } from '../../src/core/webhook-signature.js';
import type { Database } from '../../src/db/database.js';
import { loadMigrations, migrate } from '../../src/db/migrations.js';
import { IN_MEMORY, PgliteDatabase } from '../../src/db/pglite-database.js';
import { getQuotaEvent, listQuotaEvents, requeueDeliveries } from '../../src/db/quota-events.js';
import { MemoryEventOutbox } from '../../src/limiter/memory-event-outbox.js';
import { closeRedisClient, type RedisClient } from '../../src/redis/client.js';
import { RedisEventOutbox } from '../../src/redis/event-outbox.js';
import { eventStreamKey } from '../../src/redis/keys.js';
import { type AttemptMetricOutcome, WebhookDeliverer } from '../../src/usage/webhook-deliverer.js';
import type { WebhookEndpoint } from '../../src/usage/webhook-sender.js';
import { thresholdEvents } from '../contract/event-outbox.contract.js';
import { type PostgresCluster, startPostgresCluster } from '../support/postgres-cluster.js';
import { connectTestDatabase, createTestDatabase, type TestDatabase } from '../support/postgres-test-database.js';
import { type RecordedRequest, type RecordingUpstream, startRecordingUpstream } from '../support/recording-upstream.js';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { eventually, eventuallyAsync } from '../support/within.js';

const SECRET = `whsec_${Buffer.alloc(32, 0x5a).toString('base64')}`;
const OTHER_SECRET = `whsec_${Buffer.alloc(32, 0x17).toString('base64')}`;
const DELIVERY: EventsConfig['delivery'] = {
  ...EVENT_DELIVERY_DEFAULTS,
  max_attempts: 5,
  backoff_base_ms: 5,
  backoff_max_ms: 20,
  concurrency: 2,
  poll_interval_ms: 10,
};
const WAIT_MS = 20_000;

function endpointOf(name: string, receiver: RecordingUpstream, options: Partial<Pick<WebhookEndpoint, 'types' | 'timeoutMs'>> & { secret?: string } = {}): WebhookEndpoint {
  return {
    name,
    url: `${receiver.origin}/hooks/${name}?token=t0ps3cret`,
    signingKey: webhookSigningKey(options.secret ?? SECRET),
    types: options.types ?? new Set(['quota.threshold', 'quota.exhausted']),
    timeoutMs: options.timeoutMs ?? 2_000,
  };
}

/** The event a receiver got, after checking its Standard Webhooks signature with the standardwebhooks package. */
function verified(request: RecordedRequest, secret = SECRET): { id: string; payload: unknown } {
  const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
  const payload = new Webhook(secret).verify(request.body.toString('utf8'), headers);
  return { id: headers['webhook-id']!, payload };
}

function deliverySuite(name: string, openDatabase: () => Promise<Database>): void {
  describe(`webhook delivery on ${name}`, () => {
    let db: Database;
    const receivers: RecordingUpstream[] = [];
    const deliverers: WebhookDeliverer[] = [];
    beforeAll(async () => {
      db = await openDatabase();
      await migrate(db, loadMigrations());
    }, 60_000);
    afterEach(async () => {
      await Promise.all(deliverers.splice(0).map((deliverer) => deliverer.stop()));
      await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
      await db.query('TRUNCATE quota_events, webhook_deliveries');
    });
    afterAll(async () => {
      await db?.close();
    });

    const receiver = async (options: Parameters<typeof startRecordingUpstream>[0] = {}) => {
      const started = await startRecordingUpstream(options);
      receivers.push(started);
      return started;
    };
    const outcomes: Array<[string, AttemptMetricOutcome]> = [];
    const startDeliverer = (outbox: EventOutbox, endpoints: WebhookEndpoint[], delivery: Partial<EventsConfig['delivery']> = {}) => {
      const deliverer = new WebhookDeliverer({
        outbox,
        db,
        endpoints,
        delivery: { ...DELIVERY, ...delivery },
        consumer: `test-${deliverers.length}`,
        clock: systemClock,
        onAttempt: (endpoint, outcome) => outcomes.push([endpoint, outcome]),
      });
      deliverers.push(deliverer);
      deliverer.start();
      return deliverer;
    };
    const deliveredIds = async () =>
      (await listQuotaEvents(db, { limit: 1000, status: 'delivered' })).items.map((item) => item.event.id).sort();

    it('posts each event, signed as standardwebhooks verifies, to every endpoint subscribed to its type, and records it', async () => {
      const [billing, audit] = [await receiver(), await receiver()];
      const outbox = new MemoryEventOutbox(100);
      const events: QuotaEvent[] = [
        ...thresholdEvents(3),
        { id: 'x_1', type: 'quota.exhausted', timestampMs: 1_780_000_100_000, data: { subject: 's0', policy: 'hour' } },
      ];
      for (const event of events) outbox.push(event);
      startDeliverer(outbox, [endpointOf('billing', billing), endpointOf('audit', audit, { types: new Set(['quota.exhausted']), secret: OTHER_SECRET })]);
      await eventuallyAsync(async () => (await deliveredIds()).length === 4, WAIT_MS, 'four events delivered');
      expect(billing.requests.map((request) => verified(request).id).sort()).toEqual(events.map((event) => event.id).sort());
      expect(audit.requests.map((request) => verified(request, OTHER_SECRET).id)).toEqual(['x_1']);
      expect(() => verified(audit.requests[0]!, SECRET)).toThrow();
      expect(verified(billing.requests.find((request) => request.headers['webhook-id'] === 'e_1')!).payload).toEqual({
        type: 'quota.threshold',
        timestamp: new Date(events[1]!.timestampMs).toISOString(),
        data: events[1]!.data,
      });
      expect(billing.requests[0]).toMatchObject({ method: 'POST', url: '/hooks/billing?token=t0ps3cret' });
      expect(billing.requests[0]!.headers['content-type']).toBe('application/json');
      expect(await outbox.depth()).toBe(0);
      expect((await getQuotaEvent(db, 'x_1'))!.deliveries.map((d) => [d.endpoint, d.status, d.attempts])).toEqual([
        ['audit', 'delivered', 1],
        ['billing', 'delivered', 1],
      ]);
    });

    it('retries a receiver failing the first 3 attempts with the same webhook-id and body, and delivers on the 4th', async () => {
      let seen = 0;
      const flaky = await receiver({ reply: () => (++seen <= 3 ? { status: 503 } : { status: 204 }) });
      const outbox = new MemoryEventOutbox(100);
      outbox.push(thresholdEvents(1)[0]!);
      outcomes.length = 0;
      startDeliverer(outbox, [endpointOf('flaky', flaky)]);
      await eventuallyAsync(async () => (await deliveredIds()).length === 1, WAIT_MS, 'the event delivered');
      expect(flaky.requests).toHaveLength(4);
      expect(new Set(flaky.requests.map((request) => verified(request).id))).toEqual(new Set(['e_0']));
      expect(new Set(flaky.requests.map((request) => request.body.toString('utf8'))).size).toBe(1);
      expect((await getQuotaEvent(db, 'e_0'))!.deliveries[0]).toMatchObject({ status: 'delivered', attempts: 4, lastStatus: 204, lastError: null });
      expect(outcomes).toEqual([
        ['flaky', 'failed_attempt'],
        ['flaky', 'failed_attempt'],
        ['flaky', 'failed_attempt'],
        ['flaky', 'delivered'],
      ]);
    });

    it('times out a receiver that hangs and retries it, while another endpoint gets every event', async () => {
      const hanging = await receiver({ handler: () => {} });
      const healthy = await receiver();
      const outbox = new MemoryEventOutbox(100);
      const events = thresholdEvents(6);
      for (const event of events) outbox.push(event);
      startDeliverer(outbox, [endpointOf('hanging', hanging, { timeoutMs: 150 }), endpointOf('healthy', healthy)], { max_attempts: 20 });
      await eventually(() => healthy.requests.length === 6, WAIT_MS, 'the healthy endpoint to get all six');
      await eventuallyAsync(
        async () => (await getQuotaEvent(db, 'e_0'))!.deliveries.some((d) => d.endpoint === 'hanging' && d.attempts >= 2 && d.lastError === 'timeout'),
        WAIT_MS,
        'the hanging endpoint timed out and retried',
      );
      expect(healthy.requests.map((request) => verified(request).id).sort()).toEqual(events.map((event) => event.id).sort());
      const states = (await listQuotaEvents(db, { limit: 10 })).items.flatMap((item) => item.deliveries.map((d) => `${d.endpoint}:${d.status}`));
      expect(states.filter((state) => state === 'healthy:delivered')).toHaveLength(6);
      expect(states.filter((state) => state === 'hanging:pending')).toHaveLength(6);
    });

    it('dead-letters after max_attempts, and delivers once redelivered', async () => {
      let failing = true;
      const down = await receiver({ reply: () => ({ status: failing ? 500 : 200 }) });
      const outbox = new MemoryEventOutbox(100);
      outbox.push(thresholdEvents(1)[0]!);
      startDeliverer(outbox, [endpointOf('down', down)], { max_attempts: 3 });
      await eventuallyAsync(async () => (await listQuotaEvents(db, { limit: 10, status: 'dead_lettered' })).items.length === 1, WAIT_MS, 'a dead letter');
      expect(down.requests).toHaveLength(3);
      expect((await getQuotaEvent(db, 'e_0'))!.deliveries[0]).toMatchObject({ status: 'dead_lettered', attempts: 3, lastStatus: 500, lastError: 'http_500' });
      failing = false;
      await db.transaction((tx) => requeueDeliveries(tx, 'e_0', ['down']));
      await eventuallyAsync(async () => (await deliveredIds()).length === 1, WAIT_MS, 'the redelivered event delivered');
      expect(down.requests).toHaveLength(4);
      expect(verified(down.requests[3]!).id).toBe('e_0');
    });

    it('drains a backlog at the receiver\'s pace, not one batch per poll', async () => {
      const fast = await receiver();
      const outbox = new MemoryEventOutbox(100);
      const events = thresholdEvents(30);
      for (const event of events) outbox.push(event);
      // One poll at start, the next a minute later: only the claims of ending attempts deliver the rest meanwhile.
      startDeliverer(outbox, [endpointOf('fast', fast)], { poll_interval_ms: 60_000, concurrency: 2 });
      await eventually(() => fast.requests.length === 30, WAIT_MS, 'all thirty delivered before the next poll');
      expect(fast.requests.map((request) => verified(request).id).sort()).toEqual(events.map((event) => event.id).sort());
    });

    it('stops taking events from the outbox while max_pending deliveries wait', async () => {
      const down = await receiver({ reply: { status: 500 } });
      const outbox = new MemoryEventOutbox(100);
      for (const event of thresholdEvents(5)) outbox.push(event);
      startDeliverer(outbox, [endpointOf('down', down)], { max_pending: 2, max_attempts: 100, backoff_base_ms: 60_000, backoff_max_ms: 60_000 });
      await eventually(() => down.requests.length >= 2, WAIT_MS, 'two attempts');
      expect((await listQuotaEvents(db, { limit: 10 })).items).toHaveLength(2);
      expect(await outbox.depth()).toBe(3);
    });
  });
}

deliverySuite('PGlite', () => PgliteDatabase.open({ dataDir: IN_MEMORY }));

let postgres: TestDatabase;
deliverySuite('PostgreSQL', async () => {
  postgres = await createTestDatabase();
  return connectTestDatabase(postgres.url);
});
afterAll(async () => {
  await postgres?.drop();
});

describe('two deliverers sharing one Redis outbox and one PostgreSQL database', () => {
  let database: TestDatabase;
  let dbs: Database[];
  let redis: RedisClient;
  const keyPrefix = testKeyPrefix('deliver');
  beforeAll(async () => {
    database = await createTestDatabase();
    dbs = [connectTestDatabase(database.url), connectTestDatabase(database.url)];
    await migrate(dbs[0]!, loadMigrations());
    redis = await connectTestRedis('redis://127.0.0.1:6379');
  }, 60_000);
  afterAll(async () => {
    await deleteKeysWithPrefix(redis, keyPrefix);
    await closeRedisClient(redis);
    await Promise.all(dbs.map((db) => db.close()));
    await database?.drop();
  });

  it('delivers each of 40 events exactly once', async () => {
    const receiver = await startRecordingUpstream();
    const events = thresholdEvents(40, 5);
    for (const event of events) await redis.xadd(eventStreamKey(keyPrefix), '*', ...encodeStreamFields(event));
    const deliverers = dbs.map(
      (db, i) =>
        new WebhookDeliverer({
          outbox: new RedisEventOutbox({ client: redis, keyPrefix }),
          db,
          endpoints: [endpointOf('billing', receiver)],
          delivery: { ...DELIVERY, concurrency: 4 },
          consumer: `gw-${i}`,
          clock: systemClock,
        }),
    );
    try {
      for (const deliverer of deliverers) deliverer.start();
      await eventually(() => receiver.requests.length >= 40, WAIT_MS, '40 deliveries');
      await eventuallyAsync(async () => (await deliverers[0]!.queueDepth()).pending === 0, WAIT_MS, 'nothing pending');
      expect(receiver.requests.map((request) => verified(request).id).sort()).toEqual(events.map((event) => event.id).sort());
      expect(await deliverers[0]!.queueDepth()).toEqual({ outbox: 0, due: 0, pending: 0, deadLettered: 0 });
    } finally {
      await Promise.all(deliverers.map((deliverer) => deliverer.stop()));
      await receiver.close();
    }
  });
});

describe('the database down while events arrive, and back', () => {
  let cluster: PostgresCluster;
  let db: Database;
  beforeAll(async () => {
    cluster = await startPostgresCluster();
    db = connectTestDatabase(cluster.url, { statementTimeoutMs: 2_000 });
    await migrate(db, loadMigrations());
  }, 90_000);
  afterAll(async () => {
    await db?.close();
    await cluster?.destroy();
  });

  it('keeps the events in the outbox, reports the failure once, and delivers every one after the database returns', async () => {
    const receiver = await startRecordingUpstream();
    const outbox = new MemoryEventOutbox(100);
    const errors: string[] = [];
    const recovered: string[] = [];
    const deliverer = new WebhookDeliverer({
      outbox,
      db,
      endpoints: [endpointOf('billing', receiver)],
      delivery: { ...DELIVERY, reclaim_after_ms: 200 },
      consumer: 'outage',
      clock: systemClock,
      onError: (what) => errors.push(what),
      onRecovered: (what) => recovered.push(what),
    });
    try {
      deliverer.start();
      await cluster.stop();
      const events = thresholdEvents(3, 1, 'down');
      await outbox.append(events);
      await eventually(() => errors.includes('intake'), WAIT_MS, 'the intake failing');
      expect(await outbox.depth()).toBe(3);
      await cluster.start();
      await eventually(() => receiver.requests.length >= 3, WAIT_MS, 'the three deliveries');
      expect(receiver.requests.map((request) => verified(request).id).sort()).toEqual(events.map((event) => event.id).sort());
      expect(errors.filter((what) => what === 'intake')).toEqual(['intake']);
      expect(recovered).toContain('intake');
      await eventuallyAsync(async () => (await outbox.depth()) === 0, WAIT_MS, 'the outbox emptied');
    } finally {
      await deliverer.stop();
      await receiver.close();
    }
  }, 60_000);
});
