import type { Queryable } from './database.js';
import { judgeReplica, readReplicaLag, type ReplicaState, type ReplicaVerdict, UNCHECKED } from './replica-lag.js';

/** Most time between two checks, in ms, whatever the allowed lag. */
const MAX_CHECK_INTERVAL_MS = 1_000;
/** Least time between two checks, in ms. */
const MIN_CHECK_INTERVAL_MS = 50;

/** Every half of `maxLagMs`, within 50 ms – 1 s: a replica past its bound is seen within half the bound (or a second). */
export function replicaCheckIntervalMs(maxLagMs: number): number {
  return Math.min(MAX_CHECK_INTERVAL_MS, Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(maxLagMs / 2)));
}

export interface ReplicaMonitorOptions {
  /** The replica, on a connection of its own (checks never wait behind lookups, nor count as them). */
  readonly replica: Queryable;
  readonly primary: Queryable;
  /** `postgres.replica_max_lag_ms`. */
  readonly maxLagMs: number;
  /** Monotonic milliseconds (default performance.now): replication lag is real time, whatever clock the limits use. */
  readonly nowMs?: () => number;
  /** Called after every check with its verdict, and when a failed lookup marks the replica down. */
  readonly onVerdict?: (verdict: ReplicaVerdict, previous: ReplicaVerdict) => void;
}

/**
 * Judges a streaming replica every replicaCheckIntervalMs(maxLagMs), off the
 * request path (key lookups read `state`, they never query for it): `fresh`
 * when it is at most `maxLagMs` behind the primary (see judgeReplica), else
 * why not. Until the first check answers the state is `unchecked`. A lookup
 * that failed on the replica reports it (reportFailure), which marks it
 * `down` at once, until a check finds it back. One check runs at a time.
 */
export class ReplicaMonitor {
  readonly #options: ReplicaMonitorOptions;
  readonly #nowMs: () => number;
  #verdict: ReplicaVerdict = UNCHECKED;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: ReplicaMonitorOptions) {
    this.#options = options;
    this.#nowMs = options.nowMs ?? (() => performance.now());
  }

  /** Runs the first check (resolves when it is done; it never rejects), then one every interval until stop(). */
  start(): Promise<void> {
    this.#timer ??= setInterval(() => void this.check(), replicaCheckIntervalMs(this.#options.maxLagMs));
    this.#timer.unref();
    return this.check();
  }

  /** The latest verdict. */
  get verdict(): ReplicaVerdict {
    return this.#verdict;
  }

  /** Whether lookups may go to the replica now, and why not. */
  get state(): ReplicaState {
    return this.#verdict.state;
  }

  /** One check now; joins one already running. Never rejects. */
  check(): Promise<void> {
    this.#running ??= this.#checkOnce().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** A lookup on the replica failed: it is `down` until a check finds it back. */
  reportFailure(): void {
    if (this.#verdict.state === 'down') return;
    this.#apply({ state: 'down', lagMs: undefined, caughtUpAtMs: this.#verdict.caughtUpAtMs });
  }

  /** Stops the checks and waits for a running one. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  async #checkOnce(): Promise<void> {
    if (this.#stopped) return;
    // The reading describes the replica against the primary's position as read first, i.e. as of now.
    const readAtMs = this.#nowMs();
    const reading = await readReplicaLag(this.#options.replica, this.#options.primary);
    if (this.#stopped) return;
    this.#apply(judgeReplica(reading, this.#verdict, readAtMs, this.#options.maxLagMs));
  }

  #apply(verdict: ReplicaVerdict): void {
    const previous = this.#verdict;
    this.#verdict = verdict;
    this.#options.onVerdict?.(verdict, previous);
  }
}
