import type { Queryable } from '../db/database.js';
import type { ReplicaMonitor } from '../db/replica-monitor.js';
import type { InvalidatableKeyCache } from './cache-invalidation.js';
import type { KeyLookupReplica } from './database-key-store.js';

export interface ReplicaKeyLookupsOptions {
  /** The replica's lookup connections. */
  readonly db: Queryable;
  /** Its lag checks. */
  readonly monitor: ReplicaMonitor;
  /** `postgres.replica_max_lag_ms`: also how long lookups avoid the replica after a change. */
  readonly maxLagMs: number;
  /** Monotonic milliseconds (default performance.now). */
  readonly nowMs?: () => number;
  /** A lookup on the replica failed (it was asked of the primary instead). */
  readonly onFailure?: (error: unknown) => void;
}

/**
 * The replica as DatabaseKeyStore sees it: asked while its monitor finds it
 * fresh, and not for `maxLagMs` after any change to a key or subject.
 *
 * Why the pause after a change: an invalidation drops the cached entry,
 * and the next lookup would otherwise read the replica, which may be up to
 * `maxLagMs` behind and still show the key unrevoked (or the old plan) — and
 * that stale answer would be cached for `auth.api_keys.cache.ttl_ms`. Changes
 * are rare (admin writes), so the primary taking every miss for a moment
 * after one costs little.
 */
export class ReplicaKeyLookups implements KeyLookupReplica {
  readonly db: Queryable;
  readonly #options: ReplicaKeyLookupsOptions;
  readonly #nowMs: () => number;
  #lastChangeMs = Number.NEGATIVE_INFINITY;

  constructor(options: ReplicaKeyLookupsOptions) {
    this.db = options.db;
    this.#options = options;
    this.#nowMs = options.nowMs ?? (() => performance.now());
  }

  /** The monitor's state, unless it is `fresh` and a change came less than `maxLagMs` ago: `recent_change`. */
  state(): ReturnType<KeyLookupReplica['state']> {
    const state = this.#options.monitor.state;
    if (state === 'fresh' && this.#nowMs() - this.#lastChangeMs < this.#options.maxLagMs) return 'recent_change';
    return state;
  }

  reportFailure(error: unknown): void {
    this.#options.monitor.reportFailure();
    this.#options.onFailure?.(error);
  }

  /** `cache`, whose every invalidation first keeps lookups off the replica for `maxLagMs`. */
  watching(cache: InvalidatableKeyCache): InvalidatableKeyCache {
    const changed = () => (this.#lastChangeMs = this.#nowMs());
    return {
      invalidateKey: (keyHash) => {
        changed();
        cache.invalidateKey(keyHash);
      },
      invalidateSubject: (subjectId) => {
        changed();
        cache.invalidateSubject(subjectId);
      },
      clear: () => {
        changed();
        cache.clear();
      },
    };
  }
}
