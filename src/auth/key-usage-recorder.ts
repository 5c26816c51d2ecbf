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
}

/**
 * Batches `api_keys.last_used_at`: accepted database keys are noted in
 * memory, and every `flushIntervalMs` one recordKeysUsed statement writes
 * them all with the flush time — never one write per request. A failed
 * flush keeps its ids for the next one; close() flushes what is left.
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
    try {
      await recordKeysUsed(this.#options.db, ids, new Date(this.#options.clock.now()));
    } catch (error) {
      for (const id of ids) this.#pending.add(id);
      this.#options.onError?.(error);
    }
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
