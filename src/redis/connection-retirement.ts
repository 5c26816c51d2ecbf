import type { RedisClient } from './client.js';

/**
 * Retires `client`'s connection after a command went unanswered, so that no
 * later reply can be matched to the wrong command.
 *
 * ioredis keeps a timed-out command in its connection's reply queue. If the
 * bytes of that command or of its reply were lost (a blackholing middlebox,
 * a partition that keeps the TCP connection open), every later reply is
 * matched to an older command, for good: each call then "times out" while
 * its own reply goes to a command that already gave up. Closing the
 * connection fails what is still in flight on it (their replies are lost
 * too) and the client reconnects by its retryStrategy, on a fresh connection
 * with an empty reply queue.
 *
 * A Cluster client is reconnected as a whole: a reply timed out on one
 * node's connection, and ioredis does not say which; every subject shares
 * one circuit breaker anyway.
 */
export function retireRedisConnection(client: RedisClient): void {
  // Already closed or closing: its replies are gone, and a new connection is coming (or none is wanted).
  if (['end', 'close', 'reconnecting', 'disconnecting'].includes(client.status)) return;
  client.disconnect(true);
}

/** Whether `error` is ioredis's own command timeout (`commandTimeout`). */
export function isRedisCommandTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}
