import { periodOf, periodSeconds, secondsUntil } from './calendar.js';
import type { PolicyState } from './decision.js';
import type { Policy } from './policy.js';

/**
 * The state of `policy` at `nowMs` when `used` units of its current period
 * are spent: what a read of the counters (Limiter.peek) reports.
 */
export function policyStateAt(policy: Policy, used: number, nowMs: number): PolicyState {
  const period = periodOf(policy.window, nowMs);
  const state: PolicyState = {
    name: policy.name,
    kind: policy.kind,
    window: policy.window,
    limit: policy.limit,
    remaining: Math.max(0, policy.limit - used),
    resetSeconds: secondsUntil(period.endMs, nowMs),
    periodSeconds: periodSeconds(period),
    used,
  };
  return policy.overage === undefined ? state : { ...state, overage: Math.max(0, used - policy.limit) };
}
