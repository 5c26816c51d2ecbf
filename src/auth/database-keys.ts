import type { GatewayConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Database } from '../db/database.js';
import type { RedisClient } from '../redis/client.js';
import { type CacheInvalidator, LocalCacheInvalidator } from './cache-invalidation.js';
import { CachingKeyStore, type KeyLookupResult } from './caching-key-store.js';
import { CompositeKeyStore, DatabaseKeyStore } from './database-key-store.js';
import { FileKeyStore } from './file-key-store.js';
import type { ApiKeyRecord, KeyStore } from './key-store.js';
import { KeyUsageRecorder } from './key-usage-recorder.js';
import { KeyLookupThrottle } from './lookup-throttle.js';
import { RedisCacheInvalidator } from './redis-cache-invalidator.js';

/** How often accepted database keys' last_used_at is written, in ms. */
export const LAST_USED_FLUSH_INTERVAL_MS = 5_000;

export interface DatabaseKeysOptions {
  readonly config: GatewayConfig;
  /** Writes (last_used_at). */
  readonly primary: Database;
  /** findApiKeyByHash: the replica when configured. */
  readonly keyLookups: Database;
  readonly clock: Clock;
  /** With the Redis store: two connections of their own, for PUBLISH and SUBSCRIBE. Absent: invalidation stays local. */
  readonly redis?: { readonly publisher: RedisClient; readonly subscriber: RedisClient; readonly keyPrefix: string };
  readonly onLookup?: (result: KeyLookupResult) => void;
  /** Each database query of a cache miss: its duration in seconds and whether it succeeded. */
  readonly onQueryTimed?: (seconds: number, ok: boolean) => void;
  readonly onUnknownPlan?: (plan: string) => void;
  readonly onError?: (what: 'last_used_flush' | 'invalidation_subscribe', error: unknown) => void;
  /** Called when the invalidation subscription came back and the cache was cleared. */
  readonly onResubscribed?: () => void;
}

/** The key lookup path of a gateway with a database, and what must be closed with it. */
export interface DatabaseKeys {
  /** gateway.yaml keys first, then the cached database. */
  readonly keyStore: KeyStore;
  /** For the admin API and the CLI: call after each write that changes a key lookup. */
  readonly invalidator: CacheInvalidator;
  readonly cache: CachingKeyStore;
  /** For the authenticator's onKeyAccepted: batches last_used_at of database keys. */
  readonly onKeyAccepted: (record: ApiKeyRecord) => void;
  /** Resolves once invalidations from other instances are received (at once without Redis). */
  ready(timeoutMs: number): Promise<void>;
  /** Flushes last_used_at and stops listening; the caller closes the connections and databases. */
  close(): Promise<void>;
}

/**
 * The fallback of a stored plan that gateway.yaml no longer defines:
 * `auth.jwt.default_plan` when it is defined and limits something, so a
 * removed plan never turns into an unlimited one.
 */
export function fallbackPlanOf(config: GatewayConfig): string | undefined {
  const name = config.auth.jwt.default_plan;
  const plan = config.plans[name];
  if (plan === undefined) return undefined;
  return Object.values(plan.limits).some((limit) => limit !== undefined) ? name : undefined;
}

/**
 * Builds format check → (file keys) → LRU cache → negative cache →
 * per-address throttle of unknown-key queries → database,
 * with invalidation (Redis pub/sub, or local) and batched last_used_at.
 */
export function buildDatabaseKeys(options: DatabaseKeysOptions): DatabaseKeys {
  const { config } = options;
  const cacheConfig = config.auth.api_keys.cache;
  const cache = new CachingKeyStore({
    store: new DatabaseKeyStore({
      db: options.keyLookups,
      plans: new Set(Object.keys(config.plans)),
      fallbackPlan: fallbackPlanOf(config),
      ...(options.onUnknownPlan === undefined ? {} : { onUnknownPlan: options.onUnknownPlan }),
    }),
    clock: options.clock,
    maxEntries: cacheConfig.max_entries,
    ttlMs: cacheConfig.ttl_ms,
    negativeMaxEntries: cacheConfig.negative_max_entries,
    negativeTtlMs: cacheConfig.negative_ttl_ms,
    throttle: new KeyLookupThrottle({
      unknownPerSecond: config.auth.api_keys.lookup_throttle.unknown_per_second,
      maxClients: config.auth.api_keys.lookup_throttle.max_clients,
      clock: options.clock,
    }),
    ...(options.onLookup === undefined ? {} : { onLookup: options.onLookup }),
    ...(options.onQueryTimed === undefined ? {} : { onQueryTimed: options.onQueryTimed }),
  });
  const recorder = new KeyUsageRecorder({
    db: options.primary,
    clock: options.clock,
    flushIntervalMs: LAST_USED_FLUSH_INTERVAL_MS,
    onError: (error) => options.onError?.('last_used_flush', error),
  });
  const redis =
    options.redis === undefined
      ? undefined
      : RedisCacheInvalidator.start({
          cache,
          publisher: options.redis.publisher,
          subscriber: options.redis.subscriber,
          keyPrefix: options.redis.keyPrefix,
          onError: (error) => options.onError?.('invalidation_subscribe', error),
          ...(options.onResubscribed === undefined ? {} : { onResubscribed: options.onResubscribed }),
        });
  return {
    keyStore: new CompositeKeyStore([new FileKeyStore(config.auth.api_keys.keys), cache]),
    invalidator: redis ?? new LocalCacheInvalidator(cache),
    cache,
    onKeyAccepted: (record) => {
      if (record.stored === true) recorder.record(record.id);
    },
    ready: (timeoutMs) => redis?.waitUntilSubscribed(timeoutMs) ?? Promise.resolve(),
    async close() {
      redis?.close();
      await recorder.close();
    },
  };
}
