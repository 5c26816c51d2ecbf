import { periodOf, secondsUntil } from './calendar.js';
import type { PolicyState } from './decision.js';
import type { Policy } from './policy.js';

/**
 * The state of `policy` at `nowMs` when `used` units of its current period
 * are spent: what a read of the counters (Limiter.peek) reports.
 */
export function policyStateAt(policy: Policy, used: number, nowMs: number): PolicyState {
  const period = periodOf(policy.window, nowMs);
  return {
    name: policy.name,
    kind: policy.kind,
    window: policy.window,
    limit: policy.limit,
    remaining: Math.max(0, policy.limit - used),
    resetSeconds: secondsUntil(period.endMs, nowMs),
    periodSeconds: Math.round((period.endMs - period.startMs) / 1000),
  };
}
