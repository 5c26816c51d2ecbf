import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossedSpike } from '../../src/core/abuse.js';
import { decodeStreamEntry, type QuotaEvent } from '../../src/core/quota-events.js';
import { BlockedSubjects } from '../../src/core/subject-blocks.js';
import { closeRedisClient, createRedisClient, isClusterClient, type RedisClient, type RedisStoreConfig, waitUntilReady } from '../../src/redis/client.js';
import { clusterSlotOf } from '../../src/redis/cluster-slots.js';
import { RedisDenialCounter } from '../../src/redis/denial-counters.js';
import { appendEventsToStream } from '../../src/redis/event-append.js';
import { eventStreamKey, subjectBlockKey, subjectHashTag } from '../../src/redis/keys.js';
import { RedisSubjectBlocks } from '../../src/redis/subject-blocks.js';
import { type RedisCluster, startRedisCluster } from '../support/redis-cluster.js';
import { deleteKeysWithPrefix, testKeyPrefix } from '../support/redis-test-data.js';
import { eventually } from '../support/within.js';

/**
 * The Redis side of denial spikes, on one Redis and on a 3-primary Cluster:
 * the fleet's denial counter (one crossing however the additions
 * interleave), the events' stream (the subject slot's), and blocks shared
 * through the key, the index and the channel (a store started later loads them).
 */
const MINUTE = Date.UTC(2026, 5, 15, 10, 30);

describe.each(['one Redis', 'a Redis Cluster'] as const)('denial spikes on %s', (topology) => {
  const keyPrefix = testKeyPrefix('spikes');
  let cluster: RedisCluster | undefined;
  let config: Omit<RedisStoreConfig, 'probe_interval_ms'>;
  const clients: RedisClient[] = [];
  const stores: RedisSubjectBlocks[] = [];

  const connect = async (): Promise<RedisClient> => {
    const client = createRedisClient(config);
    client.on('error', () => {});
    clients.push(client);
    await waitUntilReady(client, 30_000);
    return client;
  };
  const startStore = async (client: RedisClient) => {
    const blocked = new BlockedSubjects();
    const store = RedisSubjectBlocks.start({ client, subscriber: await connect(), keyPrefix, blocked, nowMs: () => MINUTE });
    stores.push(store);
    await store.waitUntilSubscribed(10_000);
    return { store, blocked };
  };

  beforeAll(async () => {
    if (topology === 'a Redis Cluster') cluster = await startRedisCluster(3);
    config = {
      ...(cluster === undefined ? { url: 'redis://127.0.0.1:6379' } : { cluster: { nodes: [...cluster.nodes] } }),
      command_timeout_ms: 2_000,
      connect_timeout_ms: 2_000,
      key_prefix: keyPrefix,
    } as Omit<RedisStoreConfig, 'probe_interval_ms'>;
  }, 90_000);

  afterAll(async () => {
    for (const store of stores) store.close();
    if (cluster === undefined && clients[0] !== undefined) await deleteKeysWithPrefix(clients[0], keyPrefix);
    await Promise.allSettled(clients.map((client) => closeRedisClient(client)));
    await cluster?.stop();
  }, 30_000);

  it('adds every instance\'s denials to one total per subject and minute, and exactly one addition crosses the threshold', async () => {
    const [a, b] = [new RedisDenialCounter(await connect(), keyPrefix), new RedisDenialCounter(await connect(), keyPrefix)];
    const rule = { denialsPerMinute: 5, action: 'notify' as const, blockMs: 1 };
    const additions = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).add([{ subject: 'flood', minuteMs: MINUTE, count: 1 }, { subject: `other-${i}`, minuteMs: MINUTE, count: 2 }]));
    const totals = (await Promise.all(additions)).map(([flood]) => flood!);
    expect([...totals].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(totals.filter((total) => crossedSpike(rule, total - 1, total))).toEqual([6]);
    // Another minute counts apart.
    expect(await a.add([{ subject: 'flood', minuteMs: MINUTE + 60_000, count: 3 }])).toEqual([3]);
  });

  it("appends an event to the stream of its subject's slot, in the contract's format", async () => {
    const client = await connect();
    const event: QuotaEvent = { id: 'denial_spike:abc:1', type: 'subject.denial_spike', timestampMs: MINUTE, data: { subject: 'flood', denials: 6 } };
    await appendEventsToStream(client, keyPrefix, [event]);
    const key = eventStreamKey(keyPrefix, isClusterClient(client) ? clusterSlotOf(subjectHashTag('flood')) : undefined);
    const entries = await client.xrange(key, '-', '+');
    expect(entries.map(([, fields]) => decodeStreamEntry(fields))).toEqual([event]);
  });

  it('shares a block with every store, one started later included, until it is lifted', async () => {
    const a = await startStore(await connect());
    const b = await startStore(await connect());
    await a.store.block('flood', MINUTE + 600_000);
    expect(a.blocked.blockedUntil('flood', MINUTE)).toBe(MINUTE + 600_000);
    await eventually(() => b.blocked.blockedUntil('flood', MINUTE) !== undefined, 5_000, 'the block at b');
    const reader = await connect();
    expect(await reader.get(subjectBlockKey(keyPrefix, 'flood'))).toBe(String(MINUTE + 600_000));
    // The key's TTL runs on the store's clock (MINUTE here): 600 s from it.
    expect(await reader.pttl(subjectBlockKey(keyPrefix, 'flood'))).toBeGreaterThan(590_000);
    const c = await startStore(await connect());
    expect(c.blocked.blockedUntil('flood', MINUTE)).toBe(MINUTE + 600_000);
    expect(await b.store.unblock('flood')).toBe(true);
    await eventually(() => a.blocked.size === 0 && c.blocked.size === 0, 5_000, 'the unblock at a and c');
    expect(await reader.exists(subjectBlockKey(keyPrefix, 'flood'))).toBe(0);
    expect(await a.store.unblock('flood')).toBe(false);
    const d = await startStore(await connect());
    expect(d.blocked.size).toBe(0);
  });
});
