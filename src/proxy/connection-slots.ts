/** Why a request waiting for an upstream connection gave up: none came free within `queue_timeout_ms`. */
export class UpstreamBusyError extends Error {
  constructor(
    readonly upstream: string,
    readonly queueTimeoutMs: number,
  ) {
    super(`no connection to upstream "${upstream}" came free within ${queueTimeoutMs} ms`);
    this.name = 'UpstreamBusyError';
  }
}

/** What {@link ConnectionSlots.wait} needs of an abort signal: undici's and the forwarder's both fit. */
export interface WaitSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  once(event: 'abort', listener: () => void): unknown;
  removeListener(event: 'abort', listener: () => void): unknown;
}

interface Waiter {
  readonly grant: () => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * A counting semaphore over one upstream's connections, with a bounded wait:
 * at most `capacity` requests hold a slot, the rest wait in arrival order
 * for at most `queueTimeoutMs` and then fail with {@link UpstreamBusyError}.
 * undici's own pool would queue them without limit; with a slot per
 * connection its queue stays empty and the wait is bounded here.
 *
 * The free path is synchronous and allocates nothing ({@link tryAcquire});
 * only a request that has to wait gets a promise and a timer.
 */
export class ConnectionSlots {
  #free: number;
  readonly #waiters: Waiter[] = [];

  constructor(
    readonly upstream: string,
    readonly capacity: number,
    readonly queueTimeoutMs: number,
  ) {
    this.#free = capacity;
  }

  /** Requests holding a slot now. */
  get inUse(): number {
    return this.capacity - this.#free;
  }

  /** Requests waiting for a slot now. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Takes a slot if one is free (and nobody waits ahead); the caller must {@link release} it. */
  tryAcquire(): boolean {
    if (this.#free === 0 || this.#waiters.length > 0) return false;
    this.#free--;
    return true;
  }

  /**
   * Resolves once a slot is the caller's (release it), rejects with
   * {@link UpstreamBusyError} after `queueTimeoutMs`, or with the signal's
   * reason when it aborts first (the client left).
   */
  wait(signal?: WaitSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const leave = (): void => {
        const at = this.#waiters.indexOf(waiter);
        if (at !== -1) this.#waiters.splice(at, 1);
        clearTimeout(waiter.timer);
        signal?.removeListener('abort', onAbort);
      };
      const onAbort = (): void => {
        leave();
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeListener('abort', onAbort);
          resolve();
        },
        timer: setTimeout(() => {
          leave();
          reject(new UpstreamBusyError(this.upstream, this.queueTimeoutMs));
        }, this.queueTimeoutMs),
      };
      this.#waiters.push(waiter);
      signal?.once('abort', onAbort);
    });
  }

  /** Gives a slot back: to the longest waiter, else to the free count. */
  release(): void {
    const next = this.#waiters.shift();
    if (next === undefined) {
      this.#free = Math.min(this.capacity, this.#free + 1);
      return;
    }
    clearTimeout(next.timer);
    next.grant();
  }
}
