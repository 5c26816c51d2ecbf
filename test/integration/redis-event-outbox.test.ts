import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeStreamFields, type QuotaEvent } from '../../src/core/quota-events.js';
import { closeRedisClient, createRedisClient, type RedisClient, waitUntilReady } from '../../src/redis/client.js';
import { clusterSlotOf } from '../../src/redis/cluster-slots.js';
import { RedisEventOutbox } from '../../src/redis/event-outbox.js';
import { eventStreamKey, usageMarkerKey } from '../../src/redis/keys.js';
import { MemoryEventOutbox } from '../../src/limiter/memory-event-outbox.js';
import { eventOutboxContract, thresholdEvents } from '../contract/event-outbox.contract.js';
import { type RedisCluster, startRedisCluster } from '../support/redis-cluster.js';
import { connectTestRedis, deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

/** XADD of each event in the contract's format (as lua/consume.lua writes it) to its subject slot's stream, or the one stream. */
async function xaddAsScript(client: RedisClient, keyPrefix: string, events: readonly QuotaEvent[], cluster: boolean): Promise<void> {
  for (const event of events) {
    const subject = String(event.data.subject);
    const stream = cluster ? eventStreamKey(keyPrefix, clusterSlotOf(usageMarkerKey(keyPrefix, subject))) : eventStreamKey(keyPrefix);
    await client.xadd(stream, '*', ...encodeStreamFields(event));
  }
}

eventOutboxContract('MemoryEventOutbox', async () => {
  const outbox = new MemoryEventOutbox(1_000);
  return { outbox, produce: async (events) => events.forEach((event) => outbox.push(event)) };
});

describe('RedisEventOutbox on one Redis', () => {
  let client: RedisClient;
  const prefixes: string[] = [];
  beforeAll(async () => {
    client = await connectTestRedis(REDIS_URL);
  });
  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeysWithPrefix(client, prefix);
    await closeRedisClient(client);
  });
  const open = (keyPrefix = testKeyPrefix('outbox')) => {
    prefixes.push(keyPrefix);
    return new RedisEventOutbox({ client, keyPrefix });
  };

  eventOutboxContract('RedisEventOutbox (one Redis)', async () => {
    const keyPrefix = testKeyPrefix('outbox');
    return { outbox: open(keyPrefix), produce: (events) => xaddAsScript(client, keyPrefix, events, false) };
  });

  it('reads entries written before its consumer group existed, and shares the group with another instance', async () => {
    const keyPrefix = testKeyPrefix('outbox');
    await xaddAsScript(client, keyPrefix, thresholdEvents(4), false);
    const [a, b] = [open(keyPrefix), open(keyPrefix)];
    const first = await a.claim('gw-a', 2, 60_000);
    const second = await b.claim('gw-b', 10, 60_000);
    expect([...first, ...second].map((entry) => entry.event.id)).toEqual(['e_0', 'e_1', 'e_2', 'e_3']);
    expect(await client.xinfo('GROUPS', eventStreamKey(keyPrefix))).toHaveLength(1);
  });

  it('drops an entry that is not an event (foreign or damaged) instead of blocking the queue', async () => {
    const keyPrefix = testKeyPrefix('outbox');
    const outbox = open(keyPrefix);
    await client.xadd(eventStreamKey(keyPrefix), '*', 'id', 'x', 'type', 'not.a.type', 'ts', '1', 'data', '{}');
    await xaddAsScript(client, keyPrefix, thresholdEvents(1), false);
    expect((await outbox.claim('c1', 10, 60_000)).map((entry) => entry.event.id)).toEqual(['e_0']);
    expect(await outbox.depth()).toBe(1);
  });

  it('makes its group again when the stream was lost (a flushed Redis)', async () => {
    const keyPrefix = testKeyPrefix('outbox');
    const outbox = open(keyPrefix);
    await xaddAsScript(client, keyPrefix, thresholdEvents(1), false);
    expect(await outbox.claim('c1', 10, 60_000)).toHaveLength(1);
    await client.del(eventStreamKey(keyPrefix));
    await client.xadd(eventStreamKey(keyPrefix), '*', ...encodeStreamFields(thresholdEvents(1, 1, 'after')[0]!));
    expect(await outbox.claim('c1', 10, 60_000)).toEqual([]);
    expect((await outbox.claim('c1', 10, 60_000)).map((entry) => entry.event.id)).toEqual(['after_0']);
  });
});

describe('RedisEventOutbox on a 3-primary Redis Cluster', () => {
  let cluster: RedisCluster | undefined;
  let client: RedisClient;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    client = createRedisClient({ cluster: { nodes: [...cluster.nodes] }, command_timeout_ms: 2_000, connect_timeout_ms: 2_000, key_prefix: 'qg' });
    client.on('error', () => {});
    await waitUntilReady(client, 30_000);
  }, 90_000);
  afterAll(async () => {
    if (client !== undefined) await closeRedisClient(client);
    await cluster?.stop();
  }, 30_000);

  // 12 subjects: their events go to the streams of several slots, on every primary.
  eventOutboxContract(
    'RedisEventOutbox (Cluster)',
    async () => {
      const keyPrefix = testKeyPrefix('outbox');
      return { outbox: new RedisEventOutbox({ client, keyPrefix, streamRefreshMs: 0 }), produce: (events) => xaddAsScript(client, keyPrefix, events, true) };
    },
    { subjects: 12 },
  );

  it('finds the stream of every slot that has events, on every primary', async () => {
    const keyPrefix = testKeyPrefix('outbox');
    const events = thresholdEvents(24, 12);
    await xaddAsScript(client, keyPrefix, events, true);
    const slots = new Set(events.map((event) => clusterSlotOf(usageMarkerKey(keyPrefix, String(event.data.subject)))));
    expect(slots.size).toBeGreaterThan(3);
    const outbox = new RedisEventOutbox({ client, keyPrefix });
    expect(await outbox.depth()).toBe(24);
    const claimed = await outbox.claim('c1', 100, 60_000);
    expect(claimed.map((entry) => entry.event.id).sort()).toEqual(events.map((event) => event.id).sort());
    // Within one slot's stream, in the order they were written.
    const ofSubject = claimed.filter((entry) => entry.event.data.subject === 's0').map((entry) => entry.event.id);
    expect(ofSubject).toEqual(['e_0', 'e_12']);
  });
});
