import type { RedisClient } from '../redis/client.js';
import {
  type CacheInvalidator,
  type InvalidatableKeyCache,
  type InvalidationMessage,
  applyInvalidation,
  parseInvalidationMessage,
} from './cache-invalidation.js';

/** The pub/sub channel of key-cache invalidations: `<key_prefix>:v1:invalidate`. */
function invalidationChannel(keyPrefix: string): string {
  return `${keyPrefix}:v1:invalidate`;
}

/**
 * Publishes one invalidation for every gateway on this Redis, from a process
 * that has no key cache of its own (the CLI writing to a shared database).
 */
export async function publishInvalidation(publisher: RedisClient, keyPrefix: string, message: InvalidationMessage): Promise<void> {
  await publisher.publish(invalidationChannel(keyPrefix), JSON.stringify(message));
}

export interface RedisCacheInvalidatorOptions {
  readonly cache: InvalidatableKeyCache;
  /** A connection for PUBLISH (a subscribed connection cannot publish). */
  readonly publisher: RedisClient;
  /**
   * A connection of its own for SUBSCRIBE (ioredis needs one; for a Cluster a
   * plain connection to one node does, since PUBLISH reaches every node).
   */
  readonly subscriber: RedisClient;
  readonly keyPrefix: string;
  /** Called when the subscription is (re)established and the cache was cleared. */
  readonly onResubscribed?: () => void;
  readonly onError?: (error: unknown) => void;
}

/**
 * Invalidation shared by every instance on one Redis: a change is dropped
 * from this instance's cache at once, then published on
 * `<key_prefix>:v1:invalidate`; every instance (this one included) drops
 * the entries named by each message it receives, well within a second.
 *
 * Messages sent while an instance's subscriber was disconnected are lost to
 * it, so each time the subscription is made (at start, and again after a
 * drop) the instance clears its whole key cache.
 */
/** How often SUBSCRIBE is re-issued until the first subscription succeeds, in ms. */
const SUBSCRIBE_RETRY_MS = 2_000;

export class RedisCacheInvalidator implements CacheInvalidator {
  readonly #options: RedisCacheInvalidatorOptions;
  readonly #channel: string;
  #subscribedOnce = false;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;

  private constructor(options: RedisCacheInvalidatorOptions) {
    this.#options = options;
    this.#channel = invalidationChannel(options.keyPrefix);
  }

  /** Subscribes (now if the subscriber is ready, else whenever it becomes ready) and returns the invalidator. */
  static start(options: RedisCacheInvalidatorOptions): RedisCacheInvalidator {
    const invalidator = new RedisCacheInvalidator(options);
    const { subscriber } = options;
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== invalidator.#channel) return;
      const message = parseInvalidationMessage(text);
      if (message !== undefined) applyInvalidation(options.cache, message);
    });
    subscriber.on('ready', () => invalidator.#subscribe());
    if (subscriber.status === 'ready') invalidator.#subscribe();
    // A first SUBSCRIBE that is refused (a Cluster still choosing its subscriber
    // node) or never answered gets no second 'ready' event. Re-issue it until one
    // succeeds, or this instance would never hear of a revocation. (After that,
    // ioredis resubscribes by itself on every reconnect.)
    invalidator.#retryTimer = setInterval(() => {
      if (invalidator.#subscribedOnce || invalidator.#closed) clearInterval(invalidator.#retryTimer);
      else invalidator.#subscribe();
    }, SUBSCRIBE_RETRY_MS);
    invalidator.#retryTimer.unref();
    return invalidator;
  }

  #subscribe(): void {
    if (this.#closed) return;
    this.#options.subscriber.subscribe(this.#channel).then(
      () => {
        // Anything published while we were not subscribed is lost to us: start afresh.
        this.#options.cache.clear();
        if (this.#subscribedOnce) this.#options.onResubscribed?.();
        this.#subscribedOnce = true;
      },
      (error: unknown) => this.#options.onError?.(error),
    );
  }

  /** Resolves once the subscription is active (for start-up and tests), or rejects after `timeoutMs`. */
  async waitUntilSubscribed(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#subscribedOnce) {
      if (Date.now() > deadline) throw new Error(`not subscribed to ${this.#channel} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  keyChanged(keyHash: string): Promise<void> {
    this.#options.cache.invalidateKey(keyHash);
    return this.#publish({ type: 'key', hash: keyHash });
  }

  subjectChanged(subjectId: string): Promise<void> {
    this.#options.cache.invalidateSubject(subjectId);
    return this.#publish({ type: 'subject', id: subjectId });
  }

  #publish(message: InvalidationMessage): Promise<void> {
    return publishInvalidation(this.#options.publisher, this.#options.keyPrefix, message);
  }

  /** Stops listening; the caller closes the connections. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#retryTimer);
  }
}
