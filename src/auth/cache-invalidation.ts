/**
 * Tells every gateway instance that cached key data went stale. The admin API
 * (and the CLI, when it talks to a running gateway's database) calls it after
 * each committed write that changes what a key lookup returns: a key revoked,
 * rotated or deleted → `keyChanged`; a subject's plan, overrides, suspension
 * or counters reset, or the subject deleted → `subjectChanged`.
 *
 * Delivery reaches every instance within one second: Redis pub/sub when Redis
 * is the store, a local cache drop on the embedded single-instance default.
 * A call resolves once the message is published (or the local drop is done);
 * it rejects only on infrastructure faults, after the local drop happened.
 */
export interface CacheInvalidator {
  /** The key with this SHA-256 hex hash changed or was removed. */
  keyChanged(keyHash: string): Promise<void>;
  /** Something about this subject changed; every key of the subject is dropped. */
  subjectChanged(subjectId: string): Promise<void>;
}

/** An invalidator that does nothing, for gateways with no key cache (and tests). */
export const NO_CACHE_INVALIDATION: CacheInvalidator = {
  keyChanged: () => Promise.resolve(),
  subjectChanged: () => Promise.resolve(),
};
