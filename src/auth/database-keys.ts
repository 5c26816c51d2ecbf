import type { GatewayConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Database } from '../db/database.js';
import type { ReplicaVerdict } from '../db/replica-lag.js';
import { ReplicaMonitor } from '../db/replica-monitor.js';
import type { RedisClient } from '../redis/client.js';
import { type CacheInvalidator, type InvalidatableKeyCache, LocalCacheInvalidator } from './cache-invalidation.js';
import { CachingKeyStore, type KeyLookupResult } from './caching-key-store.js';
import { CompositeKeyStore, DatabaseKeyStore, type KeyLookupServed } from './database-key-store.js';
import { FileKeyStore } from './file-key-store.js';
import type { ApiKeyRecord, KeyStore } from './key-store.js';
import { KeyUsageRecorder } from './key-usage-recorder.js';
import { KeyLookupThrottle } from './lookup-throttle.js';
import { RedisCacheInvalidator } from './redis-cache-invalidator.js';
import { ReplicaKeyLookups } from './replica-key-lookups.js';

/** How often accepted database keys' last_used_at is written, in ms. */
const LAST_USED_FLUSH_INTERVAL_MS = 5_000;

export interface DatabaseKeysOptions {
  readonly config: GatewayConfig;
  /** Writes (last_used_at), and every key lookup the replica does not answer. */
  readonly primary: Database;
  /**
   * A streaming replica asked first (`postgres.replica_url`): its lookup
   * connections and its own connection for the lag checks. Absent: every
   * lookup goes to the primary.
   */
  readonly replica?: { readonly lookups: Database; readonly checks: Database };
  readonly clock: Clock;
  /** With the Redis store: two connections of their own, for PUBLISH and SUBSCRIBE. Absent: invalidation stays local. */
  readonly redis?: { readonly publisher: RedisClient; readonly subscriber: RedisClient; readonly keyPrefix: string };
  readonly onLookup?: (result: KeyLookupResult) => void;
  /** Each database query of a cache miss: its duration in seconds and whether it succeeded. */
  readonly onQueryTimed?: (seconds: number, ok: boolean) => void;
  /** Each answered database lookup: which database answered, and why. */
  readonly onServed?: (served: KeyLookupServed) => void;
  /** Each lag check of the replica, and each failed lookup on it (which marks it down). */
  readonly onReplicaVerdict?: (verdict: ReplicaVerdict, previous: ReplicaVerdict) => void;
  readonly onUnknownPlan?: (plan: string) => void;
  readonly onError?: (what: 'last_used_flush' | 'invalidation_subscribe' | 'replica_lookup', error: unknown) => void;
  /** Called when the invalidation subscription came back and the cache was cleared. */
  readonly onResubscribed?: () => void;
  /**
   * Called for every subject invalidation this instance applies, its own
   * and (with Redis) every other instance's: the subject's plan, keys,
   * overrides, counters or credits changed, so what this instance
   * concluded about it (a local denial) must be forgotten too.
   */
  readonly onSubjectChanged?: (subjectId: string) => void;
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
  /** The replica's lag checks; undefined without a replica. */
  readonly replicaMonitor: ReplicaMonitor | undefined;
  /**
   * Resolves once invalidations from other instances are received (at once
   * without Redis; rejects when not subscribed within `timeoutMs`) and the
   * replica's first lag check is done (bounded by postgres.connect_timeout_ms).
   */
  ready(timeoutMs: number): Promise<void>;
  /** Flushes last_used_at and stops listening; the caller closes the connections and databases. */
  close(): Promise<void>;
}

/**
 * The fallback of a stored plan that gateway.yaml no longer defines:
 * `auth.jwt.default_plan` when it is defined and limits something, so a
 * removed plan never turns into an unlimited one.
 */
function fallbackPlanOf(config: GatewayConfig): string | undefined {
  const name = config.auth.jwt.default_plan;
  const plan = config.plans[name];
  if (plan === undefined) return undefined;
  return Object.values(plan.limits).some((limit) => limit !== undefined) ? name : undefined;
}

/** With a replica: its lag checks, and the view of it key lookups ask. */
function buildReplicaLookups(options: DatabaseKeysOptions): { replica?: ReplicaKeyLookups; replicaMonitor?: ReplicaMonitor } {
  if (options.replica === undefined) return {};
  const maxLagMs = options.config.postgres.replica_max_lag_ms;
  const replicaMonitor = new ReplicaMonitor({
    replica: options.replica.checks,
    primary: options.primary,
    maxLagMs,
    ...(options.onReplicaVerdict === undefined ? {} : { onVerdict: options.onReplicaVerdict }),
  });
  const replica = new ReplicaKeyLookups({
    db: options.replica.lookups,
    monitor: replicaMonitor,
    maxLagMs,
    onFailure: (error) => options.onError?.('replica_lookup', error),
  });
  return { replica, replicaMonitor };
}

/**
 * Builds format check → (file keys) → LRU cache → negative cache →
 * per-address throttle of unknown-key queries → database (the replica
 * first while it is fresh, then the primary), with invalidation (Redis
 * pub/sub, or local), batched last_used_at, and the replica's lag checks
 * (started here; the first is awaited by ready()).
 */
export function buildDatabaseKeys(options: DatabaseKeysOptions): DatabaseKeys {
  const { config } = options;
  const cacheConfig = config.auth.api_keys.cache;
  const { replica, replicaMonitor } = buildReplicaLookups(options);
  const firstReplicaCheck = replicaMonitor?.start();
  const cache = new CachingKeyStore({
    store: new DatabaseKeyStore({
      db: options.primary,
      ...(replica === undefined ? {} : { replica }),
      ...(options.onServed === undefined ? {} : { onServed: options.onServed }),
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
  // Invalidations reach the cache through the replica first: lookups then avoid it while it may lack the change.
  const watched = replica?.watching(cache) ?? cache;
  const onSubjectChanged = options.onSubjectChanged;
  const invalidatable: InvalidatableKeyCache =
    onSubjectChanged === undefined
      ? watched
      : {
          invalidateKey: (keyHash) => watched.invalidateKey(keyHash),
          invalidateSubject: (subjectId) => {
            watched.invalidateSubject(subjectId);
            onSubjectChanged(subjectId);
          },
          clear: () => watched.clear(),
        };
  const redis =
    options.redis === undefined
      ? undefined
      : RedisCacheInvalidator.start({
          cache: invalidatable,
          publisher: options.redis.publisher,
          subscriber: options.redis.subscriber,
          keyPrefix: options.redis.keyPrefix,
          onError: (error) => options.onError?.('invalidation_subscribe', error),
          ...(options.onResubscribed === undefined ? {} : { onResubscribed: options.onResubscribed }),
        });
  return {
    keyStore: new CompositeKeyStore([new FileKeyStore(config.auth.api_keys.keys), cache]),
    invalidator: redis ?? new LocalCacheInvalidator(invalidatable),
    cache,
    onKeyAccepted: (record) => {
      if (record.stored === true) recorder.record(record.id);
    },
    replicaMonitor,
    // The first replica check is bounded by postgres.connect_timeout_ms and never rejects.
    ready: async (timeoutMs) => {
      await Promise.all([firstReplicaCheck, redis?.waitUntilSubscribed(timeoutMs)]);
    },
    async close() {
      redis?.close();
      await replicaMonitor?.stop();
      await recorder.close();
    },
  };
}
