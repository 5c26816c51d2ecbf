import type { Decision } from '../core/decision.js';
import type { WindowLimit } from '../core/windows.js';

/** One request's charge: `cost` units against every window of the subject's plan. */
export interface ConsumeRequest {
  readonly subject: string;
  /** The windows that apply, shortest first. An empty list always admits. */
  readonly windows: readonly WindowLimit[];
  /** Units to charge; a positive integer. */
  readonly cost: number;
}

/**
 * Decides and charges requests against calendar-aligned UTC windows.
 *
 * Contract (pinned by test/contract/limiter.contract.ts, run against every
 * implementation):
 * - all or nothing: a request is admitted only if every window has room for
 *   its cost, and then every window is charged; a denial charges nothing;
 * - a cost larger than what remains is denied without changing any counter;
 * - counters of a period are gone once the period ends;
 * - a denial resolves to `{ allowed: false }`; only infrastructure faults
 *   reject the promise.
 */
export interface Limiter {
  consume(request: ConsumeRequest): Promise<Decision>;
  /** Releases timers and connections. */
  close(): Promise<void>;
}
