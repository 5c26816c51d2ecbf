import { jsonObjectFields } from '../core/json-message.js';
import { BlockedSubjects, type SubjectBlockStore } from '../core/subject-blocks.js';
import type { RedisClient } from './client.js';
import { subjectBlockChannel, subjectBlockIndexKey, subjectBlockKey } from './keys.js';

/** A message on the block channel. */
type BlockMessage = { readonly type: 'block'; readonly subject: string; readonly untilMs: number } | { readonly type: 'unblock'; readonly subject: string };

function parseBlockMessage(text: string): BlockMessage | undefined {
  const fields = jsonObjectFields(text);
  if (fields === undefined) return undefined;
  const { type, subject, untilMs } = fields;
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > 512) return undefined;
  if (type === 'block' && typeof untilMs === 'number' && Number.isSafeInteger(untilMs)) return { type, subject, untilMs };
  if (type === 'unblock') return { type, subject };
  return undefined;
}

export interface RedisSubjectBlocksOptions {
  /** A connection for commands and PUBLISH (the limiter's). */
  readonly client: RedisClient;
  /** A connection of its own for SUBSCRIBE. */
  readonly subscriber: RedisClient;
  readonly keyPrefix: string;
  /** This instance's list, which the limit step reads. */
  readonly blocked: BlockedSubjects;
  readonly nowMs: () => number;
  readonly onError?: (error: unknown) => void;
}

/** How often SUBSCRIBE is re-issued until the first subscription succeeds, in ms (as the key invalidator does). */
const SUBSCRIBE_RETRY_MS = 2_000;

/**
 * Blocks shared by every instance on one Redis, the way key-cache
 * invalidation is shared: a block is a key per subject with the block's
 * TTL (PX) plus an entry in the block index, then a message on
 * `<key_prefix>:v1:blocks`; every instance (this one at once) records it
 * in its BlockedSubjects. Each time the subscription is made (at start,
 * and after a drop, when messages may have been missed) the instance
 * reloads its list from the index, so a new or reconnected instance knows
 * every live block without any read on the request path.
 */
export class RedisSubjectBlocks implements SubjectBlockStore {
  readonly #options: RedisSubjectBlocksOptions;
  readonly #channel: string;
  #subscribedOnce = false;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;

  private constructor(options: RedisSubjectBlocksOptions) {
    this.#options = options;
    this.#channel = subjectBlockChannel(options.keyPrefix);
  }

  /** Subscribes (now, or when the subscriber is ready) and returns the store. */
  static start(options: RedisSubjectBlocksOptions): RedisSubjectBlocks {
    const store = new RedisSubjectBlocks(options);
    options.subscriber.on('message', (channel: string, text: string) => {
      if (channel !== store.#channel) return;
      const message = parseBlockMessage(text);
      if (message === undefined) return;
      if (message.type === 'block') options.blocked.set(message.subject, message.untilMs);
      else options.blocked.delete(message.subject);
    });
    options.subscriber.on('ready', () => store.#subscribe());
    if (options.subscriber.status === 'ready') store.#subscribe();
    store.#retryTimer = setInterval(() => {
      if (store.#subscribedOnce || store.#closed) clearInterval(store.#retryTimer);
      else store.#subscribe();
    }, SUBSCRIBE_RETRY_MS);
    store.#retryTimer.unref();
    return store;
  }

  #subscribe(): void {
    if (this.#closed) return;
    this.#options.subscriber.subscribe(this.#channel).then(
      () => {
        this.#subscribedOnce = true;
        return this.reload();
      },
      (error: unknown) => this.#options.onError?.(error),
    ).catch((error: unknown) => this.#options.onError?.(error));
  }

  /** Replaces this instance's list with the index's live blocks (dropping ended ones from the index). */
  async reload(): Promise<void> {
    const { client, keyPrefix, blocked, nowMs } = this.#options;
    const index = subjectBlockIndexKey(keyPrefix);
    const now = nowMs();
    await client.zremrangebyscore(index, '-inf', now);
    const entries = await client.zrangebyscore(index, `(${now}`, '+inf', 'WITHSCORES');
    blocked.clear();
    for (let i = 0; i + 1 < entries.length; i += 2) blocked.set(entries[i]!, Number(entries[i + 1]));
  }

  /** Resolves once subscribed and loaded (start-up and tests), or rejects after `timeoutMs`. */
  async waitUntilSubscribed(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#subscribedOnce) {
      if (Date.now() > deadline) throw new Error(`not subscribed to ${this.#channel} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async block(subject: string, untilMs: number): Promise<void> {
    const { client, keyPrefix, blocked, nowMs } = this.#options;
    blocked.set(subject, untilMs);
    const ttlMs = Math.max(1, untilMs - nowMs());
    await client.set(subjectBlockKey(keyPrefix, subject), String(untilMs), 'PX', ttlMs);
    await client.zadd(subjectBlockIndexKey(keyPrefix), untilMs, subject);
    await client.publish(this.#channel, JSON.stringify({ type: 'block', subject, untilMs }));
  }

  async unblock(subject: string): Promise<boolean> {
    const { client, keyPrefix, blocked } = this.#options;
    blocked.delete(subject);
    const deleted = await client.del(subjectBlockKey(keyPrefix, subject));
    await client.zrem(subjectBlockIndexKey(keyPrefix), subject);
    await client.publish(this.#channel, JSON.stringify({ type: 'unblock', subject }));
    return deleted > 0;
  }

  /** Stops listening; the caller closes the connections. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#retryTimer);
  }
}
