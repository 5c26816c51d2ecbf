import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { redisCli, type RedisServer, startRedisServer } from './redis-server.js';

const run = promisify(execFile);

/** A throwaway Redis Cluster of primaries on 127.0.0.1; see startRedisCluster. */
export interface RedisCluster {
  /** `127.0.0.1:<port>` of every primary, the seed nodes for `store.redis.cluster.nodes`. */
  readonly nodes: readonly string[];
  readonly ports: readonly number[];
  /** Stops every node and waits for them to exit. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

/**
 * Starts `primaries` redis-servers with cluster mode on free loopback ports
 * (each with its bus port + 10000 free), joins them with
 * `redis-cli --cluster create … --cluster-replicas 0`, and resolves once every
 * node reports `cluster_state:ok`. On failure, the nodes started so far are
 * stopped. Nodes left by a crashed run are reaped by startRedisServer.
 */
export async function startRedisCluster(primaries = 3): Promise<RedisCluster> {
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((server) => server.stop()));
  };
  try {
    for (let i = 0; i < primaries; i++) {
      servers.push(
        await startRedisServer({
          clusterBus: true,
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
        }),
      );
    }
    const nodes = servers.map((server) => `127.0.0.1:${server.port}`);
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: READY_TIMEOUT_MS,
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const server of servers) {
      while (!/cluster_state:ok/.test(await redisCli(server.port, 'CLUSTER', 'INFO'))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${server.port} not ok after ${READY_TIMEOUT_MS} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    return { nodes, ports: servers.map((server) => server.port), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
