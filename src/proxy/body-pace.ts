/** How fast a request body must arrive (`proxy.body_idle_timeout_ms`, `proxy.body_min_bytes_per_s`). */
export interface BodyPaceLimits {
  /** Longest pause between two chunks, in ms; also the grace before the minimum rate applies. */
  readonly idleTimeoutMs: number;
  /** Slowest average rate over the whole body after the grace, in bytes per second; 0: no rate check. */
  readonly minBytesPerSecond: number;
}

/** The pace limits of `proxy.body_idle_timeout_ms` and `proxy.body_min_bytes_per_s`. */
export function bodyPaceLimitsOf(proxy: { readonly body_idle_timeout_ms: number; readonly body_min_bytes_per_s: number }): BodyPaceLimits {
  return { idleTimeoutMs: proxy.body_idle_timeout_ms, minBytesPerSecond: proxy.body_min_bytes_per_s };
}

/** The error a request body fails with when it stalls or trickles (408 `request_timeout`). */
export class BodyTooSlowError extends Error {
  constructor(
    readonly why: 'idle' | 'rate',
    readonly limits: BodyPaceLimits,
  ) {
    super(
      why === 'idle'
        ? `no request body bytes for ${limits.idleTimeoutMs} ms`
        : `request body slower than ${limits.minBytesPerSecond} bytes/s`,
    );
    this.name = 'BodyTooSlowError';
  }
}

/**
 * Watches one request body's pace as it streams: it fails when no bytes
 * came for `idleTimeoutMs`, or when fewer than
 * `minBytesPerSecond × (elapsed − idleTimeoutMs)` bytes came in all (the
 * rate Apache's mod_reqtimeout calls MinRate, with the idle timeout as its
 * grace). Time the gateway itself is not reading (the upstream applies
 * backpressure) does not count against the client.
 *
 * One timer per body, never reset per chunk: a chunk only records its time
 * and size; the timer, when it fires, checks and re-arms itself for the
 * next deadline.
 */
export class BodyPace {
  readonly #limits: BodyPaceLimits;
  readonly #onTooSlow: (error: BodyTooSlowError) => void;
  readonly #isBackpressured: () => boolean;
  /** When the rate clock started, in performance.now() ms (moved on over backpressure). */
  #startedAtMs: number;
  #lastChunkAtMs: number;
  #receivedBytes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: BodyPaceLimits, onTooSlow: (error: BodyTooSlowError) => void, isBackpressured: () => boolean) {
    this.#limits = limits;
    this.#onTooSlow = onTooSlow;
    this.#isBackpressured = isBackpressured;
    this.#startedAtMs = this.#lastChunkAtMs = performance.now();
    this.#timer = setTimeout(this.#check, limits.idleTimeoutMs);
  }

  /** Records `bytes` received now. */
  received(bytes: number): void {
    this.#receivedBytes += bytes;
    this.#lastChunkAtMs = performance.now();
  }

  /** Stops watching (the body ended, failed or is no longer forwarded). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #check = (): void => {
    if (this.#timer === undefined) return;
    const now = performance.now();
    const { idleTimeoutMs, minBytesPerSecond } = this.#limits;
    if (this.#isBackpressured()) {
      // The gateway is not reading: restart both clocks from now.
      this.#lastChunkAtMs = now;
      this.#startedAtMs = minBytesPerSecond === 0 ? now : now - (this.#receivedBytes * 1000) / minBytesPerSecond;
    }
    const idleDeadline = this.#lastChunkAtMs + idleTimeoutMs;
    const rateDeadline =
      minBytesPerSecond === 0 ? Infinity : this.#startedAtMs + idleTimeoutMs + (this.#receivedBytes * 1000) / minBytesPerSecond;
    if (now >= idleDeadline || now >= rateDeadline) {
      this.#timer = undefined;
      this.#onTooSlow(new BodyTooSlowError(now >= idleDeadline ? 'idle' : 'rate', this.#limits));
      return;
    }
    this.#timer = setTimeout(this.#check, Math.max(1, Math.ceil(Math.min(idleDeadline, rateDeadline) - now)));
  };
}
