import { redisCli, type RedisServer, startRedisServer } from './redis-server.js';
import { requireTool } from './required-tool.js';
import { eventuallyAsync } from './within.js';

/** A throwaway Redis master, one replica and three sentinels on 127.0.0.1; see startSentinelGroup. */
export interface SentinelGroup {
  /** The name the sentinels know the master by (`store.redis.sentinel.master_name`). */
  readonly masterName: string;
  /** `127.0.0.1:<port>` of each sentinel (`store.redis.sentinel.sentinels`). */
  readonly sentinels: readonly string[];
  readonly sentinelPorts: readonly number[];
  /** The two data nodes: the master at start, and its replica. */
  readonly nodes: readonly RedisServer[];
  /** The port of the node the sentinels name as master now. */
  masterPort(): Promise<number>;
  /** Stops the sentinels, then the nodes, and waits for every process to exit. */
  stop(): Promise<void>;
}

const MASTER_NAME = 'qgmaster';
const READY_TIMEOUT_MS = 20_000;
/** The sentinels call the master down after this long without an answer (only SENTINEL FAILOVER is used here). */
const DOWN_AFTER_MS = 2_000;

/** `field:value` of an INFO section's text. */
export function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/**
 * Starts a master redis-server, a replica of it (`--replicaof`) and three
 * `redis-sentinel` processes (Debian's redis-sentinel package; `npm test`
 * installs it) monitoring it with quorum 2, each on a free loopback port in
 * a throwaway directory (test/support/redis-server.ts). Resolves once the
 * replica's link is up and every sentinel knows the replica and the two
 * other sentinels, i.e. once `SENTINEL FAILOVER` can promote the replica.
 * On failure, whatever was started is stopped.
 */
export async function startSentinelGroup(): Promise<SentinelGroup> {
  requireTool('redis-sentinel', ['--version'], 'redis-sentinel');
  const started: RedisServer[] = [];
  const stopAll = async () => {
    // Sentinels first, so none reconfigures a node that is going away.
    for (const server of [...started].reverse()) await server.stop().catch(() => undefined);
  };
  try {
    const master = await startRedisServer();
    started.push(master);
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    started.push(replica);
    await eventuallyAsync(async () => infoField(await redisCli(replica.port, 'INFO', 'replication'), 'master_link_status') === 'up', READY_TIMEOUT_MS, 'the replica link');
    const sentinels: RedisServer[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await startRedisServer({
        sentinelConfig: [
          'sentinel resolve-hostnames no',
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${MASTER_NAME} 10000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
        ],
      });
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    for (const sentinel of sentinels) {
      await eventuallyAsync(
        async () => {
          const status = await redisCli(sentinel.port, 'SENTINEL', 'MASTER', MASTER_NAME);
          return /\bnum-slaves\n1\b/.test(status) && /\bnum-other-sentinels\n2\b/.test(status);
        },
        READY_TIMEOUT_MS,
        `sentinel ${sentinel.port} to know the replica and the other sentinels`,
      );
    }
    return {
      masterName: MASTER_NAME,
      sentinels: sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`),
      sentinelPorts: sentinels.map((sentinel) => sentinel.port),
      nodes: [master, replica],
      async masterPort() {
        const address = await redisCli(sentinels[0]!.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME);
        return Number(address.split('\n')[1]);
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
