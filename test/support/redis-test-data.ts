import { Cluster, type Redis } from 'ioredis';
import { createRedisClient, type RedisClient, type RedisStoreConfig, waitUntilReady } from '../../src/redis/client.js';

/** A ready client for the Redis at `url` (1 s timeouts unless overridden); errors surface as rejected commands. */
export async function connectTestRedis(url: string, overrides: Partial<RedisStoreConfig> = {}): Promise<RedisClient> {
  const client = createRedisClient({ url, command_timeout_ms: 1_000, connect_timeout_ms: 1_000, key_prefix: 'qg', ...overrides });
  client.on('error', () => {});
  await waitUntilReady(client, 5_000);
  return client;
}

/**
 * A key prefix unique to this test run (valid as `store.redis.key_prefix`),
 * so runs sharing a Redis never see each other's counters.
 */
export function testKeyPrefix(label = 't'): string {
  return `${label}-${process.pid.toString(36)}-${Math.random().toString(36).slice(2, 10)}`.slice(0, 32);
}

/** Every key under `prefix`, on every primary of a cluster. */
export async function keysWithPrefix(client: RedisClient, prefix: string): Promise<string[]> {
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1_000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}

/** Deletes every key under `prefix`: counters set at injected times may otherwise live for weeks. */
export async function deleteKeysWithPrefix(client: RedisClient, prefix: string): Promise<void> {
  for (const key of await keysWithPrefix(client, prefix)) await client.unlink(key);
}

/** `INFO commandstats` as calls per command (`evalsha` → 12). */
export function commandCalls(info: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
  return calls;
}
