import type { CreditState } from './credits.js';
import type { Policy } from './policy.js';
import type { WindowName } from './windows.js';

/** The state of one policy after a decision, in the route's cost units. */
export interface PolicyState {
  readonly name: string;
  readonly kind: Policy['kind'];
  readonly window: WindowName;
  readonly limit: number;
  /** Included units left in the current period after this decision; never negative. */
  readonly remaining: number;
  /** Whole seconds until the current period ends, at least 1; 0 for a lifetime window (it never resets). */
  readonly resetSeconds: number;
  /** Length of the current period in seconds (a month is 28–31 days); 0 for a lifetime window. */
  readonly periodSeconds: number;
  /**
   * A quota that allows overage (Policy.overage): units used past `limit` in
   * the current period after this decision (0 while within it). Absent for
   * every other policy.
   */
  readonly overage?: number;
  /**
   * Units counted in the current period, when the state is a read of the
   * counters (Limiter.peek): it may exceed `limit` (a cost settled past it,
   * overage) where `remaining` stops at 0. Absent on a decision's states.
   */
  readonly used?: number;
}

/**
 * What an admitted request was charged: enough to give the charge back to
 * exactly the periods it was taken from (see Limiter.refund).
 */
export interface ChargeReceipt {
  readonly subject: string;
  readonly cost: number;
  readonly charges: ReadonlyArray<{ readonly counterId: string; readonly periodStartMs: number }>;
}

/** Why a request was denied: a rate window, or a metered quota. */
export type DenyReason = 'window' | 'quota';

export interface Admission {
  readonly allowed: true;
  readonly policies: readonly PolicyState[];
  /** What was charged; absent when nothing was (no policy applies). */
  readonly receipt?: ChargeReceipt;
  /** The subject's credits, when a policy is covered by them (Policy.credits); else absent. */
  readonly credits?: CreditState;
}

export interface Denial {
  readonly allowed: false;
  /** `quota` when any violated policy is a quota, else `window`. */
  readonly reason: DenyReason;
  /** Names of the policies that had no room for the cost, in policy order. */
  readonly violated: readonly string[];
  /** Seconds until every violated policy has reset (the latest of them); 0 when a violated lifetime quota never resets. */
  readonly retryAfterSeconds: number;
  readonly policies: readonly PolicyState[];
  /** The subject's credits, when a policy is covered by them (Policy.credits); else absent. */
  readonly credits?: CreditState;
}

/**
 * A limiter's answer. A denial is a value, not an exception; limiters throw
 * only for infrastructure faults.
 */
export type Decision = Admission | Denial;
