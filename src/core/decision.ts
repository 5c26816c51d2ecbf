import type { WindowName } from './windows.js';

/** The state of one window after a decision, in the route's cost units. */
export interface WindowState {
  readonly name: WindowName;
  readonly limit: number;
  /** Units left in the current period after this decision; never negative. */
  readonly remaining: number;
  /** Whole seconds until the current period ends, at least 1. */
  readonly resetSeconds: number;
  /** Length of the current period in seconds (a month is 28–31 days). */
  readonly periodSeconds: number;
}

/** Why a request was denied. */
export type DenyReason = 'window';

/**
 * A limiter's answer. A denial is a value, not an exception; limiters throw
 * only for infrastructure faults.
 */
export type Decision =
  | { readonly allowed: true; readonly windows: readonly WindowState[] }
  | {
      readonly allowed: false;
      readonly reason: DenyReason;
      /** The windows that had no room for the cost, shortest first. */
      readonly violated: readonly WindowName[];
      /** Seconds until every violated window has reset (the longest of them). */
      readonly retryAfterSeconds: number;
      readonly windows: readonly WindowState[];
    };
