import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CachingKeyStore } from '../../src/auth/caching-key-store.js';
import type { ApiKeyRecord, KeyStore } from '../../src/auth/key-store.js';
import { RedisCacheInvalidator } from '../../src/auth/redis-cache-invalidator.js';
import { systemClock } from '../../src/core/clock.js';
import { closeRedisClient, waitUntilReady, createRedisClient, type RedisClient } from '../../src/redis/client.js';
import { type RedisCluster, startRedisCluster } from '../support/redis-cluster.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { eventually } from '../support/within.js';

/** Two instances' key caches joined by Redis pub/sub, through a Redis restart. */

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const records = new Map<string, ApiKeyRecord>([
  [A, { id: 'ka', subject: 'acme', plan: 'pro' }],
  [B, { id: 'kb', subject: 'acme', plan: 'pro' }],
]);
const store: KeyStore = { findByHash: (hash) => Promise.resolve(records.get(hash)) };

function instance(target: { url: string } | { cluster: { nodes: string[] } }, clients: RedisClient[]) {
  const config = { ...target, command_timeout_ms: 1_000, connect_timeout_ms: 2_000, key_prefix: 'qginv' };
  const publisher = createRedisClient(config);
  const subscriber = createRedisClient(config);
  for (const client of [publisher, subscriber]) client.on('error', () => {});
  clients.push(publisher, subscriber);
  const cache = new CachingKeyStore({ store, clock: systemClock, maxEntries: 100, ttlMs: 600_000, negativeMaxEntries: 100, negativeTtlMs: 600_000 });
  let resubscribed = 0;
  const invalidator = RedisCacheInvalidator.start({ cache, publisher, subscriber, keyPrefix: 'qginv', onResubscribed: () => resubscribed++ });
  return { cache, invalidator, publisher, resubscribed: () => resubscribed };
}

describe('RedisCacheInvalidator', () => {
  let redis: RedisServer;
  const clients: RedisClient[] = [];
  let one: ReturnType<typeof instance>;
  let two: ReturnType<typeof instance>;

  beforeAll(async () => {
    redis = await startRedisServer();
    one = instance({ url: redis.url }, clients);
    two = instance({ url: redis.url }, clients);
    await Promise.all([one.invalidator.waitUntilSubscribed(5_000), two.invalidator.waitUntilSubscribed(5_000)]);
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((client) => closeRedisClient(client)));
    await redis?.stop();
  });

  it('drops a changed key, and every key of a changed subject, on the other instance within a second', async () => {
    await Promise.all([two.cache.findByHash(A), two.cache.findByHash(B)]);
    expect(two.cache.size).toBe(2);
    await one.invalidator.keyChanged(A);
    await eventually(() => two.cache.size === 1, 1_000, 'the key to leave the other cache');
    await two.cache.findByHash(A);
    await one.invalidator.subjectChanged('acme');
    await eventually(() => two.cache.size === 0, 1_000, 'the subject to leave the other cache');
  });

  it('clears the whole cache when the subscription comes back after Redis was away', async () => {
    await two.cache.findByHash(A);
    const port = redis.port;
    await redis.stop();
    redis = await startRedisServer({ port });
    await eventually(() => two.resubscribed() >= 1, 10_000, 'the subscriber to come back');
    expect(two.cache.size).toBe(0);
    await two.cache.findByHash(B);
    await eventually(() => one.resubscribed() >= 1, 10_000, 'the other subscriber to come back');
    // The publisher is a connection of its own (no offline queue): it may come back after the subscriber.
    await waitUntilReady(one.publisher, 10_000);
    await one.invalidator.keyChanged(B);
    await eventually(() => two.cache.size === 0, 1_000, 'invalidations to flow again');
  }, 30_000);
});

describe('RedisCacheInvalidator on a 3-primary Redis Cluster', () => {
  let cluster: RedisCluster | undefined;
  const clients: RedisClient[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled(clients.map((client) => closeRedisClient(client)));
    await cluster?.stop();
  }, 30_000);

  it('drops a changed key on the other instance within a second (PUBLISH reaches every node)', async () => {
    // Each instance seeds from a different node, as instances spread over a cluster would.
    const one = instance({ cluster: { nodes: [cluster!.nodes[0]!] } }, clients);
    const two = instance({ cluster: { nodes: [cluster!.nodes[2]!] } }, clients);
    // A fresh ioredis Cluster client has been seen to take up to ~12 s to become
    // ready on a loaded 2-core machine (no errors; it gets there), so allow 30 s.
    await Promise.all([one.invalidator.waitUntilSubscribed(30_000), two.invalidator.waitUntilSubscribed(30_000)]);
    await waitUntilReady(one.publisher, 30_000);
    await two.cache.findByHash(A);
    expect(two.cache.size).toBe(1);
    await one.invalidator.keyChanged(A);
    await eventually(() => two.cache.size === 0, 1_000, 'the key to leave the other cache');
  }, 90_000);
});
