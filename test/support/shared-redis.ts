import { Cluster, Redis } from 'ioredis';
import { type RedisCluster, startRedisCluster } from './redis-cluster.js';

/** The machine's own Redis, shared by the tests that start several gateway processes. */
const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';

/** A Redis several gateway processes share: its `store.redis` fields, a client to read it, and how to stop it. */
export interface SharedRedis {
  readonly storeFields: string;
  readonly client: Redis | Cluster;
  readonly stop: () => Promise<void>;
}

/** The Redis at 127.0.0.1:6379 (stop only disconnects the client). */
export async function singleRedis(): Promise<SharedRedis> {
  const client = new Redis(LOCAL_REDIS_URL);
  return { storeFields: `url: "${LOCAL_REDIS_URL}"`, client, stop: async () => client.disconnect() };
}

/** A throwaway 3-primary Redis Cluster (stop shuts it down). */
export async function redisCluster(): Promise<SharedRedis> {
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

/** Both kinds, by name, for a `for` over the tests that run on each. */
export const SHARED_REDIS_KINDS = [
  ['Redis 127.0.0.1:6379', singleRedis],
  ['a 3-primary Redis Cluster', redisCluster],
] as const;
