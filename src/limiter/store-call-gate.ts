/**
 * A store call got no answer within `timeoutMs` of being sent. The store is
 * not answering, or its connection lost bytes: a store fault.
 */
export class StoreCallTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`store call timed out: no reply ${timeoutMs} ms after it was sent`);
    this.name = 'StoreCallTimeoutError';
  }
}

/**
 * A store call that failed for a reason of the gateway's own making, which
 * says nothing new about the store: the circuit breaker must not count it.
 * `kind` is its `quotagate_store_errors_total` kind.
 */
export abstract class NotAStoreFault extends Error {
  abstract readonly kind: string;
}

/**
 * A store call waited longer than `maxQueueWaitMs` in the gateway's own
 * queue and was never sent: the gateway had more calls out than it lets out
 * at once (a burst).
 */
export class StoreQueueTimeoutError extends NotAStoreFault {
  readonly kind = 'queue_timeout';
  constructor(readonly waitedMs: number) {
    super(`store call not sent: waited ${Math.round(waitedMs)} ms in the gateway's queue`);
    this.name = 'StoreQueueTimeoutError';
  }
}

/**
 * A store call was in flight on a connection the gate retired because
 * another call on it timed out: its reply is lost with the connection. The
 * timeout that caused it was counted; this is the same incident.
 */
export class StoreConnectionRetiredError extends NotAStoreFault {
  readonly kind = 'connection_retired';
  constructor(cause: unknown) {
    super(`store call lost: its connection was retired after another call timed out (${String(cause)})`, { cause });
    this.name = 'StoreConnectionRetiredError';
  }
}

export interface StoreCallGateOptions {
  /** Longest a sent call may go unanswered, in ms (`command_timeout_ms`), counted from when it is sent. */
  readonly timeoutMs: number;
  /** Calls sent and not yet answered at once; further calls wait in the gate's queue, where timeoutMs does not run. */
  readonly maxInFlight: number;
  /** Longest a call may wait in that queue, in ms; past it the call is refused with StoreQueueTimeoutError. */
  readonly maxQueueWaitMs: number;
  /**
   * A sent call got no reply in time (this gate's deadline, or the client's
   * own timeout as reported by `isTimeout`). The connection's replies can no
   * longer be trusted to line up with its commands: retire it (close it and
   * connect afresh), then call connectionReady() once the new one is ready.
   */
  readonly retireConnection: () => void;
  /**
   * Longest calls wait for the connection that replaces a retired one, in
   * ms, unless connectionFailed() says sooner that it failed; then they are
   * sent, to fail as the store's fault. Default: timeoutMs.
   */
  readonly reconnectTimeoutMs?: number;
  /** Whether a rejection is the client's own command timeout; default: never. */
  readonly isTimeout?: (error: unknown) => boolean;
  /** Milliseconds on any monotonic scale, for queue waits; default performance.now. */
  readonly nowMs?: () => number;
}

interface QueuedCall {
  readonly call: () => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly queuedAtMs: number;
}

/**
 * Bounds the calls to one store connection, so that a timeout means the
 * store did not answer:
 *
 * - At most `maxInFlight` calls are sent at once, each timed from when it is
 *   sent; the rest wait in a FIFO queue, untimed by that deadline but refused
 *   past `maxQueueWaitMs` (StoreQueueTimeoutError). A burst the gateway
 *   itself built up is answered from the queue, not counted as timeouts.
 * - A deadline is checked one event-loop turn after its timer fires (after
 *   the loop's I/O phase): when the gateway's own process stalled for longer
 *   than `timeoutMs` (a loaded machine, a long GC), Node runs expired timers
 *   before it reads the sockets, and a reply that already arrived would
 *   otherwise lose to its own timeout.
 * - A timeout retires the connection. The calls in flight on it fail with
 *   StoreConnectionRetiredError; calls made until the new connection is
 *   ready (at most `timeoutMs`) wait for it in the queue, so the next call,
 *   a breaker's probe among them, goes out on the new connection.
 */
export class StoreCallGate {
  private inFlight = 0;
  private readonly queue: QueuedCall[] = [];
  private queueHead = 0;
  private readonly nowMs: () => number;
  /** Bumped by every retirement: a call sent in an older generation was on a retired connection. */
  private generation = 0;
  /** While the retired connection is being replaced: the timer that gives up waiting for the new one. */
  private replacement: NodeJS.Timeout | undefined;
  /** When the last replacement ended: time spent waiting for it does not count as queue wait. */
  private replacedAtMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: StoreCallGateOptions) {
    this.nowMs = options.nowMs ?? (() => performance.now());
  }

  /** Calls sent and not yet settled. */
  get sent(): number {
    return this.inFlight;
  }

  /** Calls waiting to be sent. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** Runs `call` now if there is room, else once a call settles (or the new connection is ready). */
  run<T>(call: () => Promise<T>): Promise<T> {
    if (this.replacement === undefined && this.inFlight < this.options.maxInFlight && this.queued === 0) return this.send(call);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ call, resolve: resolve as (value: unknown) => void, reject, queuedAtMs: this.nowMs() });
    });
  }

  /** The connection that replaces a retired one is ready: send what waited for it. */
  connectionReady(): void {
    this.endReplacement();
  }

  /** Connecting afresh failed (the client reported an error): send what waited, to fail as the store's fault. */
  connectionFailed(): void {
    this.endReplacement();
  }

  private send<T>(call: () => Promise<T>): Promise<T> {
    const { timeoutMs, isTimeout } = this.options;
    const generation = this.generation;
    this.inFlight += 1;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        this.inFlight -= 1;
        this.sendQueued();
        return true;
      };
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (!settle()) return;
          if (generation !== this.generation) {
            reject(new StoreConnectionRetiredError(new StoreCallTimeoutError(timeoutMs)));
            return;
          }
          this.retire(generation);
          reject(new StoreCallTimeoutError(timeoutMs));
        });
      }, timeoutMs);
      let sending: Promise<T>;
      try {
        sending = call();
      } catch (error) {
        sending = Promise.reject(error);
      }
      sending.then(
        (value) => {
          if (settle()) resolve(value);
        },
        (error: unknown) => {
          if (!settle()) return;
          if (isTimeout?.(error) === true) {
            this.retire(generation);
            reject(error);
          } else {
            reject(generation === this.generation ? error : new StoreConnectionRetiredError(error));
          }
        },
      );
    });
  }

  /** Retires the connection a call of `generation` timed out on, unless that one was retired already. */
  private retire(generation: number): void {
    if (generation !== this.generation) return;
    this.generation += 1;
    this.replacement = setTimeout(() => this.endReplacement(), this.options.reconnectTimeoutMs ?? this.options.timeoutMs);
    this.options.retireConnection();
  }

  private endReplacement(): void {
    if (this.replacement === undefined) return;
    clearTimeout(this.replacement);
    this.replacement = undefined;
    this.replacedAtMs = this.nowMs();
    this.sendQueued();
  }

  /** Sends queued calls while there is room; refuses those that waited too long. */
  private sendQueued(): void {
    while (this.replacement === undefined && this.inFlight < this.options.maxInFlight && this.queued > 0) {
      const next = this.queue[this.queueHead]!;
      this.queueHead += 1;
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      } else if (this.queueHead >= 1_024) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      const waitedMs = this.nowMs() - Math.max(next.queuedAtMs, this.replacedAtMs);
      if (waitedMs > this.options.maxQueueWaitMs) {
        next.reject(new StoreQueueTimeoutError(waitedMs));
        continue;
      }
      this.send(next.call).then(next.resolve, next.reject);
    }
  }
}
