import type { Redis } from 'ioredis';
import { isClusterClient, type RedisClient } from './client.js';

/** Longest a read waits for one node's INFO, in ms. */
const INFO_TIMEOUT_MS = 500;

/** `errorstat_NOSCRIPT:count=N` from `INFO errorstats`, or 0 when absent. */
export function noscriptCount(errorstats: string): number {
  const match = /^errorstat_NOSCRIPT:count=(\d+)/m.exec(errorstats);
  return match === null ? 0 : Number(match[1]);
}

/**
 * How many EVALSHA calls Redis has answered NOSCRIPT (its script cache was
 * flushed, or a failover reached a node without the script), summed over
 * the primaries `client` uses that are connected; a node that does not
 * answer INFO within 500 ms counts 0. ioredis reloads the script by itself
 * on each, so every one is a reload.
 *
 * ioredis offers no hook to count reloads client-side, so the count is
 * Redis's own (`INFO errorstats`): shared by every gateway instance on that
 * Redis, reset when Redis restarts. Read it when Prometheus scrapes
 * (metrics/noscript-gauge.ts), never on the request path.
 */
export async function readNoscriptErrors(client: RedisClient): Promise<number> {
  const nodes: Redis[] = isClusterClient(client) ? client.nodes('master') : [client];
  let total = 0;
  for (const node of nodes) {
    if (node.status !== 'ready') continue;
    const info = await Promise.race([
      node.info('errorstats'),
      new Promise<string>((resolve) => setTimeout(() => resolve(''), INFO_TIMEOUT_MS).unref()),
    ]).catch(() => '');
    total += noscriptCount(info);
  }
  return total;
}
