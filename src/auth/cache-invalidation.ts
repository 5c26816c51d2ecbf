import { jsonObjectFields } from '../core/json-message.js';

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

/** What an invalidator drops entries from: the key cache of this instance. */
export interface InvalidatableKeyCache {
  invalidateKey(keyHash: string): void;
  invalidateSubject(subjectId: string): void;
  clear(): void;
}

/** The embedded single-instance default: a change is dropped from this instance's cache, and that is all. */
export class LocalCacheInvalidator implements CacheInvalidator {
  constructor(private readonly cache: InvalidatableKeyCache) {}

  keyChanged(keyHash: string): Promise<void> {
    this.cache.invalidateKey(keyHash);
    return Promise.resolve();
  }

  subjectChanged(subjectId: string): Promise<void> {
    this.cache.invalidateSubject(subjectId);
    return Promise.resolve();
  }
}

/** A message on the invalidation channel. */
export type InvalidationMessage = { readonly type: 'key'; readonly hash: string } | { readonly type: 'subject'; readonly id: string };

/** The message in `text`, or undefined when it is not one (ignored, never thrown). */
export function parseInvalidationMessage(text: string): InvalidationMessage | undefined {
  const fields = jsonObjectFields(text);
  if (fields === undefined) return undefined;
  const { type, hash, id } = fields;
  if (type === 'key' && typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash)) return { type, hash };
  if (type === 'subject' && typeof id === 'string' && id.length > 0 && id.length <= 256) return { type, id };
  return undefined;
}

/** Applies one message to a cache. */
export function applyInvalidation(cache: InvalidatableKeyCache, message: InvalidationMessage): void {
  if (message.type === 'key') cache.invalidateKey(message.hash);
  else cache.invalidateSubject(message.id);
}
