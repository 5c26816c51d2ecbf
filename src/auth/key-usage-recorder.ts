import type { Clock } from '../core/clock.js';
import { recordKeysUsed } from '../db/api-keys.js';
import type { Queryable } from '../db/database.js';

export interface KeyUsageRecorderOptions {
  /** The primary: last_used_at is a write. */
  readonly db: Queryable;
  readonly clock: Clock;
  /** How often the ids seen since the last flush are written, in ms. */
  readonly flushIntervalMs: number;
  readonly onError?: (error: unknown) => void;
  /** Ids written by one statement at most (a flush with more writes several); default 5,000. */
  readonly maxIdsPerStatement?: number;
}

/**
 * Ids per statement by default: a gateway serving 100,000 keys between two
 * flushes writes them in 20 statements instead of one with a 100,000-element
 * array, bounding the statement and the memory its encoding takes.
 */
const DEFAULT_MAX_IDS_PER_STATEMENT = 5_000;

/**
 * Batches `api_keys.last_used_at`: accepted database keys are noted in
 * memory, and every `flushIntervalMs` recordKeysUsed statements write them
 * all with the flush time (one per `maxIdsPerStatement` ids) — never one
 * write per request. The ids of a statement that failed, and of those not
 * yet run, are kept for the next flush; close() flushes what is left.
 */
export class KeyUsageRecorder {
  readonly #options: KeyUsageRecorderOptions;
  #pending = new Set<string>();
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();

  constructor(options: KeyUsageRecorderOptions) {
    this.#options = options;
    this.#timer = setInterval(() => void this.flush(), options.flushIntervalMs);
    this.#timer.unref();
  }

  /** Notes that the key with this id was used now. O(1), no I/O. */
  record(keyId: string): void {
    this.#pending.add(keyId);
  }

  /** Writes the ids noted so far in one statement (after any flush already running). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write());
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const ids = [...this.#pending];
    this.#pending = new Set();
    const usedAt = new Date(this.#options.clock.now());
    const perStatement = this.#options.maxIdsPerStatement ?? DEFAULT_MAX_IDS_PER_STATEMENT;
    for (let start = 0; start < ids.length; start += perStatement) {
      try {
        await recordKeysUsed(this.#options.db, ids.slice(start, start + perStatement), usedAt);
      } catch (error) {
        for (const id of ids.slice(start)) this.#pending.add(id);
        this.#options.onError?.(error);
        return;
      }
    }
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
