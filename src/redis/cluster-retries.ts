/**
 * How a Redis Cluster client retries what a slot migration or a failover
 * answers (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, a dropped connection).
 * These are normal Cluster operation: a resharding must not fail requests.
 * So the retries are bounded by the request's store budget — the command
 * timeout, which ioredis starts once when a command is first sent and keeps
 * across its redirections — not by a small count.
 */

/** Pause before retrying a `TRYAGAIN`, `CLUSTERDOWN` or a connection lost in a failover, in ms. */
export const CLUSTER_RETRY_DELAY_MS = 20;

/**
 * The redirection limit that lets a command retry until its timeout: a
 * `TRYAGAIN` (a multi-key command while the slot's keys are split between
 * two nodes) is retried every CLUSTER_RETRY_DELAY_MS, and ioredis sends each
 * retry to a random node first, so one retry may cost two redirections
 * (that node's `MOVED`, then the owner's answer); `MOVED` and `ASK` are
 * followed at once. 16 more cover those hops; the timeout ends it anyway.
 */
export function maxClusterRedirections(commandTimeoutMs: number): number {
  return 2 * Math.ceil(commandTimeoutMs / CLUSTER_RETRY_DELAY_MS) + 16;
}
