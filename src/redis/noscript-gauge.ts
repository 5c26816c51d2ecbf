import { Cluster, type Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import type { RedisClient } from './client.js';

/** Longest a scrape waits for one node's INFO, in ms. */
const INFO_TIMEOUT_MS = 500;

/** `errorstat_NOSCRIPT:count=N` from `INFO errorstats`, or 0 when absent. */
export function noscriptCount(errorstats: string): number {
  const match = /^errorstat_NOSCRIPT:count=(\d+)/m.exec(errorstats);
  return match === null ? 0 : Number(match[1]);
}

/**
 * `quotagate_redis_noscript_errors`: how many EVALSHA calls Redis has
 * answered NOSCRIPT (its script cache was flushed, or a failover reached a
 * node without the script), summed over the primaries this gateway uses.
 * ioredis reloads the script by itself on each, so every one is a reload.
 *
 * ioredis offers no hook to count reloads client-side, so the count is read
 * from Redis's own `INFO errorstats` when Prometheus scrapes — never on the
 * request path. It is the server's count, shared by every gateway instance
 * on that Redis, and resets when Redis restarts.
 */
export function registerNoscriptGauge(registry: Registry, client: RedisClient): void {
  new Gauge({
    name: 'quotagate_redis_noscript_errors',
    help: 'EVALSHA calls Redis answered NOSCRIPT (each one a script reload), from INFO errorstats of the primaries in use.',
    registers: [registry],
    async collect() {
      const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
      let total = 0;
      for (const node of nodes) {
        if (node.status !== 'ready') continue;
        const info = await Promise.race([
          node.info('errorstats'),
          new Promise<string>((resolve) => setTimeout(() => resolve(''), INFO_TIMEOUT_MS).unref()),
        ]).catch(() => '');
        total += noscriptCount(info);
      }
      this.set(total);
    },
  });
}
