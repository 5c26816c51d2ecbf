import type { GatewayConfig } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import type { Database } from '../db/database.js';
import { RedisLimiter } from '../limiter/redis-limiter.js';
import { closeRedisClient, createRedisClient, waitUntilReady } from '../redis/client.js';
import { readCounterCounts } from '../redis/usage-markers.js';
import { DatabaseUsageLedger } from '../usage/database-ledger.js';
import { LedgerFlusher } from '../usage/ledger-flusher.js';
import { verifyUsage } from '../usage/usage-verify.js';
import type { CommandIo } from './io.js';

/**
 * The work of `quotagate usage verify` on an open, migrated database: a
 * flush of the configured Redis store into it (as a gateway's flusher does,
 * leftovers included), then the comparison. Prints one line per drift,
 * `<subject> <counterId> <period start> ledger=<n> store=<n>`, then a
 * summary; resolves to the exit code: 0 when equal, 1 on a drift. The
 * memory store lives inside the gateway's process, so there is nothing to
 * compare with from here (1, with a message).
 */
export async function verifyUsageAgainstStore(
  db: Database,
  config: GatewayConfig,
  subject: string | undefined,
  io: CommandIo,
): Promise<number> {
  const redis = config.store.type === 'redis' ? config.store.redis : undefined;
  if (redis === undefined) {
    io.stderr('usage verify: needs the Redis store (store.type: redis); the memory store lives inside the gateway process');
    return 1;
  }
  const client = createRedisClient(redis);
  client.on('error', () => {});
  const ledger = new DatabaseUsageLedger(db);
  const store = new RedisLimiter({ client, keyPrefix: redis.key_prefix, ledger, commandTimeoutMs: redis.command_timeout_ms });
  try {
    await waitUntilReady(client, redis.connect_timeout_ms);
    const flusher = new LedgerFlusher({ source: store, sink: ledger, clock: systemClock, intervalMs: 60_000, leftoverSweepIntervalMs: 0 });
    const result = await verifyUsage({
      db,
      flush: () => flusher.flush({ includeLeftovers: true }),
      storeCounts: (id, periods) => readCounterCounts(client, redis.key_prefix, id, periods),
      nowMs: systemClock.now(),
      subject,
    });
    for (const drift of result.drifts) {
      io.stdout(`${drift.subject} ${drift.counterId} ${new Date(drift.periodStartMs).toISOString()} ledger=${drift.ledger} store=${drift.store}`);
    }
    io.stdout(
      `${result.drifts.length === 0 ? 'in sync' : `${result.drifts.length} drift${result.drifts.length === 1 ? '' : 's'}`}: ` +
        `${result.counters} counter${result.counters === 1 ? '' : 's'} of ${result.subjects} subject${result.subjects === 1 ? '' : 's'} compared`,
    );
    return result.drifts.length === 0 ? 0 : 1;
  } finally {
    await store.close();
    await closeRedisClient(client).catch(() => {});
  }
}
